/**
 * Redaction of secrets in free text: what a child writes to stderr, error messages that quote
 * foreign text, arguments. One module so every path that can carry a secret (log, /status, errors
 * sent to clients, an activity log) uses the same rules. Hand-written rather than secretlint: that
 * is an asynchronous lint engine with a package per rule, and this runs on every stderr line.
 */

export const REDACTED = '[redacted]';

/**
 * Names (env variables, headers, flags) whose values are secrets. `pat`, `pass` and `pw` only as a
 * whole segment (GH_PAT, DB_PASS, DB_PW), so PATH and PASSTHROUGH do not count.
 */
const SECRET_NAME =
  /token|secret|passw|passphrase|pwd|key|auth|cookie|credential|session|signature|private|bearer|jwt|dsn|(?:^|[^a-z])(?:pat|pass|pw)(?:[^a-z]|$)/i;

export function looksSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

// Known token shapes, matched wherever they appear. Each one is long enough that ordinary words and
// identifiers (sk-learn, task-1234, AKIA alone) do not match.
const TOKEN_SHAPES: readonly RegExp[] = [
  // GitHub: classic (ghp_, gho_, ghu_, ghs_, ghr_) and fine-grained tokens.
  /\bgh[pousr]_[A-Za-z0-9]{30,}/g,
  /\bgithub_pat_[A-Za-z0-9_]{30,}/g,
  // GitLab, npm, Slack, Stripe, Google, OpenAI and Anthropic keys.
  /\bglpat-[A-Za-z0-9_-]{20,}/g,
  /\bnpm_[A-Za-z0-9]{30,}/g,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/g,
  /\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}/g,
  /\bAIza[A-Za-z0-9_-]{30,}/g,
  /\bsk-[A-Za-z0-9_-]{20,}/g,
  // SendGrid (SG.<22>.<43>) and Google OAuth access tokens.
  /\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}/g,
  /\bya29\.[A-Za-z0-9_-]{20,}/g,
  // The bridge's own local access token (src/access/access-token.ts).
  /\bmcpb_[A-Za-z0-9_-]{32,}/g,
  // AWS access key ids.
  /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g,
  // JWTs (header.payload.signature, both JSON parts base64url of "{").
  /\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g,
];

const URL_SCHEME = String.raw`\b([a-z][a-z0-9+.-]{0,30}:\/\/)`;

/**
 * `scheme://user:pass@` (or `scheme://token@`): the whole userinfo goes, a marker stays. Greedy up
 * to the last `@` before the path, so a password with an unencoded `@` goes whole.
 */
const URL_USERINFO = new RegExp(`${URL_SCHEME}([^/\\s?#"<>]{1,512})@`, 'gi');

/**
 * `scheme://user:pa/ss@host`: an unencoded `/` in the password. Only when what follows the colon
 * cannot be a port (`host:8080/a@b` is an ordinary URL with an `@` in its path), and the `@` is
 * followed by a host that ends where hosts do; the password runs to the first such `@`, so an `@`
 * later in the path stays. A password whose part before the `/` is all digits looks like a port
 * and is missed. The password never spans a `://` (two URLs on a line). Bounded repetitions keep a
 * line full of `@`s from taking quadratic time.
 */
const URL_USERINFO_SLASH = new RegExp(
  `${URL_SCHEME}([^\\s/?#@:"<>\\[\\]]{0,256}:(?!\\d*(?:[/?#\\s]|$))(?:(?!:\\/\\/)[^\\s"<>]){1,512}?)@(?=[^\\s@/?#"<>]{1,300}(?:[/?#\\s"<>]|$))`,
  'gi',
);

/**
 * `Bearer X` / `token X`. The value must look like a credential (8+ characters with a digit or
 * token punctuation, or 20+ letters), so prose such as "Bearer token required" survives.
 */
const AUTH_SCHEME =
  /\b(Bearer|Token)(\s+)((?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}|[A-Za-z]{20,})/gi;

/**
 * `Basic X`: X is base64 of `user:password`, which is letters and digits with no telling sign, so
 * anything base64 goes except a plain word ("Basic auth is disabled", "Basic HTTP", `Basic
 * realm="x"`). Capitalized only: lowercase "basic" is an English word ("basic setup2 failed"); in an
 * Authorization header any case is AUTH_HEADER's.
 */
