import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Where the bridge keeps config.json, oauth-state.json and tools-cache.json. */
export function defaultConfigDir(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (platform === 'win32' && env.APPDATA) return join(env.APPDATA, 'mcp-bridge');
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'mcp-bridge');
}

/** The rotating log file: ~/Library/Logs on macOS, the XDG state dir elsewhere. */
export function defaultLogPath(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (platform === 'darwin') return join(homedir(), 'Library', 'Logs', 'mcp-bridge.log');
  if (platform === 'win32' && env.LOCALAPPDATA) return join(env.LOCALAPPDATA, 'mcp-bridge', 'mcp-bridge.log');
  return join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'mcp-bridge', 'mcp-bridge.log');
}

/** The config file: `--config`, else MCP_BRIDGE_CONFIG, else config.json in the config dir. */
export function resolveConfigFile(
  options: { configPath?: string | undefined; env?: NodeJS.ProcessEnv } = {},
): { file: string; explicit: boolean } {
  const env = options.env ?? process.env;
  const named = options.configPath ?? env.MCP_BRIDGE_CONFIG;
  if (named) return { file: resolve(named), explicit: true };
  return { file: join(resolveConfigDir(env), 'config.json'), explicit: false };
}

export function resolveConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.MCP_BRIDGE_CONFIG_DIR || defaultConfigDir(env));
}

/** The base URL a local command uses to reach a daemon bound to `host`:`port` (a wildcard bind is reached on loopback). */
export function localDaemonBase(host: string, port: number | string): string {
  const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}
