import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { BridgeConfig, UpstreamConfig } from '../../src/config/schema.js';
import { DEFAULTS } from '../../src/config/schema.js';
import { type Daemon, type DaemonOptions, startDaemon } from '../../src/daemon.js';
import { createSilentLogger } from '../../src/log.js';
import { authHeaders, rememberToken } from './access.js';

export { authHeaders };

export function makeTempDir(prefix = 'mcp-bridge-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A resolved config on port 0 with its own temp config dir. */
/** `<dir>/config/config.json` with these servers (pings off), for tests that run the real CLI. */
export function writeConfigDir(dir: string, mcpServers: Record<string, unknown>): string {
  const configDir = join(dir, 'config');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, 'config.json'), JSON.stringify({ mcpServers, pingIntervalMs: 0 }));
  return configDir;
}

export function testConfig(
  configDir: string,
  upstreams: UpstreamConfig[],
  overrides: Partial<BridgeConfig> = {},
): BridgeConfig {
  return {
    file: join(configDir, 'config.json'),
    fileExists: false,
    configDir,
    logPath: join(configDir, 'mcp-bridge.log'),
    logLevel: 'silent',
    port: 0,
    host: '127.0.0.1',
    mcpPath: DEFAULTS.mcpPath,
    allowedOrigins: [],
    allowedHosts: [],
    maxBodyBytes: DEFAULTS.maxBodyBytes,
    callTimeoutMs: 10_000,
    pingIntervalMs: 0,
    pageSize: DEFAULTS.pageSize,
    upstreams,
    auth: DEFAULTS.auth,
    ...overrides,
  };
}

/** The daemon in this process (fast); the real CLI is exercised in cli tests. */
export async function startTestDaemon(
  configDir: string,
  upstreams: UpstreamConfig[],
  options: Partial<Omit<DaemonOptions, 'config'>> & { overrides?: Partial<BridgeConfig> } = {},
): Promise<Daemon> {
  const daemon = await startDaemon({
    config: testConfig(configDir, upstreams, options.overrides),
    logger: options.logger ?? createSilentLogger(),
    createTransport: options.createTransport,
    sessionIdleTimeoutMs: options.sessionIdleTimeoutMs,
    env: options.env,
    cimdFetch: options.cimdFetch,
    upstreamDefaults: { backoff: { minMs: 50, maxMs: 500, factor: 2 }, ...options.upstreamDefaults },
  });
  rememberToken(daemon.url, () => daemon.accessToken);
  return daemon;
}

/** An SDK client over Streamable HTTP, as Claude Code or Cursor would connect. */
export async function connectClient(url: string, name = 'test-client'): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: authHeaders(url) } }),
  );
  return client;
}
