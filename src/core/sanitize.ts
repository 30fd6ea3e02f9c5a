/**
 * Longest error message kept; the rest is cut and marked `… [truncated]`.
 *
 * @example
 * sanitizeMessage('x'.repeat(1_000)).length; // MAX_ERROR_MESSAGE_LENGTH + '… [truncated]'.length
 */
export const MAX_ERROR_MESSAGE_LENGTH = 500;

const REDACTED = '[REDACTED]';

/**
 * The last word of a name that holds a secret, so that `DB_PASSWORD`, `githubToken`, `x-api-key`,
 * `aws_secret_access_key` and `X-Amz-Signature` are secret names. A name that goes on after the word is
 * not one: `max_tokens`, `token_count`, `password_policy`.
 */
const SECRET_WORD =
  '(?:(?:api|access|private|secret|signing|encryption|client|master|ssh)[_.-]?key|' +
  'password|passwd|pwd|passphrase|secret|token|credentials?|signature|auth|authorization)';

/**
 * {@link SECRET_WORD} as running text also writes it: `API key`, `secret key`, `private key` (the
 * two-word names first, so that `secret key X` is read as the name `secret key`, not `secret`).
 */
const SECRET_WORD_IN_PROSE = SECRET_WORD.replace('[_.-]?key', '[ _.-]?key');

/**
 * A word as prose writes it (`expected`, `Missing`, `EXPIRED`, `non-empty`, `invalid_grant`,
 * `NOT_FOUND`, `required.`, `usage:`, `(retry)`): after a colon, or after a secret name in running
 * text, it is read as a diagnostic, not as a secret.
 */
const PLAIN_WORD = /^\(?(?:[A-Z]?[a-z]+|[A-Z]+)(?:[-_][A-Za-z]+)*[.!?:)]*$/;

/**
 * Shortest unquoted value read as a secret after a colon, an authentication scheme or a secret name
 * in running text (sentence punctuation after it not counted: `10:30.` is 5 characters).
 */
const MIN_SECRET_LENGTH = 6;

/** Does an unquoted value in running text look like a secret rather than a word? */
function looksSecret(value: string): boolean {
  return value.replace(/[.,;:!?)]+$/, '').length >= MIN_SECRET_LENGTH && !PLAIN_WORD.test(value);
}

/**
 * A secret name, bare or quoted (`name`, `"name"`, `\"name\"` in escaped JSON), then `=` or `:`, then
 * the value: a JSON string (escapes allowed; an unterminated one runs to the end), a string in escaped
 * JSON, a single-quoted string, or a bare run up to a space, a quote or `,;&}`.
 */
const NAMED_VALUE = new RegExp(
  String.raw`(?<![\w.-])(\\?["']?[\w.-]*?${SECRET_WORD}\\?["']?\s*[:=]\s*)(\\"(?:(?!\\")[^\n])*\\"|"(?:[^"\\]|\\.)*"?|'[^'\n]*'?|[^\s"',;&}]+)`,
  'gi',
);

/**
 * Redacts the value of a secret name. After `=` (assignments, query strings, env files) every value
 * is redacted; a quoted value is redacted whole. After `:` an unquoted value is redacted only when it
 * {@link looksSecret}: `token: t0k3n-value` is hidden, `Invalid token: expected string` is kept.
 */
