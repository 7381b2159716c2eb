import { BridgeError } from '../errors.js';
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

const SECRET_NAME = /token|secret|passw|key|auth|cookie|credential|session/i;

/** Names that look like they hold a secret; their values never reach the log. */
export function looksSecret(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** A copy of `env` with secret-looking values replaced, for logging and /status. */
export function redactEnv(env: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, looksSecret(k) ? '[redacted]' : v]));
}

/**
 * A copy of `args` for logging: the value of a secret-looking flag (`--api-key=X`, or `--token X`)
 * is replaced. Values passed positionally cannot be recognized and are logged as they are.
 */
export function redactArgs(args: readonly string[]): string[] {
  const flag = (arg: string) => /^--?[^=]+$/.test(arg) && looksSecret(arg);
  return args.map((arg, i) => {
    const eq = arg.indexOf('=');
    if (arg.startsWith('-') && eq > 0 && looksSecret(arg.slice(0, eq)))
      return `${arg.slice(0, eq + 1)}[redacted]`;
    const previous = args[i - 1];
    if (previous !== undefined && flag(previous) && !arg.startsWith('-')) return '[redacted]';
    return arg;
  });
}

/** A URL for the log: no user info and no query (either may carry a key). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    const hidden = u.username || u.password || u.search;
    u.username = '';
    u.password = '';
    u.search = '';
    return hidden ? `${u.href} [query/credentials hidden]` : u.href;
  } catch {
    return '[invalid url]';
  }
}

/** What an upstream runs, for the log: secret-looking env values and flag values, and all header values, hidden. */
export function redactUpstreamConfig(config: UpstreamConfig): Record<string, unknown> {
  if (config.kind === 'http') return { url: redactUrl(config.url), headers: Object.keys(config.headers) };
  return {
    command: config.command,
    args: redactArgs(config.args),
    env: redactEnv(config.env),
    cwd: config.cwd,
  };
}
