import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Daemon } from '../../src/daemon.js';
import { startDaemon } from '../../src/daemon.js';
import { createSilentLogger } from '../../src/log.js';
import type { Status } from '../../src/server/status.js';
import { rememberToken } from '../helpers/access.js';
import { authHeaders, makeTempDir, startTestDaemon } from '../helpers/bridge.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A daemon started from a world-writable config.json, as `mcp-bridge start` would load it. */
async function daemonWithWritableConfig(): Promise<{ daemon: Daemon; file: string; log: string[] }> {
  const { dir, cleanup } = makeTempDir();
  cleanups.push(cleanup);
  const file = join(dir, 'config.json');
  writeFileSync(file, '{"mcpServers": {}}\n');
  chmodSync(file, 0o666);
  const config = loadConfig({ env: { MCP_BRIDGE_CONFIG_DIR: dir } });
  const log: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => log.push(line) });
  const daemon = await startTestDaemon(dir, [], { logger, overrides: { file, warnings: config.warnings } });
  cleanups.push(() => daemon.close());
  return { daemon, file, log };
}

describe('a config.json that others can write', () => {
  it('is warned about in the log at start', async () => {
    const { file, log } = await daemonWithWritableConfig();
    const warning = log
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .find((l) => l.level === 40);
    expect(warning?.msg).toContain(`config file ${file} can be changed by every user of this machine`);
  });

  it('is warned about in /status', async () => {
    const { daemon, file } = await daemonWithWritableConfig();
    const response = await fetch(`${new URL(daemon.url).origin}/status`, { headers: authHeaders(daemon) });
    const status = (await response.json()) as Status;
    expect(status.warnings).toHaveLength(1);
    expect(status.warnings[0]).toContain(file);
  });

  it('is refreshed in /status by a reload: fixed, it goes; made again, it comes back', async () => {
    const { dir, cleanup } = makeTempDir();
    cleanups.push(cleanup);
    const file = join(dir, 'config.json');
    writeFileSync(file, '{"mcpServers": {}}\n');
    chmodSync(file, 0o600);
    const env = { MCP_BRIDGE_CONFIG_DIR: dir, MCP_BRIDGE_PORT: '0' };
    const load = () => loadConfig({ env });
    const daemon = await startDaemon({
      config: load(),
      logger: createSilentLogger(),
      reloadConfig: load,
      watchConfig: false,
    });
    rememberToken(daemon.url, () => daemon.accessToken);
    cleanups.push(() => daemon.close());
    const warnings = async () =>
      (
        (await (
          await fetch(`${new URL(daemon.url).origin}/status`, { headers: authHeaders(daemon) })
        ).json()) as Status
      ).warnings;
    expect(await warnings()).toEqual([]);
    chmodSync(file, 0o666);
    await daemon.reload('test');
    expect((await warnings())[0]).toContain(file);
    chmodSync(file, 0o600);
    await daemon.reload('test');
    expect(await warnings()).toEqual([]);
  });
});
