import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_ERROR_MESSAGE_LENGTH, sanitizeMessage, TxError, TxErrorCode } from '../../../src/index.js';
import { fuzz } from './fuzz.js';

/** A Google API key's shape: AIza and 35 more characters. */
const GOOGLE_KEY = 'AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW';

/** A PEM private key (made up: the shape of one). */
const PEM = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun',
  'VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK',
  'Hw3u5vPxdaxJ7oRpy6p5Kz0p4ChUrWSw==',
  '-----END RSA PRIVATE KEY-----',
].join('\n');

/** Slack's own example of an incoming-webhook URL. */
const SLACK_WEBHOOK = 'https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX';

describe('sanitizeMessage', () => {
  // [message, what must not survive]
  it.each([
    ['password=hunter2', 'hunter2'],
    ['"api_key": "abc123xyz"', 'abc123xyz'],
    ['token: t0k3n-value', 't0k3n-value'],
    ['client_secret=s3cr3t&x=1', 's3cr3t'],
    ['DB_PASSWORD=hunter2', 'hunter2'],
    ['AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'wJalrXUtnFEMI'],
    ['aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'wJalrXUtnFEMI'],
    ['GITHUB_TOKEN=abcdef0123456789', 'abcdef0123456789'],
    ['user_password: s3cret!', 's3cret'],
    ['{"db_password":"hunter2"}', 'hunter2'],
    ['{"secretAccessKey":"wJalrXUtnFEMI/K7MDENG"}', 'wJalrXUtnFEMI'],
    ['{"password": "correct horse battery staple"}', 'horse'],
    ['password="two words"', 'words'],
    ["password='two words'", 'words'],
    ['{\\"password\\":\\"hunter2 again\\"}', 'again'],
    ['{"password": "unterminated hunter2', 'hunter2'],
    ['x-api-key: abcdef0123456789', 'abcdef0123456789'],
    ['Authorization: Bearer abcdefghijklmnop', 'abcdefghijklmnop'],
    ['Authorization: Bearer abc.def.ghi', 'abc.def.ghi'],
    ['Authorization: Basic dXNlcjpwYXNzd29yZA==', 'dXNlcjpwYXNzd29yZA'],
    ['Cookie: session=abcdef0123456789; theme=dark', 'abcdef0123456789'],
    ['Set-Cookie: sid=s3ss10n; Path=/; HttpOnly', 's3ss10n'],
    ['key sk-ant-abcdefghijklmnopqrstuv', 'sk-ant-abcdefghijklmnopqrstuv'],
    ['Stripe sk_live_51Habcdefghijklmnopqrstuv', '51Habcdefghijklmnopqrstuv'],
    ['Stripe sk_test_51Habcdefghijklmnopqrstuv', '51Habcdefghijklmnopqrstuv'],
    ['gh token ghp_abcdefghijklmnopqrstuvwxyz0123', 'ghp_abcdefghijklmnopqrstuvwxyz0123'],
    ['aws AKIAABCDEFGHIJKLMNOP', 'AKIAABCDEFGHIJKLMNOP'],
    ['ASIAIOSFODNN7EXAMPLE temp aws key', 'ASIAIOSFODNN7EXAMPLE'],
    [`google ${GOOGLE_KEY} rejected`, GOOGLE_KEY],
    ['https://api.x.com/v1?key=AIzaSyA1234567890abcdefghijklmno', 'AIzaSyA1234567890'],
    ['https://blob.example/c?sv=2024&sig=abcDEF123%2B&se=1', 'abcDEF123'],
    [
      'https://s3.amazonaws.com/b/o?X-Amz-Signature=abcdef0123456789abcdef&X-Amz-Credential=AKIA',
      'abcdef0123',
    ],
    ['https://example.com/cb?access_token=abcdef0123456789', 'abcdef0123456789'],
    ['jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig', 'eyJzdWIiOiIxMjM0NTY3ODkwIn0'],
    ['connect redis://admin:pa55w0rd@db:6379 failed', 'pa55w0rd'],
    ['postgres://user:p@ss@host/db', 'p@ss'],
    ['at /home/alice/projects/app.js:10', 'alice'],
    ['at /Users/bob/app.js', 'bob'],
    ['at C:\\Users\\carol\\app.js', 'carol'],
    // the hardening issue's S2 misses
    [`failed: ${PEM}`, 'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun'],
    [`failed: ${PEM}`, 'Hw3u5vPxdaxJ7oRpy6p5Kz0p4ChUrWSw=='],
    ['aws AKIAIOSFODNN7EXAMPLE secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'wJalrXUtnFEMI'],
    ['aws AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'wJalrXUtnFEMI'],
    [`post to ${SLACK_WEBHOOK} failed`, 'XXXXXXXXXXXXXXXXXXXXXXXX'],
    [`post to ${SLACK_WEBHOOK} failed`, 'T00000000/B00000000'],
    ['invalid API key AKZ9f83hd7s6s5a4q3w2e1r0tyuiopa', 'AKZ9f83hd7s6s5a4q3w2e1r0tyuiopa'],
    ['the password is hunter2hunter2', 'hunter2hunter2'],
    [
      'Error: boom\n    at charge (/srv/shop/dist/pay.js:10:5)\n    at file:///srv/shop/main.mjs:3:1',
      'pay.js',
    ],
    // and a few neighbours of them
    ['the passphrase is "correct horse battery staple"', 'horse'],
    ['rejected: client secret wJalrXUtnFEMI/K7MDENG', 'wJalrXUtnFEMI'],
    ['bad private key 9f8e7d6c5b4a', '9f8e7d6c5b4a'],
    ['https://discord.com/api/webhooks/123456789/abcDEF-ghi_JKL', 'abcDEF-ghi_JKL'],
  ])('redacts %s', (message, secret) => {
    expect(sanitizeMessage(message)).not.toContain(secret);
  });

  it.each([
    [`key: ${PEM}`, 'key: [REDACTED]'],
    [`cut short: ${PEM.slice(0, 120)}`, 'cut short: [REDACTED]'],
    [
      `{"private_key": "${PEM.replaceAll('\n', '\\n')}\\n", "client_email": "svc@x.iam"}`,
      '{"private_key": "[REDACTED]", "client_email": "svc@x.iam"}',
    ],
    [
      'aws AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY rejected',
      'aws [REDACTED]:[REDACTED] rejected',
    ],
    [`post to ${SLACK_WEBHOOK} failed`, 'post to https://hooks.slack.com/services/[REDACTED] failed'],
    ['invalid API key AKZ9f83hd7s6s5a4q3w2e1r0tyuiopa', 'invalid API key [REDACTED]'],
    ['the password is hunter2hunter2', 'the password is [REDACTED]'],
    ['DB_PASSWORD=hunter2', 'DB_PASSWORD=[REDACTED]'],
    ['{"password": "correct horse battery staple"}', '{"password": "[REDACTED]"}'],
    ['Authorization: Bearer abc.def.ghi', 'Authorization: Bearer [REDACTED]'],
    ['Cookie: session=abcdef0123456789', 'Cookie: [REDACTED]'],
    ['postgres://user:p@ss@host/db', 'postgres://[REDACTED]@host/db'],
    ['GET /v1?key=AIzaSy123&q=1', 'GET /v1?key=[REDACTED]&q=1'],
  ])('redacts %s as %s, keeping the shape', (message, sanitized) => {
    expect(sanitizeMessage(message)).toBe(sanitized);
  });

  it.each([
    'Tool get_weather failed: city not found',
    'Invalid token: expected string',
    'Invalid token: Expired.',
    'field "auth": missing',
    'secret: Required',
    'password: non-empty string required',
    'max_tokens=100 exceeded',
    'token_count=5, password_policy: strict',
    'Basic authentication failed',
    'Bearer token missing',
    'Bearer short',
    'Invalid cookie: expected name=value',
    'duplicate key=order-42',
    'pk_users_id violates unique constraint',
    'The API key is invalid',
    'the password is expired',
    'token usage: 1500 of 1000',
    'Bearer token invalid_grant',
    'secret rotation (scheduled)',
    'the API key is NOT_FOUND',
    'auth failed for 3 users',
    'Retry the call\n  at 10:30 tomorrow',
    'run it again\n    at least once',
  ])('keeps the ordinary diagnostic %s as it is', (message) => {
    expect(sanitizeMessage(message)).toBe(message);
  });

  it.each([
    [
      'V8 frames',
      'Error: card declined\n    at charge (/srv/shop/dist/pay.js:10:5)\n    at async Promise.all (index 0)\n' +
        '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)\n    at /srv/shop/main.js:3:1',
      'Error: card declined',
    ],
    [
      'ESM frames and a message after them',
      'TypeError: x is undefined\n    at file:///home/alice/shop/main.mjs:3:1\n    at new Promise (<anonymous>)\ncode: E_SHOP',
      'TypeError: x is undefined\ncode: E_SHOP',
    ],
    [
      'Windows frames and CRLF',
      'Error: boom\r\n    at run (C:\\Users\\carol\\app\\index.js:10:5)\r\n    at Array.map (native)\r\nafter',
      'Error: boom\r\nafter',
    ],
    [
      'a Java trace',
      'java.io.IOException: disk full\n\tat com.shop.Pay.run(Pay.java:42)\n\tat java.base/java.lang.Thread.run(Unknown Source)\n' +
        'Caused by: java.lang.RuntimeException: quota\n\tat com.shop.Quota.check(Quota.java:7)\n\t... 12 more',
      'java.io.IOException: disk full\nCaused by: java.lang.RuntimeException: quota',
    ],
    [
      'a Python traceback',
      'Traceback (most recent call last):\n  File "/home/bob/srv/app.py", line 10, in handler\n    charge(card)\n' +
        '  File "/home/bob/srv/pay.py", line 3, in charge\n    raise ValueError("card declined")\n    ^^^^^^^^^^^^^^^^\n' +
        'ValueError: card declined',
      'ValueError: card declined',
    ],
    [
      'a stack in escaped JSON',
      '{"error":"boom","stack":"Error: boom\\n    at run (/srv/app.js:10:5)\\n    at C:\\\\srv\\\\x.js:1:2"}',
      '{"error":"boom","stack":"Error: boom"}',
    ],
  ])('removes the stack frames of %s, keeping the other lines', (_kind, message, sanitized) => {
    expect(sanitizeMessage(message)).toBe(sanitized);
  });

  it('removes a stack trace before capping the length, so that what follows it is kept', () => {
    const frames = Array.from({ length: 40 }, (_, n) => `\n    at step${n} (/srv/app/steps.js:${n}:1)`).join(
      '',
    );
    expect(sanitizeMessage(`Error: step failed${frames}\nreason: out of stock`)).toBe(
      'Error: step failed\nreason: out of stock',
    );
  });

  it('answers a long message in linear time (no regex backtracking on long lines)', () => {
    const long = [
      `x\n at ${'a/'.repeat(20_000)}`,
      `x\n    at ${'(a.b '.repeat(10_000)}`,
      `password ${'a'.repeat(50_000)}`,
      `-----BEGIN PRIVATE KEY-----${'A'.repeat(50_000)}`,
      `API key ${'x.'.repeat(25_000)}`,
      'password '.repeat(10_000),
      `token ${'\\"'.repeat(20_000)}`,
      '\\n    at x'.repeat(10_000),
    ];
    const started = performance.now();
    for (const message of long) sanitizeMessage(message);
    expect(performance.now() - started).toBeLessThan(1_000); // ~100 ms; a quadratic rule takes minutes
  });

  it('caps the length', () => {
    const sanitized = sanitizeMessage('x'.repeat(10_000));
    expect(sanitized.length).toBeLessThan(MAX_ERROR_MESSAGE_LENGTH + 20);
    expect(sanitized.endsWith('[truncated]')).toBe(true);
  });

  it('is applied to every TxError message', () => {
    const error = new TxError(TxErrorCode.ToolError, 'failed with password=hunter2');
    expect(error.message).toBe('failed with password=[REDACTED]');
  });
});

/** Prose around the secret: lowercase words, so that they can never contain a secret with a digit. */
const prose = fc.array(fc.string({ unit: fc.constantFrom(...'abcdefghij'), minLength: 1, maxLength: 8 }), {
  maxLength: 6,
});

/** A generated secret: a run of key characters with at least one digit, as tokens and passwords have. */
const secret = fc
  .tuple(
    fc.string({ unit: fc.constantFrom(...'abcXYZ0189-._~+'), minLength: 5, maxLength: 30 }),
    fc.constantFrom(...'0123456789'),
    fc.string({ unit: fc.constantFrom(...'abcXYZ0189'), minLength: 2, maxLength: 10 }),
  )
  .map(([head, digit, tail]) => `${head}${digit}${tail}`);

/** A name whose last word says secret, with any prefix and casing: DB_PASSWORD, myApiKey, x-auth-token… */
const secretName = fc
  .tuple(
    fc.constantFrom('', 'db_', 'AWS_', 'user.', 'x-', 'my', 'github_', 'app-client-'),
    fc.constantFrom(
      'password',
      'passwd',
      'secret',
      'token',
      'api_key',
      'ApiKey',
      'access-key',
      'PRIVATE_KEY',
      'credential',
      'auth',
      'Signature',
    ),
    fc.constantFrom('lower', 'upper', 'as is'),
  )
  .map(([prefix, word, casing]) => {
    const name = `${prefix}${word}`;
    return casing === 'lower' ? name.toLowerCase() : casing === 'upper' ? name.toUpperCase() : name;
  });

/** Where a secret appears in a message. */
const contexts: Array<(name: string, value: string) => string> = [
  (name, value) => `${name}=${value}`,
  (name, value) => `${name} = ${value}`,
  (name, value) => `${name}: ${value}`,
  (name, value) => `{"${name}":"${value}"}`,
  (name, value) => `{"${name}": "${value} ${value}"}`,
  (name, value) => `${name}='${value}'`,
  (name, value) => `https://host/p?${name}=${value}&x=1`,
  (_name, value) => `https://host/p?key=${value}`,
  (_name, value) => `Authorization: Bearer ${value}`,
  (_name, value) => `Cookie: sid=${value}; theme=dark`,
  (_name, value) => `redis://user:${value}@host:6379`,
];

describe('sanitizeMessage (properties)', () => {
  it('never lets a generated secret through, whatever its name, context and surrounding prose', () => {
    fc.assert(
      fc.property(
        prose,
        secretName,
        secret,
        fc.constantFrom(...contexts),
        prose,
        (before, name, value, context, after) => {
          const message = [...before, context(name, value), ...after].join(' ');
          const sanitized = sanitizeMessage(message);
          expect(sanitized).not.toContain(value);
          expect(sanitizeMessage(sanitized)).toBe(sanitized);
        },
      ),
      fuzz(200),
    );
  });

  it('keeps prose after a secret name and a colon, and anything under a name that is not secret', () => {
    const word = fc.string({ unit: fc.constantFrom(...'abcdefghij'), minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(prose, secretName, word, secret, prose, (before, name, diagnostic, value, after) => {
        const kept = [
          [...before, `Invalid ${name}: ${diagnostic}`, ...after].join(' '),
          [...before, `${name}_count=${value}`, ...after].join(' '),
        ];
        for (const message of kept) expect(sanitizeMessage(message)).toBe(message);
      }),
      fuzz(200),
    );
  });
});

const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const DIGITS = '0123456789';
const ALNUM = `${UPPER}${LOWER}${DIGITS}`;
const BASE64 = `${ALNUM}+/`;
const BASE64URL = `${ALNUM}-_`;

/**
 * `length` characters of `alphabet` with at least one upper-case letter, one lower-case letter and
 * one digit somewhere, as generated keys have (fast-check leans towards the first character of an
 * alphabet: without them a "key" of 40 `A`s, a word, would be generated often).
 */
const keyOf = (alphabet: string, minLength: number, maxLength = minLength) =>
  fc
    .tuple(
      fc.string({ unit: fc.constantFrom(...alphabet), minLength: minLength - 3, maxLength: maxLength - 3 }),
      fc.constantFrom(...UPPER),
      fc.constantFrom(...LOWER),
      fc.constantFrom(...DIGITS),
      fc.nat(),
    )
    .map(([rest, upper, lower, digit, at]) => {
      const cut = at % (rest.length + 1);
      return `${rest.slice(0, cut)}${digit}${upper}${lower}${rest.slice(cut)}`;
    });

/** A secret as it shows up in an error message, and the parts of it that must not come out. */
interface Leak {
  readonly text: string;
  readonly hidden: readonly string[];
}

const pemBlock: fc.Arbitrary<Leak> = fc
  .record({
    kind: fc.constantFrom('', 'RSA ', 'EC ', 'DSA ', 'OPENSSH ', 'ENCRYPTED ', 'PGP '),
    lines: fc.array(keyOf(BASE64, 64), { minLength: 1, maxLength: 4 }),
    last: keyOf(BASE64, 8, 60).map((line) => `${line}==`),
    newline: fc.constantFrom('\n', '\r\n', '\\n'),
    cutShort: fc.boolean(),
  })
  .map(({ kind, lines, last, newline, cutShort }) => {
    const label = kind === 'PGP ' ? 'PGP PRIVATE KEY BLOCK' : `${kind}PRIVATE KEY`;
    const body = [`-----BEGIN ${label}-----`, ...lines, last];
    return {
      text: (cutShort ? body : [...body, `-----END ${label}-----`]).join(newline),
      hidden: [...lines, last],
    };
  });

const awsKeys: fc.Arbitrary<Leak> = fc
  .record({
    id: fc
      .tuple(
        fc.constantFrom('AKIA', 'ASIA'),
        fc.string({ unit: fc.constantFrom(...UPPER, ...DIGITS), minLength: 16, maxLength: 16 }),
      )
      .map(([prefix, rest]) => `${prefix}${rest}`),
    secret: keyOf(BASE64, 40),
    form: fc.constantFrom<Array<(id: string, secret: string) => string>>(
      (id, secret) => `${id} ${secret}`,
      (id, secret) => `${id}:${secret}`,
      (id, secret) => `key ${id} secret ${secret}`,
      (id, secret) => `access key ${id}, secret key ${secret}`,
      (id, secret) => `aws_access_key_id=${id} aws_secret_access_key=${secret}`,
      (id, secret) => `{"AccessKeyId":"${id}","SecretAccessKey":"${secret}"}`,
    ),
  })
  .map(({ id, secret, form }) => ({ text: form(id, secret), hidden: [id, secret] }));

const slackWebhook: fc.Arbitrary<Leak> = fc
  .record({
    team: keyOf(`${UPPER}${DIGITS}`, 8, 11).map((id) => `T${id}`),
    bot: keyOf(`${UPPER}${DIGITS}`, 8, 11).map((id) => `B${id}`),
    token: keyOf(ALNUM, 24),
    form: fc.constantFrom<Array<(url: string) => string>>(
      (url) => url,
      (url) => `POST ${url}: 403`,
      (url) => `"webhook_url": "${url}"`,
      (url) => `<${url}>`,
    ),
  })
  .map(({ team, bot, token, form }) => ({
    text: form(`https://hooks.slack.com/services/${team}/${bot}/${token}`),
    hidden: [`${team}/${bot}`, token],
  }));

const bearerToken: fc.Arbitrary<Leak> = fc
  .record({
    token: keyOf(`${BASE64URL}.~`, 20, 60),
    form: fc.constantFrom<Array<(token: string) => string>>(
      (token) => `Bearer ${token}`,
      (token) => `bearer ${token}`,
      (token) => `Authorization: Bearer ${token}`,
      (token) => `proxy-authorization: bearer ${token}`,
    ),
  })
  .map(({ token, form }) => ({ text: form(token), hidden: [token] }));

const apiKey: fc.Arbitrary<Leak> = fc
  .record({
    prefix: fc.constantFrom('sk-', 'sk-proj-', 'sk-ant-api03-', 'sk_live_', 'sk_test_', 'ghp_', 'xoxb-'),
    key: keyOf(ALNUM, 36, 48),
    form: fc.constantFrom<Array<(key: string) => string>>(
      (key) => key,
      (key) => `invalid key ${key}`,
      (key) => `OPENAI_API_KEY=${key}`,
      (key) => `"api_key": "${key}"`,
    ),
  })
  .map(({ prefix, key, form }) => ({ text: form(`${prefix}${key}`), hidden: [key] }));

/** A password as policies want them: some letters and digits, maybe symbols; no blank, quote or `,;&}`. */
const password = keyOf(`${ALNUM}!@#$%^*()_+=~-./:`, 8, 24);

const passwordInProse: fc.Arbitrary<Leak> = fc
  .record({
    password,
    form: fc.constantFrom<Array<(password: string) => string>>(
      (password) => `the password is ${password}`,
      (password) => `Password was ${password}`,
      (password) => `wrong DB password ${password}`,
      (password) => `passwd ${password} rejected`,
      (password) => `the secret is '${password}'`,
      (password) => `passphrase is "${password} ${password}"`,
      (password) => `invalid API key ${password}`,
      (password) => `client secret ${password}`,
      (password) => `postgres://app:${password.replaceAll('/', '')}@db:5432/shop`,
    ),
  })
  .map(({ password, form }) => ({ text: form(password), hidden: [password.replaceAll('/', '')] }));

const jwt: fc.Arbitrary<Leak> = fc
  .record({
    header: keyOf(BASE64URL, 10, 40),
    payload: keyOf(BASE64URL, 10, 80),
    signature: keyOf(BASE64URL, 20, 43),
    form: fc.constantFrom<Array<(jwt: string) => string>>(
      (jwt) => jwt,
      (jwt) => `jwt ${jwt} expired`,
      (jwt) => `"id_token":"${jwt}"`,
      (jwt) => `token=${jwt}`,
    ),
  })
  .map(({ header, payload, signature, form }) => ({
    text: form(`eyJ${header}.eyJ${payload}.${signature}`),
    hidden: [payload, signature],
  }));

/** Every kind of secret the sanitizer knows, as it appears in messages. */
const leak = fc.oneof(pemBlock, awsKeys, slackWebhook, bearerToken, apiKey, passwordInProse, jwt);

/**
 * Words of error messages, without a secret among them, but with the words that name secrets
 * (`password`, `token`, `API key`, `Bearer`…) and words that end with punctuation: prose the
 * sanitizer must leave as it is.
 */
const PROSE_WORDS = [
  ...[
    'the',
    'a',
    'request',
    'failed',
    'because',
    'is',
    'was',
    'for',
    'in',
    'of',
    'not',
    'at',
    'least',
    'once',
  ],
  ...['password', 'passwd', 'token', 'secret', 'API', 'key', 'private', 'access', 'auth', 'credentials'],
  ...['signature', 'Bearer', 'Basic', 'invalid', 'expired', 'missing', 'required', 'rejected', 'denied'],
  ...['Invalid', 'Missing', 'EXPIRED', 'NOT_FOUND', 'TEMPORARY_FAILURE', 'invalid_grant', 'non-empty'],
  ...['error:', 'Error:', 'token:', 'secret:', 'usage:', 'value.', 'order,', '(retry)', 'done!', 'why?'],
  ...['user', 'field', 'mismatch', 'policy', 'count', 'rotation', 'retry', 'later', 'webhook', 'slack'],
  ...['aws', 'AKIA', 'sk', 'eyJ', 'BEGIN', 'PRIVATE', 'KEY', 'File', 'line', 'Traceback', 'more', '...'],
  ...['3', '42', '500', '10:30', '-', '—'],
];

/** Prose: words from {@link PROSE_WORDS}, between blanks, commas, full stops and line breaks (indented or not). */
const proseOf = (maxWords: number) =>
  fc
    .array(
      fc.tuple(fc.constantFrom(...PROSE_WORDS), fc.constantFrom(' ', ' ', ' ', ', ', '. ', '\n', '\n    ')),
      {
        maxLength: maxWords,
      },
    )
    .map((words) =>
      words
        .map(([word, after]) => `${word}${after}`)
        .join('')
        .trimEnd(),
    );

/** A stack frame as V8 prints it, under a home directory or not. */
const stackFrame = fc
  .record({
    fn: fc.constantFrom(
      'charge',
      'Object.<anonymous>',
      'async Promise.all',
      'new Shop',
      'process.processTicksAndRejections',
    ),
    dir: fc.constantFrom(
      '/srv/shop',
      '/home/alice/shop',
      'file:///Users/bob/app',
      'C:\\Users\\carol\\app',
      'node:internal',
    ),
    file: fc.constantFrom('pay.js', 'main.mjs', 'process/task_queues', 'dist/index.cjs'),
    line: fc.nat({ max: 9_999 }),
    column: fc.nat({ max: 200 }),
    form: fc.constantFrom<Array<(fn: string, location: string) => string>>(
      (fn, location) => `    at ${fn} (${location})`,
      (_fn, location) => `    at ${location}`,
      (fn) => `    at ${fn} (index 0)`,
      (fn) => `    at ${fn} (<anonymous>)`,
    ),
  })
  .map(({ fn, dir, file, line, column, form }) => {
    const separator = dir.includes('\\') ? '\\' : '/';
    return form(fn, `${dir}${separator}${file}:${line}:${column}`);
  });

/** How a message holds a secret between two pieces of prose: in the text, or in a JSON string (escaped). */
const glues: Array<(before: string, secret: string, after: string) => string> = [
  (before, secret, after) => `${before} ${secret} ${after}`,
  (before, secret, after) => `${before}: ${secret}\n${after}`,
  (before, secret, after) => `${before}\n${secret}. ${after}`,
  (before, secret, after) => `{"error": ${JSON.stringify(`${before} ${secret} ${after}`)}}`,
];

describe('sanitizeMessage (properties: generated secrets in generated prose)', () => {
  it('never lets a generated secret through, wherever it sits in prose, and is idempotent', () => {
    fc.assert(
      fc.property(
        proseOf(12),
        leak,
        proseOf(12),
        fc.constantFrom(...glues),
        (before, { text, hidden }, after, glue) => {
          const message = glue(before, text, after);
          const sanitized = sanitizeMessage(message, Number.MAX_SAFE_INTEGER);
          for (const part of hidden) expect(sanitized).not.toContain(part);
          expect(sanitizeMessage(sanitized, Number.MAX_SAFE_INTEGER)).toBe(sanitized);
        },
      ),
      fuzz(500),
    );
  });

  it('leaves prose without a secret exactly as it is', () => {
    fc.assert(
      fc.property(proseOf(40), (message) => {
        expect(sanitizeMessage(message, Number.MAX_SAFE_INTEGER)).toBe(message);
      }),
      fuzz(500),
    );
  });

  it('removes every stack frame after the first line, and keeps the prose around them as it is', () => {
    fc.assert(
      fc.property(
        proseOf(10).filter((text) => !text.includes('\n')),
        fc.array(stackFrame, { minLength: 1, maxLength: 12 }),
        proseOf(10),
        (first, frames, after) => {
          const rest = after === '' ? '' : `\n${after}`;
          const sanitized = sanitizeMessage(
            `Error: ${first}\n${frames.join('\n')}${rest}`,
            Number.MAX_SAFE_INTEGER,
          );
          expect(sanitized).toBe(`Error: ${first}${rest}`);
        },
      ),
      fuzz(300),
    );
  });
});
