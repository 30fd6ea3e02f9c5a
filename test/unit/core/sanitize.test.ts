import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_ERROR_MESSAGE_LENGTH, sanitizeMessage, TxError, TxErrorCode } from '../../../src/index.js';

/** A Google API key's shape: AIza and 35 more characters. */
const GOOGLE_KEY = 'AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW';

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
  ])('redacts %s', (message, secret) => {
    expect(sanitizeMessage(message)).not.toContain(secret);
  });

  it.each([
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
  ])('keeps the ordinary diagnostic %s as it is', (message) => {
    expect(sanitizeMessage(message)).toBe(message);
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
    );
  });
});
