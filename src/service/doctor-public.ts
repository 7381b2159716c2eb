import { statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { resolveConfigFile } from '../config/paths.js';
import type { BridgeConfig, PublicConfig } from '../config/schema.js';
import { BridgeError, errorMessage, exitCodeFor, isBridgeError } from '../errors.js';
import { listConnectors } from '../public/connector-list.js';
import { CONNECTORS_FILE_NAME } from '../public/oauth-store.js';
import { MIN_OWNER_PASSWORD_LENGTH, ownerPassword, ownerPasswordSource } from '../public/owner-password.js';
import { KEYS_FILE_NAME } from '../public/provider-keys.js';
import { inspectStoreFile } from '../public/store-file.js';
import { listen } from '../server/listen.js';
import type { Status } from '../server/status.js';
import type { Check, DoctorOptions } from './doctor.js';

const pass = (name: string, detail: string): Check => ({ name, status: 'pass', detail });
const skip = (name: string, detail: string): Check => ({ name, status: 'skip', detail });
const fail = (name: string, detail: string, fix: string): Check => ({ name, status: 'fail', detail, fix });

/** What `mcp-bridge start` would print and exit with, so doctor's line matches the daemon's refusal. */
const refusal = (error: unknown) =>
  `${errorMessage(error)} (mcp-bridge start stops with ${isBridgeError(error) ? error.code : 'an error'}, exit ${exitCodeFor(error)})`;

/**
 * The public listener for ChatGPT and claude.ai (docs/connectors.md): its URL, owner password, port
 * and connectors.json, checked with the daemon's own code. One `skip` when `public.url` is not set.
 * `loadError` is what loadConfig threw (config undefined), `status` the running daemon's /status.
 */
export async function publicChecks(
  config: BridgeConfig | undefined,
  loadError: unknown,
  status: Status | undefined,
  options: DoctorOptions,
): Promise<Check[]> {
  const file = config?.file ?? resolveConfigFile({ configPath: options.configPath, env: options.env }).file;
  if (!config) {
    const failed = publicLoadFailure(loadError, file);
    return [failed ?? skip('public listener', 'the config does not load')];
  }
  const pub = config.public;
  if (!pub) {
    return [
      skip(
        'public listener',
        `off: no public.url in ${file} and no MCP_BRIDGE_PUBLIC_URL (see docs/connectors.md to connect ChatGPT or claude.ai)`,
      ),
    ];
  }
  const from = options.env.MCP_BRIDGE_PUBLIC_URL ? 'MCP_BRIDGE_PUBLIC_URL' : `public.url in ${file}`;
  return [
    pass('public url', `${pub.url} (from ${from}): connectors use ${pub.url}${config.mcpPath}`),
    await passwordCheck(pub, file, options.env),
    await portCheck(config, pub, status),
    ...(await connectorsChecks(config.configDir)),
  ];
}

/** A config that does not load because of the `public` block or an MCP_BRIDGE_PUBLIC_* variable. */
function publicLoadFailure(error: unknown, file: string): Check | undefined {
  if (!(error instanceof BridgeError)) return undefined;
  const { key, keys } = error.details as { key?: unknown; keys?: unknown };
  // publicConfig names the variable first when it came from the environment (it wins over the file).
  const variable = error.message.match(/^MCP_BRIDGE_PUBLIC_(URL|PORT)\b/)?.[0];
  const named = variable
    ? [variable]
    : [...(typeof key === 'string' ? [key] : []), ...(Array.isArray(keys) ? keys.map(String) : [])].filter(
        (k) => k === 'public' || k.startsWith('public.'),
      );
  const first = named[0];
  if (first === undefined) return undefined;
  const fixes: Record<string, string> = {
    'public.url': `set public.url in ${file} to your tunnel's https:// origin, e.g. https://bridge.example.com (MCP_BRIDGE_PUBLIC_URL wins over it)`,
    MCP_BRIDGE_PUBLIC_URL: `set MCP_BRIDGE_PUBLIC_URL to your tunnel's https:// origin, or unset it to use public.url in ${file}`,
    MCP_BRIDGE_PUBLIC_PORT: `set MCP_BRIDGE_PUBLIC_PORT to a port number, or unset it to use public.port in ${file} (default 8770)`,
    'public.ownerPassword': `set the variable that public.ownerPassword in ${file} names, or set the password in MCP_BRIDGE_OWNER_PASSWORD or MCP_BRIDGE_OWNER_PASSWORD_OP_REF instead`,
  };
  const fix = fixes[first] ?? `fix ${[...new Set(named)].join(', ')} in ${file} as the message says`;
  const name = /ownerPassword/.test(first)
    ? 'owner password'
    : /port/i.test(first)
      ? 'public port'
      : /url/i.test(first)
        ? 'public url'
        : 'public listener';
  return fail(name, refusal(error), `${fix}, then run mcp-bridge doctor again`);
}

/** Read the way the daemon reads it (op read included); only where it came from is ever shown. */
async function passwordCheck(pub: PublicConfig, file: string, env: NodeJS.ProcessEnv): Promise<Check> {
  const name = 'owner password';
  const { source, opRef } = ownerPasswordSource(pub, env);
  const places = `MCP_BRIDGE_OWNER_PASSWORD, MCP_BRIDGE_OWNER_PASSWORD_OP_REF (an op:// reference) or public.ownerPassword in ${file} (a literal, \${env:NAME} or an op:// reference)`;
  try {
    await ownerPassword(pub, env);
  } catch (error) {
    const fix = isBridgeError(error, 'SECRET_UNAVAILABLE')
      ? `make ${source} readable with op read (the 1Password CLI installed and on the PATH, signed in with op signin), or set the password in ${places}`
      : `set a password of at least ${MIN_OWNER_PASSWORD_LENGTH} characters in ${places}`;
    return fail(name, refusal(error), fix);
  }
  const where = source === 'public.ownerPassword' ? `public.ownerPassword in ${file}` : source;
  return pass(
    name,
    `set in ${where}${opRef ? ' (read with op read)' : ''}, at least ${MIN_OWNER_PASSWORD_LENGTH} characters`,
  );
}

async function portCheck(
  config: BridgeConfig,
  pub: PublicConfig,
  status: Status | undefined,
): Promise<Check> {
  const name = 'public port';
  const where = `${config.host}:${pub.port}`;
  const fix = `choose another public.port in ${config.file} (or MCP_BRIDGE_PUBLIC_PORT), and point the tunnel at it`;
  if (pub.port === 0) return skip(name, 'port 0: the daemon picks a free one at each start');
  if (pub.port === config.port)
    return fail(name, `${where} is also the daemon's own port ("port" / MCP_BRIDGE_PORT)`, fix);
  if (status?.public?.port === pub.port) return pass(name, `${where} is in use by the running daemon`);
  const server = createServer();
  try {
    await listen(server, pub.port, config.host, 'set public.port or MCP_BRIDGE_PUBLIC_PORT to a free one');
  } catch (error) {
    return isBridgeError(error, 'PORT_IN_USE')
      ? fail(
          name,
          `something that is not mcp-bridge's public listener listens on ${where}`,
          `stop it (see: lsof -i :${pub.port}) or ${fix}`,
        )
      : fail(name, errorMessage(error), fix);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  if (status && !status.public) {
    return fail(
      name,
      `${where} is free, but the running daemon has no public listener (started before public.url was set?)`,
      'restart it: mcp-bridge service restart (or stop it and run mcp-bridge start)',
    );
  }
  return pass(name, `${where} is free (the tunnel's target)`);
}

/** connectors.json read by the store's own code, without moving a corrupt one aside as the daemon does. */
async function connectorsChecks(configDir: string): Promise<Check[]> {
  const name = 'connectors file';
  const file = join(configDir, CONNECTORS_FILE_NAME);
  const moved = `the daemon moves it aside (to ${file}.corrupt-<time>) when it starts and every connector must connect again; put a good copy back before that if you have one`;
  let found: Awaited<ReturnType<typeof inspectStoreFile>>;
  try {
    found = await inspectStoreFile(file);
  } catch (error) {
    return [fail(name, errorMessage(error), `chmod 600 ${file} as the user the daemon runs as`)];
  }
  const checks: Check[] = [];
  if (found.kind === 'missing')
    checks.push(skip(name, `${file} does not exist yet (written when a connector first registers)`));
  else if (found.kind === 'too large')
    checks.push(
      fail(name, `${file} is over ${found.maxBytes / 1024 / 1024} MiB: not one mcp-bridge wrote`, moved),
    );
  else if (found.kind === 'corrupt') checks.push(fail(name, `${file} is corrupt (${found.problem})`, moved));
  else {
    const count = listConnectors(found.contents.entries, found.contents.lastUsed).length;
    checks.push(pass(name, `${file} reads (${count} connector(s))`));
  }
  for (const secret of [file, join(configDir, KEYS_FILE_NAME)]) {
    const mode = modeCheck(secret);
    if (mode) checks.push(mode);
  }
  return checks;
}

/** Like doctor.ts's mode checks; undefined for a file that does not exist. */
function modeCheck(file: string): Check | undefined {
  let actual: number;
  try {
    actual = statSync(file).mode & 0o777;
  } catch {
    return undefined;
  }
  const name = `mode of ${file}`;
  return (actual & 0o077) === 0
    ? pass(name, `0${actual.toString(8)}`)
    : fail(name, `0${actual.toString(8)}: other users can reach it (want 0600)`, `chmod 600 ${file}`);
}
