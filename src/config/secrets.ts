import { BridgeError } from '../errors.js';
import {
  hiddenPart,
  looksRandom,
  looksSecretName,
  REDACTED,
  redactSecrets,
  urlCredentials,
} from './redact.js';
import type { UpstreamConfig } from './schema.js';

const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Replaces every `${env:NAME}` in `value` with the variable's value. `where` names the config key
 * (e.g. `mcpServers.github.env.TOKEN`) so a missing variable is reported precisely.
 */
export function expandEnvRefs(value: string, where: string, env: NodeJS.ProcessEnv, file: string): string {
  return value.replace(ENV_REF, (_match, name: string) => {
    const resolved = env[name];
    if (resolved === undefined) {
      throw new BridgeError(
        'CONFIG_INVALID',
        `config file ${file}: ${where} refers to \${env:${name}}, but the environment variable ${name} is not set`,
        { details: { file, key: where, variable: name } },
      );
    }
    return resolved;
  });
}

/**
 * Short flags whose value is a secret in common tools: -p password (mysql, sshpass), -a (redis-cli),
 * -w (ldapsearch), -u user:password (curl), -t token, -k key. A single letter says too little to
 * tell, so a port after `-p` is hidden too: a hidden port costs less than a logged password.
 */
const SECRET_SHORT_FLAG = /^-[akptuw]$/;
const SECRET_SHORT_ATTACHED = /^(-[akptuw])(=?)(.+)$/;
const ENV_ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;

/** Whether `arg` is a flag whose next argument is its (secret) value. */
function isSecretFlag(arg: string): boolean {
  return SECRET_SHORT_FLAG.test(arg) || (/^--?[^=]+$/.test(arg) && looksSecretName(arg));
}

/**
 * A copy of `args` for the log: the value of a secret-looking flag (`--api-key=X`, `--token X`,
 * `-p X`, `-pX`), the value of a `NAME=X` whose name looks secret (docker's `-e`), and secrets that
 * look like one wherever they are (URL credentials, `ghp_…`, `Bearer …`) are replaced.
 */
export function redactArgs(args: readonly string[]): string[] {
  return args.map((arg, i) => {
    const previous = args[i - 1];
    if (previous !== undefined && isSecretFlag(previous) && !arg.startsWith('-')) return REDACTED;
    const eq = arg.indexOf('=');
    if (arg.startsWith('-') && eq > 0 && looksSecretName(arg.slice(0, eq)))
      return `${arg.slice(0, eq + 1)}${REDACTED}`;
    const attached = SECRET_SHORT_ATTACHED.exec(arg);
    if (attached && !arg.startsWith('--')) return `${attached[1]}${attached[2]}${REDACTED}`;
    const assignment = ENV_ASSIGNMENT.exec(arg);
    if (assignment && looksSecretName(assignment[1]!)) return `${assignment[1]}=${REDACTED}`;
    return redactSecrets(arg);
  });
}

/** A URL for the log: user info and query values (either may carry a key) replaced by a marker. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    const userinfo = u.username || u.password ? `${REDACTED}@` : '';
    const query = u.search ? `?${REDACTED}` : '';
    return `${u.protocol}//${userinfo}${u.host}${u.pathname}${query}`;
  } catch {
    return '[invalid url]';
  }
}

/** Every name of `record` with its value hidden: which variables or headers are set, never what to. */
function namesOnly(record: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.keys(record).map((name) => [name, REDACTED]));
}

/**
 * What an upstream runs, for the log: env and header names without any value, whatever the name
 * (a value in an innocently named variable can still be a secret), and args without secrets.
 */
export function redactUpstreamConfig(config: UpstreamConfig): Record<string, unknown> {
  if (config.kind === 'http') return { url: redactUrl(config.url), headers: namesOnly(config.headers) };
  return {
    command: config.command,
    args: redactArgs(config.args),
    env: namesOnly(config.env),
    cwd: config.cwd,
  };
}

/**
 * Names that say "secret" plainly, judged by their last word (`--api-key`, `--apiKey`, `GH_PAT`,
 * `--client-secret`; not `--max-tokens`, `--token-file`, `--session-dir`). Unlike looksSecretName,
 * which hides a value in the start line on the faintest hint, this decides what is replaced in
 * everything the upstream prints, where a false match hides diagnostics (a port, a count, a path).
 */
const CLEAR_SECRET_WORD =
  /(?:token|secret|passw(?:or)?d|passphrase|apikey|accesskey|secretkey|privatekey|credentials?)$|^(?:key|pwd|pw|pass|pat|cookie|jwt|bearer)$/;

/** `auth` is a credential in `--auth user:pass` and a mode in `--auth oauth`. */
const WEAK_SECRET_WORD = /^auth$/;
const PLAIN_WORDS = /^[a-z]+(?:-[a-z]+)*$/;
const FILE_PATH = /^(?:\/|~\/|\.\.?\/)[^\s:@]*$/;