function redactNamedValue(match: string, nameAndSeparator: string, value: string): string {
  const quote = /^(?:\\"|"|')/.exec(value)?.[0];
  if (quote === undefined && nameAndSeparator.trimEnd().endsWith(':') && !looksSecret(value)) return match;
  return quote === undefined
    ? `${nameAndSeparator}${REDACTED}`
    : `${nameAndSeparator}${quote}${REDACTED}${quote}`;
}

/**
 * A secret name in running text, then blanks, an optional `is` / `was`, and the value: a quoted
 * string (`"…"`, `'…'`, `` `…` ``, `\\"…\\"` in escaped JSON) or a bare run up to a blank, a quote
 * or `,;&}` — `the password is hunter2hunter2`, `invalid API key AKZ9…`, `secret
 * wJalrXUtnFEMI/K7MDENG…`. The name must end at
 * the secret word (`password_policy strict` is not one); a value that is itself a secret name is the
 * next name, not a value (`secret token X`: the value is X), and so is a quoted string followed by
 * `:` or `=` (`auth "api_key": …`); a quoted value ends at a closing quote not followed by a letter.
 */
const VALUE_IN_PROSE = new RegExp(
  String.raw`(?<![\w.-])([\w.-]*?${SECRET_WORD_IN_PROSE}[ \t]+(?:(?:is|was)[ \t]+)?)(?!${SECRET_WORD_IN_PROSE}[ \t])(\\"(?:(?!\\")[^\n])*\\"(?!\w|[ \t]*[:=])|"[^"\n]*"(?!\w|[ \t]*[:=])|'[^'\n]*'(?!\w|[ \t]*[:=])|\x60[^\x60\n]*\x60|[^\s"'\x60,;&}]+)`,
  'gi',
);

/**
 * Redacts the value after a secret name in running text: a quoted value always, a bare one when it
 * {@link looksSecret} — `the password is hunter2hunter2` is hidden, `the API key is invalid` and
 * `Bearer token missing` are kept (so is `the password is swordfish`: a plain word is prose).
 */
function redactValueInProse(match: string, nameAndBlank: string, value: string): string {
  if (value.startsWith(REDACTED)) return match;
  const quoted = /^\\?["'\x60]/.test(value);
  return quoted || looksSecret(value) ? `${nameAndBlank}${REDACTED}` : match;
}

/** Rewrites what a rule's pattern matched (its arguments are those of `String.prototype.replace`). */
type Redact = (match: string, ...groups: string[]) => string;

const redacted: Redact = () => REDACTED;
const afterPrefix: Redact = (_match, prefix) => `${prefix}${REDACTED}`;
const home: Redact = () => '~';
const removed: Redact = () => '';

/**
 * Does a line that starts with `at ` end as a stack frame does: with a source location, bare or in
 * parentheses (`/srv/app.js:10:5`, `(node:events:517:28)`, `(Foo.java:42)`, `file:///srv/a.mjs:3:1`),
 * or a frame without one (`(native)`, `(<anonymous>)`, `(index 0)`, `(Native Method)`, `(Unknown
 * Source)`)? `at 10:30` and `at least once` are not frames. (Plain string tests, no backtracking on
 * a long line.)
 */
function endsLikeFrame(line: string): boolean {
  const trimmed = line.trimEnd();
  if (/\((?:native|<anonymous>|index \d+|Native Method|Unknown Source)\)$/.test(trimmed)) return true;
  const last = trimmed.slice(trimmed.lastIndexOf(' ') + 1).replace(/^\(|\)$/g, '');
  const file = last.replace(/:\d+(?::\d+)?$/, '');
  return file !== last && (/[./\\]/.test(file) || file.startsWith('node:') || file === '<anonymous>');
}

/** Removes a line that starts with `at ` if it {@link endsLikeFrame}. */
const frameRemoved: Redact = (line, body) => (endsLikeFrame(body) ? '' : line);

/**
 * The lines of stack traces after a message's first line, removed with the line break before each
 * (nothing marks where they were): V8 and Java frames (`at fn (/srv/app.js:10:5)`, `at
 * file:///srv/app.mjs:3:1`, `at async Promise.all (index 0)`, `\tat com.shop.Pay.run(Pay.java:42)`,
 * `... 12 more`), raw or escaped in a JSON string (`\\n    at …`), and Python's (`File
 * "/srv/app.py", line 10, in run`, with the source line and the `^^^^` markers under it) and the
 * `Traceback (most recent call last):` line above them.
 */
const STACK_RULES: ReadonlyArray<readonly [RegExp, Redact]> = [
  [/\r?\n[ \t]*at ([^\r\n]*)/g, frameRemoved],
  [/(?:\\r)?\\n[ \t]*at ((?:\\\\|[^\r\n\\"]|\\(?![rn"\\]))*)/g, frameRemoved],
  [/(?:\r?\n|(?:\\r)?\\n)[ \t]+\.\.\. \d+ more(?=\r?\n|(?:\\r)?\\n|\\?"|$)/g, removed],
  [
    /\r?\n[ \t]+File "[^"\r\n]*", line \d+[^\r\n]*(?:\r?\n[ \t]{4,}(?!File ")[^\r\n]*)?(?:\r?\n[ \t]+[~^]+[ \t]*(?=\r?\n|$))?/g,
    removed,
  ],
  [
    /^[ \t]*Traceback \(most recent call last\):[ \t]*(?:\r?\n|$)|\r?\n[ \t]*Traceback \(most recent call last\):[ \t]*(?=\r?\n|$)/g,
    removed,
  ],
];

