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
  '(?:password|passwd|pwd|passphrase|secret|token|credentials?|signature|auth|authorization|' +
  '(?:api|access|private|secret|signing|encryption|client|master|ssh)[_.-]?key)';

/**
 * A word as prose writes it (`expected`, `Missing`, `EXPIRED`, `non-empty`, `required.`): after a
 * colon it is read as a diagnostic, not as a secret.
 */
const PLAIN_WORD = /^(?:[A-Z]?[a-z]+|[A-Z]+)(?:-[A-Za-z]+)*[.!?)]*$/;

/** Shortest unquoted value read as a secret after a colon or an authentication scheme. */
const MIN_SECRET_LENGTH = 6;

/** Does an unquoted value in running text look like a secret rather than a word? */
function looksSecret(value: string): boolean {
  return value.length >= MIN_SECRET_LENGTH && !PLAIN_WORD.test(value);
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

/** Rewrites what a rule's pattern matched (its arguments are those of `String.prototype.replace`). */
type Redact = (match: string, ...groups: string[]) => string;

const redacted: Redact = () => REDACTED;
const afterPrefix: Redact = (_match, prefix) => `${prefix}${REDACTED}`;
const home: Redact = () => '~';

/** Each rule rewrites one kind of secret or private detail. Order matters: specific before generic. */
const REDACTION_RULES: ReadonlyArray<readonly [RegExp, Redact]> = [
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
    /\b((?:bearer|basic|digest|token)\s+)([A-Za-z0-9._~+/=-]+)/gi,
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
  // home directories: /home/alice/..., /Users/alice/..., C:\Users\alice\...
  [/\/home\/[^/\s]+/g, home],
  [/\/Users\/[^/\s]+/g, home],
  [/\b[A-Za-z]:\\Users\\[^\\\s]+/g, home],
];

/**
 * Removes secrets and home-directory paths from an error message, and caps its length, so that
 * errors can be logged and returned to callers safely. Hidden: credentials in URLs, `Cookie` headers,
 * `Bearer`/`Basic` credentials, JWTs, well-known key shapes (`sk-…`, `sk_live_…`, `ghp_…`, `xoxb-…`,
 * `AKIA…`/`ASIA…`, `AIza…`), `?key=`/`&sig=` query parameters, and the value of any name whose last
 * word says secret (`DB_PASSWORD=…`, `"apiKey": "…"`, `x-api-key: …`). After `=` or in quotes the value
 * is always hidden, whole; after a bare `:` only when it looks like a secret (at least 6 characters and
 * not a plain word), so that diagnostics such as `Invalid token: expected string` stay readable.
 *
 * @example
 * sanitizeMessage('auth failed: password=hunter2 at /home/alice/app.js');
 * // 'auth failed: password=[REDACTED] at ~/app.js'
 * sanitizeMessage('{"db_password": "correct horse battery staple"}');
 * // '{"db_password": "[REDACTED]"}'
 */
export function sanitizeMessage(message: string, maxLength = MAX_ERROR_MESSAGE_LENGTH): string {
  let text = message;
  for (const [pattern, replacement] of REDACTION_RULES) {
    text = text.replace(pattern, replacement);
  }
  return text.length > maxLength ? `${text.slice(0, maxLength)}… [truncated]` : text;
}
