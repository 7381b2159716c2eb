import { execFileSync } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { type Daemon, startDaemon } from '../../src/daemon.js';
import { createSilentLogger } from '../../src/log.js';
import { rememberToken } from '../helpers/access.js';
import { authHeaders, connectClient, makeTempDir } from '../helpers/bridge.js';
import { FAKE_SERVER } from '../helpers/fake-server.js';
import { isAlive, waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A fixture entry; the marker arg lets the test count this test's children with ps. */
function entry(marker: string, env: Record<string, string> = {}) {
  return { command: process.execPath, args: [FAKE_SERVER, `--marker=${marker}`], env };
}

function save(dir: string, servers: Record<string, unknown>, extra: Record<string, unknown> = {}): void {
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ mcpServers: servers, ...extra }));
}

/** A daemon started from the config file as `mcp-bridge start` does, reloading from the same place. */
async function startFromFile(dir: string, watch = false): Promise<Daemon> {
  const env = { MCP_BRIDGE_CONFIG_DIR: dir, MCP_BRIDGE_PORT: '0' };
  const load = () => loadConfig({ env });
  const daemon = await startDaemon({
    config: load(),
    logger: createSilentLogger(),
    reloadConfig: load,
    watchConfig: watch,
    watchDebounceMs: 50,
    upstreamDefaults: { backoff: { minMs: 50, maxMs: 500, factor: 2 }, pingIntervalMs: 0 },
  });
  rememberToken(daemon.url, () => daemon.accessToken);
  cleanups.push(() => daemon.close());
  return daemon;
}

function pidOf(daemon: Daemon, name: string): number | undefined {
  return daemon.registry.get(name)?.snapshot().pid;
}

async function readyPid(daemon: Daemon, name: string): Promise<number> {
  return waitFor(() => {
    const s = daemon.registry.get(name)?.snapshot();
    return s?.state === 'ready' ? s.pid : undefined;
  }, `${name} ready`);
}

async function status(daemon: Daemon): Promise<Record<string, unknown>> {
  const res = await fetch(new URL('/status', daemon.url), { headers: authHeaders(daemon) });
  return (await res.json()) as Record<string, unknown>;
}

/** Live processes whose command line carries `marker` (this test's fixture children). */
function childrenWith(marker: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => line.includes(`--marker=${marker}`))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

async function client(daemon: Daemon): Promise<Client> {
  const c = await connectClient(daemon.url);
  cleanups.push(() => c.close());
  return c;
}

