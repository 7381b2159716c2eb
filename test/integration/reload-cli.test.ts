import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { authHeaders, makeTempDir } from '../helpers/bridge.js';
import { cliEnv, type RunningBridge, runCli, startCli } from '../helpers/cli.js';
import { fakeServerEntry } from '../helpers/fake-server.js';
import { isAlive, waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function setup(): { dir: string; configDir: string; save: (servers: Record<string, unknown>) => void } {
  const { dir, cleanup } = makeTempDir();
  cleanups.push(cleanup);
  const configDir = join(dir, 'config');
  mkdirSync(configDir, { recursive: true, mode: 0o700 });
  const save = (servers: Record<string, unknown>) =>
    writeFileSync(join(configDir, 'config.json'), JSON.stringify({ mcpServers: servers }));
  return { dir, configDir, save };
}

async function start(env: NodeJS.ProcessEnv): Promise<RunningBridge> {
  const bridge = await startCli(env);
  cleanups.push(() => bridge.stop());
  return bridge;
}

async function upstreams(
  bridge: RunningBridge,
): Promise<{ name: string; state: string; pid: number | null }[]> {
  const res = await fetch(new URL('/status', bridge.url), { headers: authHeaders(bridge.url) });
  return ((await res.json()) as { upstreams: { name: string; state: string; pid: number | null }[] })
    .upstreams;
}

describe('mcp-bridge start: reload and one daemon per config dir', () => {
  it('reloads on SIGHUP (file watching off)', async () => {
    const { dir, save } = setup();
    save({ one: fakeServerEntry() });
    const bridge = await start(cliEnv(dir, { MCP_BRIDGE_WATCH_CONFIG: '0' }));
    const onePid = await waitFor(
      async () => (await upstreams(bridge)).find((u) => u.name === 'one' && u.state === 'ready')?.pid,
      'one ready',
    );
    save({ one: fakeServerEntry(), two: fakeServerEntry() });
    bridge.child.kill('SIGHUP');
    const two = await waitFor(
      async () => (await upstreams(bridge)).find((u) => u.name === 'two' && u.state === 'ready'),
      'two started by SIGHUP',
    );
    expect(two.pid).not.toBeNull();
    const one = (await upstreams(bridge)).find((u) => u.name === 'one');
    expect(one?.pid).toBe(onePid);
    expect(bridge.child.exitCode).toBeNull();
  });

  it('refuses a second daemon on the same config dir, naming the first one’s pid and port', async () => {
    const { dir, configDir, save } = setup();
    save({});
    const env = cliEnv(dir);
    const first = await start(env);
    const second = await runCli(['start'], env);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`pid ${first.child.pid}`);
    expect(second.stderr).toContain(`:${first.port}`);
    expect(second.stderr).toContain(configDir);
    // The first one is untouched.
    expect(isAlive(first.child.pid!)).toBe(true);
    expect((await fetch(new URL('/healthz', first.url))).ok).toBe(true);

    // A clean stop releases the config dir.
    expect(await first.stop()).toBe(0);
    expect(existsSync(join(configDir, 'daemon.json'))).toBe(false);
    const third = await start(env);
    expect(JSON.parse(readFileSync(join(configDir, 'daemon.json'), 'utf8'))).toMatchObject({
      pid: third.child.pid,
      port: third.port,
    });
  });

  it('takes over the record of a daemon that died', async () => {
    const { dir, configDir, save } = setup();
    save({});
    const gone = spawn(process.execPath, ['-e', '0']);
    await once(gone, 'exit');
    writeFileSync(
      join(configDir, 'daemon.json'),
      JSON.stringify({
        pid: gone.pid,
        startTime: 'x',
        host: '127.0.0.1',
        port: 1234,
        startedAt: '',
        version: '',
      }),
    );
    const bridge = await start(cliEnv(dir));
    expect(JSON.parse(readFileSync(join(configDir, 'daemon.json'), 'utf8')).pid).toBe(bridge.child.pid);
  });
});
