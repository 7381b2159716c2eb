import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { accessTokenPath, proofMatches, readAccessToken, sessionCredential } from '../access/access-token.js';
import { DEFAULTS } from '../config/defaults.js';
import { defaultLogPath, localDaemonBase, resolveConfigDir, resolveConfigFile } from '../config/paths.js';
import { BridgeError } from '../errors.js';
import { StdioProxy } from '../shim/stdio-proxy.js';
import { VERSION } from '../version.js';
import { parseCommandArgs } from './args.js';

export const BIN = fileURLToPath(new URL('../../bin/mcp-bridge.js', import.meta.url));
const DEFAULT_WAIT_S = 30;
/** Written by the daemon (src/catalog/served-cache.ts); the name is repeated so the shim loads no daemon code. */
const SERVED_CACHE_FILE = 'served-cache.json';

/**
 * `mcp-bridge stdio`: what Claude Desktop spawns. Only JSON-RPC goes to stdout; everything else to
 * stderr, which Claude Desktop keeps in its MCP log. Loads neither the daemon nor the SDK.
 */
export async function runStdio(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('stdio', argv, {
    url: { type: 'string' },
    wait: { type: 'string' },
    'start-daemon': { type: 'boolean' },
    'print-config': { type: 'boolean' },
    config: { type: 'string', short: 'c' },
  });
  if (values['print-config']) {
    const snippet = { mcpServers: { bridge: { command: process.execPath, args: [BIN, 'stdio'] } } };
    process.stdout.write(`${JSON.stringify(snippet, null, 2)}\n`);
    return 0;
  }
  const waitS = values.wait === undefined ? DEFAULT_WAIT_S : Number(values.wait);
  if (!Number.isFinite(waitS) || waitS < 0) {
    throw new BridgeError('USAGE', `stdio: --wait must be a number of seconds, got "${values.wait}"`);
  }
  const file = readRawConfig(values.config);
  const url = values.url ?? daemonUrl(file);
  const configDir = resolveConfigDir();
  const log = (line: string) => process.stderr.write(`mcp-bridge stdio: ${line}\n`);
  const proxy = new StdioProxy({
    url,
    waitMs: waitS * 1000,
    input: process.stdin,
    output: process.stdout,
    log,
    version: VERSION,
    startDaemon: values['start-daemon'] ? () => startDaemon(values.config, log) : undefined,
    servedCacheFile: join(configDir, SERVED_CACHE_FILE),
    access: {
      token: () => readAccessToken(configDir),
      proofMatches,
      sessionCredential,
      file: accessTokenPath(configDir),
      required: (process.env.MCP_BRIDGE_AUTH || file.auth || DEFAULTS.auth) !== 'none',
    },
  });
  return proxy.run();
}

/**
 * The config file as plain JSON: the shim does not validate it (the daemon does), it only needs
 * the port, host, mcpPath and auth. No (or a broken) file: the defaults are right for most people.
 */
function readRawConfig(configPath: string | undefined): Record<string, unknown> {
  try {
    const parsed = JSON.parse(readFileSync(resolveConfigFile({ configPath }).file, 'utf8')) as unknown;
    if (typeof parsed === 'object' && parsed !== null) return parsed as Record<string, unknown>;
  } catch {
    // the daemon will report it
  }
  return {};
}

/** The daemon's endpoint from MCP_BRIDGE_* variables, else the config file's, else the defaults. */
function daemonUrl(file: Record<string, unknown>): string {
  const env = process.env;
  const pick = (name: string, key: string, fallback: string) =>
    env[name] ||
    (typeof file[key] === 'string' || typeof file[key] === 'number' ? String(file[key]) : fallback);
  const host = pick('MCP_BRIDGE_HOST', 'host', DEFAULTS.host);
  const port = pick('MCP_BRIDGE_PORT', 'port', String(DEFAULTS.port));
  return `${localDaemonBase(host, port)}${pick('MCP_BRIDGE_MCP_PATH', 'mcpPath', DEFAULTS.mcpPath)}`;
}

