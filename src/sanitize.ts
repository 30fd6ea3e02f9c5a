/**
 * Longest error message kept; the rest is cut and marked `… [truncated]`.
 *
 * @example
 * sanitizeMessage('x'.repeat(1_000)).length; // MAX_ERROR_MESSAGE_LENGTH + '… [truncated]'.length
 */
export const MAX_ERROR_MESSAGE_LENGTH = 500;

const REDACTED = '[REDACTED]';

/** Each rule rewrites one kind of secret or private detail. Order matters: specific before generic. */
const REDACTION_RULES: ReadonlyArray<readonly [RegExp, string]> = [
  // credentials inside URLs: scheme://user:password@host
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s:/@]+:[^\s@/]+@/gi, `$1${REDACTED}@`],
  // Authorization: Bearer xyz / Basic xyz
  [/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${REDACTED}`],
  // JSON Web Tokens
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g, REDACTED],
  // well-known key shapes: OpenAI/Anthropic style, GitHub, Slack, AWS access keys
  [/\b(sk|pk|rk)-[A-Za-z0-9_-]{16,}/g, REDACTED],
  [/\bgh[pousr]_[A-Za-z0-9]{20,}/g, REDACTED],
  [/\bxox[abprs]-[A-Za-z0-9-]{10,}/g, REDACTED],
  [/\bAKIA[0-9A-Z]{16}\b/g, REDACTED],
  // key=value and "key": "value" pairs whose key names a secret
  [
    /\b((?:api[_-]?key|apikey|access[_-]?key|secret(?:[_-]?key)?|client[_-]?secret|password|passwd|pwd|token|access[_-]?token|refresh[_-]?token|auth(?:orization)?|credentials?|private[_-]?key)["']?\s*[:=]\s*["']?)[^\s"',;&}]+/gi,
    `$1${REDACTED}`,
  ],
  // home directories: /home/alice/..., /Users/alice/..., C:\Users\alice\...
  [/\/home\/[^/\s]+/g, '~'],
  [/\/Users\/[^/\s]+/g, '~'],
  [/\b[A-Za-z]:\\Users\\[^\\\s]+/g, '~'],
];

/**
 * Removes secrets (tokens, passwords, API keys, credentials in URLs) and home-directory paths from an
 * error message, and caps its length, so that errors can be logged and returned to callers safely.
 *
 * @example
 * sanitizeMessage('auth failed: password=hunter2 at /home/alice/app.js');
 * // 'auth failed: password=[REDACTED] at ~/app.js'
 */
export function sanitizeMessage(message: string, maxLength = MAX_ERROR_MESSAGE_LENGTH): string {
  let text = message;
  for (const [pattern, replacement] of REDACTION_RULES) {
    text = text.replace(pattern, replacement);
  }
  return text.length > maxLength ? `${text.slice(0, maxLength)}… [truncated]` : text;
}