describe('live config reload', () => {
  it('relays resources/updated of an upstream the reload added', async () => {
    const { dir, cleanup } = makeTempDir();
    cleanups.push(cleanup);
    save(dir, { first: entry(dir) });
    const daemon = await startFromFile(dir);
    await readyPid(daemon, 'first');
    save(dir, { first: entry(dir), later: entry(dir) });
    expect((await daemon.reload('test')).ok).toBe(true);
    await readyPid(daemon, 'later');
    const c = await client(daemon);
    const updates: string[] = [];
    c.setNotificationHandler('notifications/resources/updated', (n) => {
      updates.push(n.params.uri);
    });
    // Both upstreams serve fake://readme, so the later one's is namespaced; find it in the list.
    const { resources } = await c.listResources();
    const uri = resources.map((r) => r.uri).find((u) => u.includes('later'))!;
    expect(uri).toBeDefined();
    await c.subscribeResource({ uri });
    await c.callTool({ name: 'later__touch', arguments: {} });
    await waitFor(() => updates.includes(uri), 'the update from the added upstream');
  });

  it('keeps an unchanged upstream (same pid, in-flight call answered), restarts a changed one, stops a removed one, starts a new one, with one list_changed', async () => {
    const { dir, cleanup } = makeTempDir();
    cleanups.push(cleanup);
    save(dir, { keep: entry(dir), change: entry(dir, { FAKE_NAME: 'v1' }), drop: entry(dir) });
    const daemon = await startFromFile(dir);
    const keepPid = await readyPid(daemon, 'keep');
    const changePid = await readyPid(daemon, 'change');
    const dropPid = await readyPid(daemon, 'drop');
    const c = await client(daemon);
    let listChanged = 0;
    c.setNotificationHandler('notifications/tools/list_changed', () => {
      listChanged++;
    });
    await c.listTools();

    const slow = c.callTool({ name: 'keep__slow', arguments: { ms: 1500 } });
    save(dir, { keep: entry(dir), change: entry(dir, { FAKE_NAME: 'v2' }), added: entry(dir) });
    const outcome = await daemon.reload('test');
    expect(outcome.ok).toBe(true);
    expect(outcome.applied).toEqual({
      unchanged: ['keep'],
      restarted: ['change'],
      stopped: ['drop'],
      started: ['added'],
    });

    const result = await slow;
    expect(result.isError).toBeFalsy();
    expect(pidOf(daemon, 'keep')).toBe(keepPid);

    const newChangePid = await readyPid(daemon, 'change');
    expect(newChangePid).not.toBe(changePid);
    expect(isAlive(changePid)).toBe(false);
    expect(daemon.registry.get('change')?.snapshot().serverInfo?.name).toBe('v2');

    // Its whole process group, not only the leader.
    expect(isAlive(dropPid)).toBe(false);
    expect(isAlive(-dropPid)).toBe(false);
    expect(daemon.registry.get('drop')).toBeUndefined();

    await readyPid(daemon, 'added');
    const names = (await c.listTools()).tools.map((t) => t.name);
    expect(names).toContain('added__echo');
    expect(names.some((n) => n.startsWith('drop__'))).toBe(false);
    const echo = await c.callTool({ name: 'added__echo', arguments: { text: 'hi' } });
    expect(echo.isError).toBeFalsy();
    await waitFor(() => listChanged > 0, 'tools/list_changed after the reload');
    // The list round trip above went out after the notifications of the reload were written.
    await c.listTools();
    expect(listChanged).toBe(1);
  });

  it('keeps the old config running on invalid JSON, reports it in /status, and clears it after a good save', async () => {
    const { dir, cleanup } = makeTempDir();
    cleanups.push(cleanup);
    save(dir, { keep: entry(dir) });
    const daemon = await startFromFile(dir);
    const pid = await readyPid(daemon, 'keep');
    writeFileSync(join(dir, 'config.json'), '{"mcpServers": {"keep": ');
    const outcome = await daemon.reload('test');
    expect(outcome.ok).toBe(false);
    const bad = (await status(daemon)) as { configError: { message: string; at: string } | null };
    expect(bad.configError?.message).toContain(join(dir, 'config.json'));
    expect(bad.configError?.message).toMatch(/JSON/);
    expect(pidOf(daemon, 'keep')).toBe(pid);
    const c = await client(daemon);
    expect((await c.callTool({ name: 'keep__echo', arguments: { text: 'x' } })).isError).toBeFalsy();

    // A config that parses but does not validate names the key.
    save(dir, { keep: { ...entry(dir), args: 'not-an-array' } });
    await daemon.reload('test');
    const invalid = (await status(daemon)) as { configError: { message: string } | null };
    expect(invalid.configError?.message).toContain('mcpServers.keep.args');
    expect(pidOf(daemon, 'keep')).toBe(pid);

    save(dir, { keep: entry(dir), second: entry(dir) });
    expect((await daemon.reload('test')).ok).toBe(true);
    const good = (await status(daemon)) as { configError: unknown };
    expect(good.configError).toBeNull();
    await readyPid(daemon, 'second');
    expect(pidOf(daemon, 'keep')).toBe(pid);
  });

  it('reports settings that need a restart instead of applying them', async () => {
    const { dir, cleanup } = makeTempDir();
    cleanups.push(cleanup);
    save(dir, { keep: entry(dir) });
    const daemon = await startFromFile(dir);
    const pid = await readyPid(daemon, 'keep');
    save(dir, { keep: entry(dir) }, { mcpPath: '/elsewhere', maxSessions: 5 });
    const outcome = await daemon.reload('test');
    expect(outcome.restartNeeded).toEqual(['mcpPath', 'maxSessions']);
    expect(((await status(daemon)) as { restartNeeded: string[] }).restartNeeded).toEqual([
      'mcpPath',
      'maxSessions',
    ]);
    // Still served where it was.
    const c = await client(daemon);
    expect((await c.listTools()).tools.length).toBeGreaterThan(0);
    expect(pidOf(daemon, 'keep')).toBe(pid);
    save(dir, { keep: entry(dir) });
    await daemon.reload('test');
    expect(((await status(daemon)) as { restartNeeded: string[] }).restartNeeded).toEqual([]);
  });

  it('follows 50 rapid saves (some by temp file and rename) to exactly one child per upstream', async () => {
    const { dir, cleanup } = makeTempDir();
    cleanups.push(cleanup);
    save(dir, { a: entry(dir), b: entry(dir, { FAKE_NAME: 'v0' }) });
    const daemon = await startFromFile(dir, true);
    const aPid = await readyPid(daemon, 'a');
    await readyPid(daemon, 'b');
    for (let i = 1; i <= 50; i++) {
      const text = JSON.stringify({ mcpServers: { a: entry(dir), b: entry(dir, { FAKE_NAME: `v${i}` }) } });
      if (i % 2 === 0) {
        const temp = join(dir, `.config.json.${i}.tmp`);
        writeFileSync(temp, text);
        renameSync(temp, join(dir, 'config.json'));
      } else writeFileSync(join(dir, 'config.json'), text);
      // Let the watcher see separate events, as separate saves would give it.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor(() => {
      const s = daemon.registry.get('b')?.snapshot();
      return s?.state === 'ready' && s.serverInfo?.name === 'v50';
    }, 'b running the last saved config');
    // Each later save on its own is seen too, whether it replaced the file or wrote into it.
    for (const [i, byRename] of [
      [51, true],
      [52, true],
      [53, false],
    ] as const) {
      const text = JSON.stringify({ mcpServers: { a: entry(dir), b: entry(dir, { FAKE_NAME: `v${i}` }) } });
      if (byRename) {
        writeFileSync(join(dir, '.config.json.tmp'), text);
        renameSync(join(dir, '.config.json.tmp'), join(dir, 'config.json'));
      } else writeFileSync(join(dir, 'config.json'), text);
      await waitFor(() => {
        const s = daemon.registry.get('b')?.snapshot();
        return s?.state === 'ready' && s.serverInfo?.name === `v${i}`;
      }, `b running save ${i}`);
    }
    // Queued behind any reload the watcher still runs.
    await daemon.reload('test');
    expect(pidOf(daemon, 'a')).toBe(aPid);
    const bPid = pidOf(daemon, 'b');
    expect(childrenWith(dir).sort()).toEqual([aPid, bPid].sort());
  });
});