/**
 * Starts the daemon: through the installed service when there is one (so it runs under the
 * service's PATH and restart policy, and a second copy does not fight it for the port), else
 * `mcp-bridge start` in the background. Several shims may do this at once: the daemons race for
 * the port, one wins, the others exit with PORT_IN_USE.
 */
async function startDaemon(configPath: string | undefined, log: (line: string) => void): Promise<void> {
  if (!configPath && (await startService(log))) return;
  spawnDaemon(configPath, log);
}

/** How long the service manager gets to accept the start; `systemctl start` of a simple unit returns at once. */
const SERVICE_START_MS = 5000;

/**
 * The hook for `mcp-bridge service install` (issue 13): a unit in the place that command writes
 * it is started by the service manager. Only when the unit file exists; resolves false (and says
 * why) when the manager is missing or refuses, so the caller spawns the daemon itself instead of
 * waiting for one that never comes. The unit's paths must match what `service install` writes
 * (its owner keeps them in step).
 */
export async function startService(log: (line: string) => void): Promise<boolean> {
  const home = process.env.HOME || homedir();
  const candidates: [string, string, string[]][] =
    process.platform === 'darwin'
      ? [
          [
            join(home, 'Library', 'LaunchAgents', `${SERVICE_LABEL}.plist`),
            'launchctl',
            ['kickstart', `gui/${process.getuid?.() ?? 0}/${SERVICE_LABEL}`],
          ],
        ]
      : [
          [
            join(
              process.env.XDG_CONFIG_HOME || join(home, '.config'),
              'systemd',
              'user',
              'mcp-bridge.service',
            ),
            'systemctl',
            ['--user', 'start', 'mcp-bridge'],
          ],
        ];
  for (const [unit, command, args] of candidates) {
    if (!existsSync(unit)) continue;
    const line = `${command} ${args.join(' ')}`;
    const outcome = await runServiceManager(command, args, line);
    if (outcome.failed) {
      log(
        `no daemon answered, and the service manager could not start it (${outcome.failed}); starting the daemon directly instead; run \`mcp-bridge doctor\` to fix the service`,
      );
      return false;
    }
    log(
      `no daemon answered; asked the service manager to start it (${line}${outcome.pending ? `, still busy after ${SERVICE_START_MS / 1000} s` : ''}); if it stays down, run \`mcp-bridge doctor\``,
    );
    return true;
  }
  return false;
}

/**
 * Runs the service manager's start command for at most SERVICE_START_MS. `failed` says how it
 * failed (not installed, or its exit status and first stderr line); a command still running then
 * is left to finish (`pending`): it has the job in hand, and a second daemon would fight the unit.
 */
function runServiceManager(
  command: string,
  args: string[],
  line: string,
): Promise<{ failed?: string; pending?: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: process.env,
    });
    let stderr = '';
    child.stderr?.on('data', (chunk) => {
      if (stderr.length < 4096) stderr += chunk;
    });
    let settled = false;
    const settle = (outcome: { failed?: string; pending?: boolean }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      child.stderr?.destroy();
      child.unref();
      settle({ pending: true });
    }, SERVICE_START_MS);
    child.once('error', (error: NodeJS.ErrnoException) =>
      settle({
        failed:
          error.code === 'ENOENT'
            ? `${command} is not installed here`
            : `\`${line}\` could not run: ${error.message}`,
      }),
    );
    child.once('close', (code, signal) => {
      if (code === 0) return settle({});
      const first = stderr.trim().split('\n')[0]?.trim();
      settle({ failed: `\`${line}\` exited with ${code ?? signal}${first ? `: ${first}` : ''}` });
    });
  });
}

const SERVICE_LABEL = 'dev.mcp-bridge';

function spawnDaemon(configPath: string | undefined, log: (line: string) => void): void {
  const args = [BIN, 'start', ...(configPath ? ['--config', configPath] : [])];
  const child = spawn(process.execPath, args, { detached: true, stdio: 'ignore', env: process.env });
  child.unref();
  log(
    `no daemon answered; started one in the background (pid ${child.pid}); its log: ${process.env.MCP_BRIDGE_LOG_PATH || defaultLogPath()}`,
  );
}
