import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempDir, writeConfigDir } from '../helpers/bridge.js';
import { cliEnv, freePort } from '../helpers/cli.js';
import { fakeServerEntry } from '../helpers/fake-server.js';
import { rawShim as spawnRawShim } from '../helpers/raw-shim.js';
import { stopProcess, waitFor } from '../helpers/wait.js';

/**
 * `stdio --start-daemon` with a systemd user unit installed, but a service manager that cannot
 * start it: the shim must say so and start the daemon itself, not wait for one that never comes.
 */
describe.skipIf(process.platform === 'darwin')('the stdio shim when the service manager fails', () => {
  const closers: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** A HOME with our unit file and a config dir that has never run (no served cache). */
  async function installedUnit(): Promise<{ dir: string; configDir: string; port: number; bin: string }> {
    const temp = makeTempDir();
    closers.push(temp.cleanup);
    const configDir = writeConfigDir(temp.dir, { fake: fakeServerEntry() });
    const units = join(temp.dir, '.config', 'systemd', 'user');
    mkdirSync(units, { recursive: true });
    writeFileSync(join(units, 'mcp-bridge.service'), '[Service]\nExecStart=/nonexistent\n');
    const bin = join(temp.dir, 'bin');
    mkdirSync(bin);
    return { dir: temp.dir, configDir, port: await freePort(), bin };
  }

  /** Runs the shim (no --config: that skips the service), expects a working daemon it spawned. */
  async function expectSpawnedDaemon(env: NodeJS.ProcessEnv, configDir: string): Promise<string> {
    // Pushed before the shim's own closer, so it runs after the shim is killed (a live shim with
    // --start-daemon would start another daemon). The daemons are detached: only their pids end them.
    let shim: ReturnType<typeof spawnRawShim> | undefined;
    closers.push(async () => {
      const pids = new Set(
        [...(shim?.stderr() ?? '').matchAll(/started one in the background \(pid (\d+)\)/g)].map((m) =>
          Number(m[1]),
        ),
      );
      try {
        pids.add((JSON.parse(readFileSync(join(configDir, 'daemon.json'), 'utf8')) as { pid: number }).pid);
      } catch {
        // no daemon got as far as its lock
      }
      for (const pid of pids) await stopProcess(pid);
    });
    shim = spawnRawShim(['--start-daemon', '--wait', '15'], env, closers);
    shim.send({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'claude', version: '1' },
      },
    });
    expect(await shim.reply(1)).toHaveProperty('result.serverInfo.name', 'mcp-bridge');
    shim.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    // A daemon that just started lists its upstream's tools once that has connected.
    let id = 100;
    await waitFor(async () => {
      shim.send({ jsonrpc: '2.0', id: ++id, method: 'tools/list' });
      const list = (await shim.reply(id)) as { result?: { tools: { name: string }[] } };
      return list.result?.tools.some((t) => t.name === 'fake__echo');
    }, 'the upstream tools');
    shim.send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'fake__echo', arguments: { text: 'hi' } },
    });
    expect(await shim.reply(2)).toMatchObject({ result: { content: [{ type: 'text', text: 'hi' }] } });
    const spawned = Number(/started one in the background \(pid (\d+)\)/.exec(shim.stderr())?.[1]);
    const record = JSON.parse(readFileSync(join(configDir, 'daemon.json'), 'utf8')) as { pid: number };
    expect(record.pid).toBe(spawned);
    expect(shim.stderr()).toContain('run `mcp-bridge doctor` to fix the service');
    return shim.stderr();
  }

  it('falls back to spawning the daemon when systemctl exits 1, naming its error', async () => {
    const { dir, configDir, port, bin } = await installedUnit();
    const systemctl = join(bin, 'systemctl');
    writeFileSync(systemctl, '#!/bin/sh\necho "Failed to connect to bus: No medium found" >&2\nexit 1\n');
    chmodSync(systemctl, 0o755);
    const env = cliEnv(dir, { MCP_BRIDGE_PORT: String(port), PATH: `${bin}:${process.env.PATH ?? ''}` });
    const stderr = await expectSpawnedDaemon(env, configDir);
    expect(stderr).toContain(
      '`systemctl --user start mcp-bridge` exited with 1: Failed to connect to bus: No medium found',
    );
  });

  it('falls back to spawning the daemon when systemctl is not installed', async () => {
    const { dir, configDir, port, bin } = await installedUnit();
    // Only an empty directory on PATH: the real systemctl (if any) must not be found.
    const env = cliEnv(dir, { MCP_BRIDGE_PORT: String(port), PATH: bin });
    const stderr = await expectSpawnedDaemon(env, configDir);
    expect(stderr).toContain('systemctl is not installed here');
  });
});
