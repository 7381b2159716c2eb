import { BridgeError, errorMessage } from '../errors.js';
import type { UpstreamConfig } from './schema.js';

/** A 1Password secret reference (`op://vault/item/field`, optionally `?attribute=…`), anywhere in a value. */
const OP_REF = /op:\/\/[^\s"'`]+/g;

/** Runs `op read` for one reference and returns the secret. */
export type OpReader = (reference: string) => Promise<string>;

/** Reads in progress or done, so one reference costs one `op read` (one approval) per process. */
const resolved = new Map<string, Promise<string>>();

function readOnce(reference: string, read: OpReader): Promise<string> {
  let secret = resolved.get(reference);
  if (!secret) {
    secret = read(reference);
    resolved.set(reference, secret);
    // A failed read is forgotten, so it is tried again after `op signin`.
    secret.catch(() => resolved.delete(reference));
  }
  return secret;
}

/** Whether any header, env or oauth value of `config` holds an `op://` reference. */
export function hasOpRefs(config: UpstreamConfig): boolean {
  return secretFields(config).some(([, value]) => value.match(OP_REF) !== null);
}

/**
 * Returns `config` with every `op://` reference in its headers, env and oauth values replaced by the
 * secret, read once per process with the 1Password CLI. The error names the config key, never the value.
 */
export async function resolveOpRefs(
  config: UpstreamConfig,
  read: OpReader = opRead,
): Promise<UpstreamConfig> {
  if (!hasOpRefs(config)) return config;
  const replace = async (value: string, where: string): Promise<string> => {
    const secrets = new Map<string, string>();
    for (const reference of new Set(value.match(OP_REF) ?? [])) {
      try {
        secrets.set(reference, await readOnce(reference, read));
      } catch (error) {
        throw new BridgeError(
          'SECRET_UNAVAILABLE',
          `mcpServers.${config.name}.${where}: ${errorMessage(error)}`,
          {
            cause: error,
            details: { upstream: config.name, key: where },
          },
        );
      }
    }
    // One pass: a secret is never searched for references itself, and "$" in it stays literal.
    return value.replace(OP_REF, (reference) => secrets.get(reference) ?? reference);
  };
  const record = async (values: Readonly<Record<string, string>>, where: string) =>
    Object.fromEntries(
      await Promise.all(
        Object.entries(values).map(async ([k, v]) => [k, await replace(v, `${where}.${k}`)] as const),
      ),
    );
  if (config.kind === 'stdio') return { ...config, env: await record(config.env, 'env') };
  const oauth = config.oauth;
  return {
    ...config,
    headers: await record(config.headers, 'headers'),
    oauth: {
      ...oauth,
      clientId: oauth.clientId === undefined ? undefined : await replace(oauth.clientId, 'oauth.clientId'),
      clientSecret:
        oauth.clientSecret === undefined
          ? undefined
          : await replace(oauth.clientSecret, 'oauth.clientSecret'),
    },
  };
}

function secretFields(config: UpstreamConfig): [string, string][] {
  if (config.kind === 'stdio') return Object.entries(config.env);
  return [
    ...Object.entries(config.headers),
    ['oauth.clientId', config.oauth.clientId ?? ''],
    ['oauth.clientSecret', config.oauth.clientSecret ?? ''],
  ];
}

/**
 * `op read`, with errors that say what to do. node:child_process's execFile rather than execa:
 * execFile reports every spawn failure (EMFILE included) to its callback, never as an uncaught
 * 'error' event.
 */
export async function opRead(reference: string): Promise<string> {
  const { execFile } = await import('node:child_process');
  const result = await new Promise<{
    error: (Error & { code?: unknown; killed?: boolean }) | null;
    stdout: string;
    stderr: string;
  }>((resolve) => {
    try {
      execFile(
        'op',
        ['read', '--no-newline', reference],
        { timeout: 60_000, maxBuffer: 1024 * 1024, encoding: 'utf8' },
        (error, stdout, stderr) => resolve({ error, stdout, stderr }),
      ).stdin?.end();
    } catch (error) {
      resolve({ error: error as Error, stdout: '', stderr: '' });
    }
  });
  const { error } = result;
  if (error?.code === 'ENOENT') {
    throw new Error(
      'the 1Password CLI `op` is not installed or not on the PATH of the daemon; install it (https://developer.1password.com/docs/cli) or use ${env:NAME} instead',
    );
  }
  if (error?.killed)
    throw new Error('`op read` did not answer within 60 s (is 1Password waiting for approval?)');
  if (error) {
    const detail = result.stderr.trim().split('\n')[0] ?? '';
    const hint = /sign ?in|not signed|session|authorization/i.test(detail)
      ? '; sign in with `op signin` (or set OP_SERVICE_ACCOUNT_TOKEN for a service)'
      : '';
    const why = typeof error.code === 'number' ? `exit code ${error.code}` : error.message;
    throw new Error(`\`op read\` failed for a secret reference: ${detail || why}${hint}`);
  }
  return result.stdout;
}
