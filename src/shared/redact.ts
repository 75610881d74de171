/**
 * Secrets in the configuration (webhook headers, tokens in URLs, restic repository credentials,
 * environment values handed to jobs) never leave snapguard: every output of the configuration,
 * and every message that names a URL or a repository, goes through these functions.
 */

export const REDACTED = '[redacted]';

/** Keys whose values are secrets themselves (not paths to them: passwordFile stays). */
const SECRET_KEY =
  /pass(word|phrase)?$|secret|token|api[-_]?key|credential|authorization|cookie|private[-_]?key/i;

/** Keys whose every value is redacted: HTTP headers and environment variables. */
const SECRET_MAPS = new Set(['headers', 'env', 'environment']);

/**
 * Redacts the credentials of every URL in a text: the password of `user:password@` (and the whole
 * userinfo of http(s) URLs, where it is a token), and the value of every query parameter.
 * Works on restic repository strings too (`rest:https://user:pw@host/`, `s3:https://...`).
 */
export function redactUrls(text: string): string {
  return text.replace(
    /\b([a-z][a-z0-9+.-]*):\/\/([^\s/?#'"<>]*)([^\s'"<>]*)/gi,
    (_all, scheme: string, authority: string, rest: string) => {
      let auth = authority;
      const at = authority.lastIndexOf('@');
      if (at >= 0) {
        const userinfo = authority.slice(0, at);
        const host = authority.slice(at + 1);
        const colon = userinfo.indexOf(':');
        const user = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
        auth =
          colon >= 0
            ? `${user}:${REDACTED}@${host}`
            : /^https?$/i.test(scheme)
              ? `${REDACTED}@${host}`
              : authority;
      }
      const query = rest.replace(/([?&][^=&#\s]*=)([^&#\s]*)/g, (_q, key: string, value: string) =>
        value ? `${key}${REDACTED}` : key,
      );
      return `${scheme}://${auth}${query}`;
    },
  );
}

/** A deep copy of a value (a configuration) with every secret replaced by [redacted]. */
export function redactSecrets<T>(value: T): T {
  return walk(value, undefined) as T;
}

function walk(value: unknown, key: string | undefined): unknown {
  if (typeof value === 'string') {
    if (key !== undefined && SECRET_KEY.test(key)) return REDACTED;
    return redactUrls(value);
  }
  if (Array.isArray(value)) return value.map((item) => walk(item, undefined));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (SECRET_MAPS.has(k) && v && typeof v === 'object' && !Array.isArray(v)) {
        out[k] = Object.fromEntries(Object.keys(v).map((name) => [name, REDACTED]));
      } else {
        out[k] = walk(v, k);
      }
    }
    return out;
  }
  return value;
}
