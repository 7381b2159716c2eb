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

/** Names that look like they hold a secret (env variables, headers, flags). */
export function looksSecret(name: string): boolean {
  return looksSecretName(name);
}

/**
 * A copy of `env` with secret-looking values replaced. The log no longer uses it (it shows names
 * only, see redactUpstreamConfig); test/unit/config.test.ts still covers it: remove them together.
 */
export function redactEnv(env: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, looksSecret(k) ? REDACTED : v]));
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
  return SECRET_SHORT_FLAG.test(arg) || (/^--?[^=]+$/.test(arg) && looksSecret(arg));
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
    if (arg.startsWith('-') && eq > 0 && looksSecret(arg.slice(0, eq)))
      return `${arg.slice(0, eq + 1)}${REDACTED}`;
    const attached = SECRET_SHORT_ATTACHED.exec(arg);
    if (attached && !arg.startsWith('--')) return `${attached[1]}${attached[2]}${REDACTED}`;
    const assignment = ENV_ASSIGNMENT.exec(arg);
    if (assignment && looksSecret(assignment[1]!)) return `${assignment[1]}=${REDACTED}`;
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
    if (config.kind === 'http' || fromOp || looksSecret(name) || looksRandom(value)) {
      found.push(value);
      // "Bearer X": X alone may show up too.
      const scheme = /^(?:Bearer|Basic|Token)\s+(\S+)$/i.exec(value);
      if (scheme) found.push(scheme[1]!);
    } else {
      // Only the secret inside (a URL's password): the rest of DATABASE_URL is worth seeing.
      const redacted = redactSecrets(value);
      if (redacted !== value) found.push(hiddenPart(value, redacted));
    }
    found.push(...urlCredentials(value));
  }
  if (config.kind === 'stdio') {
    const hidden = redactArgs(config.args);
    config.args.forEach((arg, i) => {
      if (hidden[i] !== arg) found.push(hiddenPart(arg, hidden[i]!));
      found.push(...urlCredentials(arg));
    });
  } else {
    found.push(...urlCredentials(config.url));
    try {
      for (const [name, value] of new URL(config.url).searchParams) {
        if (looksSecret(name) || looksRandom(value)) found.push(value);
      }
    } catch {
      // not a URL: nothing more to find
    }
    if (config.oauth.clientSecret) found.push(config.oauth.clientSecret);
  }
  return [...new Set(found)];
}