/** Each rule rewrites one kind of secret or private detail. Order matters: specific before generic. */
const REDACTION_RULES: ReadonlyArray<readonly [RegExp, Redact]> = [
  ...STACK_RULES,
  // PEM private keys (RSA, EC, OpenSSH, PKCS#8, encrypted, PGP), whole; one cut short runs to the end
  [
    /-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)/g,
    redacted,
  ],
  // webhook URLs, whose path is the credential: Slack (services, workflows, triggers), Discord
  [/(\bhttps?:\/\/hooks\.slack(?:-gov)?\.com\/(?:services|workflows|triggers)\/)[^\s"'<>\\]+/gi, afterPrefix],
  [/(\bhttps?:\/\/(?:[a-z]+\.)?discord(?:app)?\.com\/api\/webhooks\/)[^\s"'<>\\]+/gi, afterPrefix],
  // an AWS access key id, and the 40-character secret key right after it,
  // before `token X` takes the id alone (`AKIA… wJalr…`, `AKIA…:wJalr…`)
  [
    /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b([\s:,;=|"'-]{1,6})[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g,
    (_match, separator) => `${REDACTED}${separator}${REDACTED}`,
  ],
  // credentials inside URLs: scheme://user:password@host (the password may itself hold an @)
  [
    /(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/)[^\s:/@]+:[^\s/]*@/gi,
    (_match, scheme) => `${scheme}${REDACTED}@`,
  ],
  // Cookie and Set-Cookie headers: all their name=value pairs
  [/\b((?:set-)?cookie\s*:\s*)[^\s=;"']+=[^\r\n"']*/gi, afterPrefix],
  // HTTP authentication: the credentials of an Authorization header, whatever they look like…
  [
    /\b((?:proxy-)?authorization\s*:\s*(?:bearer|basic|digest|token|negotiate)\s+)[A-Za-z0-9._~+/=-]+/gi,
    afterPrefix,
  ],
  // … and Bearer / Basic / Digest / Token credentials elsewhere, when they look like credentials
  [
    /\b((?:bearer|basic|digest|token)\s+)(?!(?:bearer|basic|digest|token)\s)([A-Za-z0-9._~+/=-]+)/gi,
    (match, scheme, credentials) => (looksSecret(credentials) ? `${scheme}${REDACTED}` : match),
  ],
  // JSON Web Tokens
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, redacted],
  // well-known key shapes: OpenAI/Anthropic, Stripe, GitHub, Slack, AWS access keys, Google API keys
  [/\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}/g, redacted],
  [/\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}/g, redacted],
  [/\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})/g, redacted],
  [/\bxox[abprs]-[A-Za-z0-9-]{10,}/g, redacted],
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, redacted],
  [/\bAIza[0-9A-Za-z_-]{35}/g, redacted],
  // URL query parameters that carry keys and signatures whatever their name says: ?key=…, &sig=…
  [/([?&](?:key|sig)=)[^\s&#"']+/gi, afterPrefix],
  // name=value and "name": "value" pairs whose name says secret
  [NAMED_VALUE, redactNamedValue],
  // a secret name in running text and its value: `the password is hunter2hunter2`, `API key AKZ9…`
  [VALUE_IN_PROSE, redactValueInProse],
  // home directories: /home/alice/..., /Users/alice/..., C:\Users\alice\...
  [/\/home\/[^/\s]+/g, home],
  [/\/Users\/[^/\s]+/g, home],
  [/\b[A-Za-z]:\\Users\\[^\\\s]+/g, home],
];

/**
 * Removes secrets, stack traces and home-directory paths from an error message, and caps its
 * length, so that errors can be logged and returned to callers (HTTP clients included) safely.
 *
 * - Stack traces: every stack-frame line after the first line — V8 and Java frames (`    at fn
 *   (/srv/app.js:10:5)`, `at file:///srv/app.mjs:3:1`, `at async Promise.all (index 0)`, `... 12
 *   more`), raw or JSON-escaped (`\\n    at …`), Python's `File "…", line N` lines with their
 *   source line and the `Traceback (most recent call last):` line — is removed with the line break
 *   before it; nothing takes its place, the message's other lines are kept.
 * - Hidden as `[REDACTED]`: PEM private-key blocks (whole, up to their END line or the end of the
 *   message), Slack and Discord webhook URLs (their path), credentials in URLs, `Cookie` headers,
 *   `Bearer`/`Basic` credentials, JWTs, well-known key shapes (`sk-…`, `sk-proj-…`, `sk_live_…`,
 *   `ghp_…`, `xoxb-…`, `AKIA…`/`ASIA…` and the 40-character secret key right after one, `AIza…`),
 *   `?key=`/`&sig=` query parameters, and the value of any name whose last word says secret —
 *   `DB_PASSWORD=…`, `"apiKey": "…"`, `x-api-key: …`, or in running text `the password is …`,
 *   `invalid API key …`, `secret …`.
 * - After `=` or in quotes the value is always hidden, whole; after a bare `:` or in running text
 *   only when it looks like a secret (at least 6 characters and not a plain word), so that
 *   diagnostics such as `Invalid token: expected string` or `the API key is invalid` stay readable
 *   — and a password that is a plain word (`the password is swordfish`) is kept too.
 * - Home directories (`/home/alice`, `/Users/alice`, `C:\\Users\\alice`) become `~`.
 *
 * @example
 * sanitizeMessage('auth failed: password=hunter2 at /home/alice/app.js');
 * // 'auth failed: password=[REDACTED] at ~/app.js'
 * sanitizeMessage('{"db_password": "correct horse battery staple"}');
 * // '{"db_password": "[REDACTED]"}'
 * sanitizeMessage('Error: boom\n    at run (/srv/app.js:10:5)\n    at node:internal/timers:581:17');
 * // 'Error: boom'
 */
export function sanitizeMessage(message: string, maxLength = MAX_ERROR_MESSAGE_LENGTH): string {
  // A redaction can show a name its value's quotes hid (`auth "passphrase is "x y""`): the rules run
  // again until nothing changes, so that sanitizing a sanitized message changes nothing.
  let text = redactOnce(message);
  for (let pass = 1; pass < MAX_PASSES; pass++) {
    const again = redactOnce(text);
    if (again === text) break;
    text = again;
  }
  return text.length > maxLength ? `${text.slice(0, maxLength)}… [truncated]` : text;
}

/** Most times the rules run over a message (a second pass rarely changes anything, a third never has). */
const MAX_PASSES = 4;

function redactOnce(message: string): string {
  let text = message;
  for (const [pattern, replacement] of REDACTION_RULES) text = text.replace(pattern, replacement);
  return text;
}