function nameWords(name: string): string[] {
  return name
    .replace(/^-+/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .split(/[-_.]+/)
    .filter(Boolean);
}

/** Whether `value`, given to `name` (a flag or variable), is a secret wherever it shows up. */
function isClearSecret(name: string, value: string): boolean {
  const words = nameWords(name);
  const last = words.at(-1) ?? '';
  // `--no-auth`, `--disable-token`: a switch, so what follows is not its value.
  if (words.length > 1 && /^(?:no|disable|without|skip)$/.test(words[0]!)) return false;
  // `--tls-key /etc/ssl/key.pem`, GOOGLE_APPLICATION_CREDENTIALS=/…/creds.json: where the secret
  // is, worth seeing in "cannot read …".
  if (FILE_PATH.test(value)) return false;
  if (CLEAR_SECRET_WORD.test(last)) return true;
  return WEAK_SECRET_WORD.test(last) && !PLAIN_WORDS.test(value);
}

/**
 * Env values under names that only hint at a secret (`MAX_TOKENS`, `SESSION_DIR`, `AUTH_MODE`) that
 * are plainly not one: a number, a lowercase word, a file path.
 */
function plainlyNotSecret(value: string): boolean {
  return /^\d+$/.test(value) || PLAIN_WORDS.test(value) || FILE_PATH.test(value);
}

const LONG_FLAG = /^--?[A-Za-z][A-Za-z0-9_.-]+$/;
const LONG_ASSIGNMENT = /^(--?[A-Za-z][A-Za-z0-9_.-]+)=(.+)$/;

/**
 * The args' secrets for replacing verbatim in everything the upstream prints. Narrower than what
 * redactArgs hides in the start line: a short flag's value (`-p 8080`, `-t stdio`) or a
 * broad match's (`--max-tokens 4096`) counts only when it looks random.
 */
function argSecrets(args: readonly string[]): string[] {
  const found: string[] = [];
  const hidden = redactArgs(args);
  args.forEach((arg, i) => {
    found.push(...urlCredentials(arg));
    // A token shape or a URL password inside any arg (a path after `--private-key=` is no secret).
    const shaped = redactSecrets(arg);
    const inside = hiddenPart(arg, shaped);
    if (shaped !== arg && !FILE_PATH.test(inside)) found.push(inside);
    if (hidden[i] === arg) return;
    const part = hiddenPart(arg, hidden[i]!);
    const previous = args[i - 1];
    const assigned = LONG_ASSIGNMENT.exec(arg) ?? ENV_ASSIGNMENT.exec(arg);
    const clear =
      (previous !== undefined && LONG_FLAG.test(previous) && isClearSecret(previous, arg)) ||
      (assigned !== null && isClearSecret(assigned[1]!, assigned[2]!));
    if (clear || looksRandom(part)) found.push(part);
  });
  return found;
}

/**
 * The secret values of an upstream, to be replaced verbatim wherever its output is shown (stderr in
 * /status, error messages). `original` is the config before `op://` references were resolved: what
 * came from 1Password is secret whatever its name. Env values of innocent names (NODE_ENV=production,
 * a directory) are not included unless they look random: hiding them would mangle diagnostics.
 */
export function secretValuesOf(config: UpstreamConfig, original: UpstreamConfig = config): string[] {
  const found: string[] = [];
  const originalRecord = original.kind === 'stdio' ? original.env : original.headers;
  const record = config.kind === 'stdio' ? config.env : config.headers;
  for (const [name, value] of Object.entries(record)) {
    const fromOp = originalRecord[name]?.startsWith('op://') && originalRecord[name] !== value;
    // "Bearer X" under any name (BASIC=Basic …): X alone may show up too.
    const scheme = /^(?:Bearer|Basic|Token)\s+(\S+)$/i.exec(value);
    if (scheme) found.push(value, scheme[1]!);
    const secretName = looksSecretName(name) && (isClearSecret(name, value) || !plainlyNotSecret(value));
    if (config.kind === 'http' || fromOp || secretName || looksRandom(value)) {
      found.push(value);
    } else {
      // Only the secret inside (a URL's password): the rest of DATABASE_URL is worth seeing.
      const redacted = redactSecrets(value);
      if (redacted !== value) found.push(hiddenPart(value, redacted));
    }
    found.push(...urlCredentials(value));
  }
  if (config.kind === 'stdio') {
    found.push(...argSecrets(config.args));
  } else {
    found.push(...urlCredentials(config.url));
    try {
      for (const [name, value] of new URL(config.url).searchParams) {
        if (looksSecretName(name) || looksRandom(value)) found.push(value);
      }
    } catch {
      // not a URL: nothing more to find
    }
    if (config.oauth.clientSecret) found.push(config.oauth.clientSecret);
  }
  return [...new Set(found)];
}