const BASIC_SCHEME = /\b((?:Basic|BASIC)\s+)([A-Za-z0-9+/]{4,})(={0,2})(?![A-Za-z0-9+/=_~-])/g;
const PLAIN_WORD = /^(?:[A-Za-z][a-z]*|[A-Z]+)$/;

/** After an Authorization header name, whatever follows the scheme is the credential. */
const AUTH_HEADER =
  /(?<![A-Za-z0-9_-])((?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:Bearer|Basic|Token)\s+)([^\s"',;&]+)/gi;

/**
 * Query parameters that carry a key whatever their value looks like: `key`, Azure SAS `sig`,
 * `signature`, `X-Amz-Signature`. (Names ending in a secret word, `access_token=`, are
 * SECRET_ASSIGNMENT's.) Only after `?` or `&`: `key=` in prose is often a cache key.
 */
const QUERY_SECRET = /([?&](?:key|sig|signature|[A-Za-z0-9_.-]*[_-]signature)=)([^&#\s"'<>]+)/gi;

/** Names whose value is a secret when they appear in free text; the name must end in one of these. */
const SECRET_WORD =
  '(?:token|secret|passwd|password|pwd|api[_-]?key|access[_-]?key|account[_-]?key|subscription[_-]?key|private[_-]?key|credentials?|authorization|cookie)';

/**
 * `NAME=value`, `NAME: value`, `"name": "value"`, where NAME ends in a secret word. Only the end
 * counts, so `max_tokens=4096` and `token_type=Bearer` are left alone. A value that is an auth
 * scheme is left to AUTH_SCHEME. Names start where a name can (lookbehind): the scan stays linear.
 */
const SECRET_ASSIGNMENT = new RegExp(
  `(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]*${SECRET_WORD}(["']?)\\s*([:=])\\s*(["']?))(?!(?:Bearer|Basic|Token)\\s)([^\\s"',;&]+)`,
  'gi',
);

const SECRET_KEY = new RegExp(`${SECRET_WORD}$`, 'i');

/**
 * Whether a JSON key names a secret (`password`, `apiKey`, `client_secret`, `Authorization`): the
 * same last-word rule as SECRET_ASSIGNMENT, so `max_tokens` and `token_type` are no secrets. Narrower
 * than looksSecretName, which would take `author` and `session` in tool arguments for credentials.
 */
export function looksSecretKey(name: string): boolean {
  return SECRET_KEY.test(name);
}

/** `--token value`, `--api-key value` in free text (a command line quoted in an error). */
const SECRET_FLAG = new RegExp(
  `(?<![A-Za-z0-9_-])(--?[A-Za-z0-9_-]*${SECRET_WORD}\\s+)(?!-)([^\\s"',;&]+)`,
  'gi',
);

/**
 * Whether a value after `name: ` or `--name ` is a credential rather than the next word of a
 * sentence ("invalid token: signature expired", "pass --token or set GITHUB_TOKEN"): it has a
 * digit, a symbol, mixed case, or is too long for a word.
 */
function credentialLike(value: string): boolean {
  const v = value.replace(/[.,:;!?)\]]+$/, '');
  return /[0-9_+/=~@:.$*%#!-]/.test(v) || (/^.+[A-Z]/.test(v) && /[a-z]/.test(v)) || v.length >= 20;
}

/** A private key block, or what is left of one on a single line. */
const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g;

/** Shorter values are not treated as secrets when replacing them verbatim: "1" or "on" would mangle text. */
const MIN_VERBATIM = 4;

/**
 * `text` with every secret replaced by `[redacted]`: the `known` values (an upstream's own secrets)
 * verbatim, URL credentials, known token shapes, `Bearer …`, and values assigned to secret names.
 */
export function redactSecrets(text: string, known: readonly string[] = []): string {
  let out = text;
  // Longest first, so a secret that contains another is replaced whole.
  for (const secret of [...new Set(known)].sort((a, b) => b.length - a.length)) {
    if (secret.length >= MIN_VERBATIM && out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  out = out.replace(PRIVATE_KEY, REDACTED);
  out = out.replace(URL_USERINFO, `$1${REDACTED}@`);
  out = out.replace(URL_USERINFO_SLASH, `$1${REDACTED}@`);
  for (const shape of TOKEN_SHAPES) out = out.replace(shape, REDACTED);
  out = out.replace(AUTH_HEADER, `$1${REDACTED}`);
  out = out.replace(AUTH_SCHEME, (_m, scheme: string, space: string) => `${scheme}${space}${REDACTED}`);
  out = out.replace(BASIC_SCHEME, (match, scheme: string, value: string) =>
    PLAIN_WORD.test(value) ? match : `${scheme}${REDACTED}`,
  );
  out = out.replace(QUERY_SECRET, `$1${REDACTED}`);
  out = out.replace(
    SECRET_ASSIGNMENT,
    (match, head: string, nameQuote: string, sep: string, valueQuote: string, value: string) =>
      // `=` and quotes say "this is the value"; after a bare colon it may be prose.
      sep === '=' || nameQuote || valueQuote || credentialLike(value) ? `${head}${REDACTED}` : match,
  );
  out = out.replace(SECRET_FLAG, (match, head: string, value: string) =>
    credentialLike(value) ? `${head}${REDACTED}` : match,
  );
  return out;
}

/**
 * A value that looks random enough to be a key even under an innocent name: 16+ characters without
 * spaces, letters and digits mixed *within* its parts, not a path or URL (those are diagnostics
 * worth keeping). Mixed within parts: `claude-3-5-sonnet-20241022` is words and numbers joined,
 * a model name; `a8Fk29dKx0qPz7Lm` and `A1B2-C3D4-…` switch between letters and digits often.
 */
export function looksRandom(value: string): boolean {
  if (
    value.length < 16 ||
    !/^[A-Za-z0-9_+/=.-]+$/.test(value) ||
    !/[A-Za-z]/.test(value) ||
    !/[0-9]/.test(value) ||
    /^[/.~]/.test(value) ||
    value.includes('//')
  )
    return false;
  const parts = value.split(/[-_./]/);
  if (parts.some((part) => part.length >= 8 && /[A-Za-z]/.test(part) && /[0-9]/.test(part))) return true;
  const switches = parts.reduce(
    (n, part) => n + (part.match(/[A-Za-z](?=[0-9])|[0-9](?=[A-Za-z])/g)?.length ?? 0),
    0,
  );
  return switches >= 4;
}

/**
 * The secret part of every `scheme://user:pass@host` in `text`: the password, or the user name when
 * there is no password (`https://TOKEN@host`); decoded too, since a child may print either form.
 */
export function urlCredentials(text: string): string[] {
  const found: string[] = [];
  const userinfos = [...text.matchAll(URL_USERINFO)].map((m) => m[2]!);
  // The slash form, in what the first form left: one URL is never taken twice.
  const rest = text.replace(URL_USERINFO, `$1${REDACTED}@`);
  userinfos.push(...[...rest.matchAll(URL_USERINFO_SLASH)].map((m) => m[2]!));
  for (const userinfo of userinfos) {
    const colon = userinfo.indexOf(':');
    const secret = colon < 0 ? userinfo : userinfo.slice(colon + 1);
    if (secret === '') continue;
    found.push(secret);
    try {
      const decoded = decodeURIComponent(secret);
      if (decoded !== secret) found.push(decoded);
    } catch {
      // not percent-encoded
    }
  }
  return found;
}

/**
 * What `redacted` hid of `original`: the text where the one `[redacted]` stands, or all of
 * `original` when several parts were hidden.
 */
export function hiddenPart(original: string, redacted: string): string {
  const at = redacted.indexOf(REDACTED);
  if (at < 0 || redacted.indexOf(REDACTED, at + 1) >= 0) return original;
  const suffix = redacted.slice(at + REDACTED.length);
  if (!original.startsWith(redacted.slice(0, at)) || !original.endsWith(suffix)) return original;
  return original.slice(at, original.length - suffix.length);
}
