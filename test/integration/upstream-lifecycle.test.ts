import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon.js';
import { createSilentLogger } from '../../src/log.js';
import { defaultTransportFactory } from '../../src/upstream/registry.js';
import type { UpstreamState } from '../../src/upstream/state.js';
import type { CreateTransport } from '../../src/upstream/upstream.js';
import { authHeaders } from '../helpers/access.js';
import { connectClient, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { FAKE_SERVER, FAKE_TOOL_COUNT, fakeUpstream } from '../helpers/fake-server.js';
import { isAlive, waitFor } from '../helpers/wait.js';

describe('upstream lifecycle', () => {
  let daemon: Daemon | undefined;
  const clients: Client[] = [];
  const cleanups: (() => void)[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await daemon?.close();
    daemon = undefined;
    for (const c of cleanups.splice(0)) c();
  });

  function tempDir(): string {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    return temp.dir;
  }

  async function client(): Promise<Client> {
    const c = await connectClient(daemon!.url);
    clients.push(c);
    return c;
  }

  const snapshot = (name: string) => daemon!.registry.get(name)!.snapshot();
  const ready = (name: string) => waitFor(() => snapshot(name).state === 'ready', `${name} ready`);

  it('fails a call in flight when the child is killed, then recovers and sends list_changed', async () => {
    daemon = await startTestDaemon(tempDir(), [fakeUpstream('victim')]);
    await ready('victim');
    const c = await client();
    let changes = 0;
    c.setNotificationHandler('notifications/tools/list_changed', () => {
      changes++;
    });
    const firstPid = snapshot('victim').pid!;
    let started = false;
    const inFlight = c.callTool(
      { name: 'victim__slow', arguments: { ms: 8000 } },
      {
        onprogress: () => {
          started = true;
        },
      },
    );
    inFlight.catch(() => {});
    await waitFor(() => started, 'the call to reach the child');
    process.kill(firstPid, 'SIGKILL');

    await expect(inFlight).rejects.toMatchObject({
      code: -32001,
      message: expect.stringMatching(
        /upstream "victim" closed the connection during tools\/call \(killed by SIGKILL\)/,
      ),
    });
    await waitFor(
      () => snapshot('victim').state === 'ready' && snapshot('victim').pid !== firstPid,
      'a new child',
    );
    expect(snapshot('victim').restarts).toBe(1);
    expect(snapshot('victim').lastExit).toMatchObject({ code: null, signal: 'SIGKILL' });
    const result = await c.callTool({ name: 'victim__echo', arguments: { text: 'back' } });
    expect(result.content).toEqual([{ type: 'text', text: 'back' }]);
    await waitFor(() => changes > 0, 'tools/list_changed after recovery');
  });

  it('relays every progress notification even when the upstream writes them in one chunk with the result', async () => {
    const burst = fileURLToPath(new URL('../fixtures/burst-server.mjs', import.meta.url));
    daemon = await startTestDaemon(tempDir(), [
      {
        kind: 'stdio',
        name: 'burst',
        command: process.execPath,
        args: [burst],
        env: {},
        callTimeoutMs: 10_000,
      },
    ]);
    await waitFor(() => daemon?.registry.get('burst')?.snapshot().state === 'ready', 'burst ready');
    for (let i = 0; i < 20; i++) {
      const progress: number[] = [];
      const result = await daemon.registry
        .get('burst')!
        .callTool({ name: 'burst', arguments: {} }, { onprogress: (p) => progress.push(p.progress) });
      expect(result.content).toEqual([{ type: 'text', text: 'done' }]);
      expect(progress).toEqual([1, 2, 3]);
    }
  });

  it('marks a command that does not exist as failed at once, with one attempt and a clear error', async () => {
    let spawns = 0;
    const counting: CreateTransport = (config, hooks) => {
      spawns++;
      return defaultTransportFactory({ logger: createSilentLogger() })(config, hooks);
    };
    daemon = await startTestDaemon(
      tempDir(),
      [
        {
          kind: 'stdio',
          name: 'ghost',
          command: 'definitely-not-a-command-xyz',
          args: [],
          env: {},
          callTimeoutMs: 5000,
        },
        fakeUpstream('ok'),
      ],
      { createTransport: counting },
    );
    await waitFor(() => snapshot('ghost').state === 'failed', 'ghost failed');
    await ready('ok');
    expect(snapshot('ghost').lastError?.message).toBe(
      'upstream "ghost": command "definitely-not-a-command-xyz" not found (ENOENT)',
    );
    expect(spawns).toBe(2);
    const c = await client();
    const { tools } = await c.listTools();
    expect(tools.some((t) => t.name === 'ok__echo')).toBe(true);
    const status = (await (
      await fetch(daemon.url.replace('/mcp', '/status'), { headers: authHeaders(daemon) })
    ).json()) as {
      upstreams: { name: string; state: string; lastError: { code: string } | null }[];
    };
    expect(status.upstreams.find((u) => u.name === 'ghost')).toMatchObject({
      state: 'failed',
      lastError: { code: 'COMMAND_NOT_FOUND' },
    });
  });

  it('backs off with growing attempts while a child keeps crashing during start-up', async () => {
    daemon = await startTestDaemon(tempDir(), [fakeUpstream('flaky', { FAKE_CRASH_AFTER_MS: '0' })]);
    const seen = new Set<UpstreamState>();
    daemon.registry.get('flaky')!.onSnapshot((s) => seen.add(s.state));
    await waitFor(() => snapshot('flaky').attempt >= 3, 'three failed attempts');
    expect(seen.has('backoff')).toBe(true);
    expect(seen.has('ready')).toBe(false);
    expect(snapshot('flaky').lastError?.message).toMatch(
      /upstream "flaky" closed the connection during start-up: exited with code 1 \(last stderr line: fake: crashing on purpose\)/,
    );
  });

  it('reconnects at once, with a fresh attempt budget, after a connection that was stable', async () => {
    daemon = await startTestDaemon(tempDir(), [fakeUpstream('steady', { FAKE_CRASH_AFTER_MS: '400' })], {
      upstreamDefaults: { stableAfterMs: 100 },
    });
    const seen: UpstreamState[] = [];
    daemon.registry.get('steady')!.onSnapshot((s) => {
      if (seen.at(-1) !== s.state) seen.push(s.state);
    });
    await waitFor(() => snapshot('steady').restarts >= 2, 'two restarts');
    expect(seen).not.toContain('backoff');
    expect(seen).toContain('ready');
  });

  it('keeps working when a child writes garbage to stdout', async () => {
    daemon = await startTestDaemon(tempDir(), [fakeUpstream('noisy', { FAKE_GARBAGE: '1' })]);
    await ready('noisy');
    const c = await client();
    const result = await c.callTool({ name: 'noisy__echo', arguments: { text: 'still fine' } });
    expect(result.content).toEqual([{ type: 'text', text: 'still fine' }]);
  });

  it('never lets a slow upstream delay initialize or tools/list for the others', async () => {
    daemon = await startTestDaemon(tempDir(), [
      fakeUpstream('fast'),
      fakeUpstream('sluggish', { FAKE_SLOW_START_MS: '20000' }),
    ]);
    await ready('fast');
    const c = await client();
    const { tools } = await c.listTools();
    expect(snapshot('sluggish').state).toBe('starting');
    expect(tools.some((t) => t.name === 'fast__echo')).toBe(true);
    expect(tools.some((t) => t.name.startsWith('sluggish__'))).toBe(false);
  });

  it('answers a call to a tool of a hanging upstream with an error naming it and its state', async () => {
    const dir = tempDir();
    // First run fills the cache.
    daemon = await startTestDaemon(dir, [fakeUpstream('stuck')]);
    await ready('stuck');
    await daemon.close();
    const cache = JSON.parse(readFileSync(join(dir, 'tools-cache.json'), 'utf8'));
    expect(cache.upstreams.stuck.tools.length).toBe(FAKE_TOOL_COUNT);

    daemon = await startTestDaemon(dir, [fakeUpstream('stuck', { FAKE_HANG: '1' })], {
      upstreamDefaults: { connectTimeoutMs: 60_000, readyWaitMs: 200 },
    });
    const c = await client();
    const { tools } = await c.listTools();
    expect(tools.map((t) => t.name)).toContain('stuck__echo');
    expect(snapshot('stuck')).toMatchObject({ state: 'starting', toolsSource: 'cache' });
    await expect(c.callTool({ name: 'stuck__echo', arguments: { text: 'x' } })).rejects.toMatchObject({
      code: -32001,
      message: expect.stringContaining(
        'upstream "stuck" is not ready (state: starting) after waiting 200 ms',
      ),
    });
  });

  it('stops a child that ignores SIGTERM, and its grandchildren, leaving no process behind', async () => {
    const dir = tempDir();
    const pidFile = join(dir, 'child.pid');
    const grandchildFile = join(dir, 'grandchild.pid');
    daemon = await startTestDaemon(dir, [
      fakeUpstream('stubborn', {
        FAKE_IGNORE_SIGTERM: '1',
        FAKE_PIDFILE: pidFile,
        FAKE_GRANDCHILD_PIDFILE: grandchildFile,
      }),
    ]);
    await ready('stubborn');
    const child = Number(readFileSync(pidFile, 'utf8'));
    const grandchild = Number(readFileSync(grandchildFile, 'utf8'));
    expect(isAlive(child)).toBe(true);
    expect(isAlive(grandchild)).toBe(true);
    await daemon.close();
    daemon = undefined;
    await waitFor(() => !isAlive(child) && !isAlive(grandchild), 'child and grandchild gone', 5000);
  });

  it('does not restart a busy upstream whose event loop is blocked by a call', async () => {
    daemon = await startTestDaemon(tempDir(), [fakeUpstream('busy')], {
      upstreamDefaults: { pingIntervalMs: 50 },
    });
    await ready('busy');
    const c = await client();
    const result = await c.callTool({ name: 'busy__block', arguments: { ms: 1500 } });
    expect(result.content).toEqual([{ type: 'text', text: 'unblocked' }]);
    expect(snapshot('busy')).toMatchObject({ state: 'ready', restarts: 0 });
  });

  it('kills the grandchildren of a child that crashed on its own', async () => {
    const dir = tempDir();
    const grandchildFile = join(dir, 'grandchild.pid');
    daemon = await startTestDaemon(dir, [
      fakeUpstream('parent', { FAKE_GRANDCHILD_PIDFILE: grandchildFile }),
    ]);
    await ready('parent');
    const grandchild = Number(readFileSync(grandchildFile, 'utf8'));
    const leader = snapshot('parent').pid!;
    process.kill(leader, 'SIGKILL');
    await waitFor(() => !isAlive(grandchild), 'the orphaned grandchild to be killed');
  });

  it('leaves no child behind when stopped right after starting', async () => {
    const dir = tempDir();
    const pidFile = join(dir, 'child.pid');
    daemon = await startTestDaemon(dir, [
      fakeUpstream('brief', { FAKE_PIDFILE: pidFile, FAKE_IGNORE_SIGTERM: '1' }),
    ]);
    await daemon.close();
    daemon = undefined;
    if (existsSync(pidFile)) expect(isAlive(Number(readFileSync(pidFile, 'utf8')))).toBe(false);
  });

  it('marks an upstream whose cwd is missing or not a directory as failed, naming the path', async () => {
    const dir = tempDir();
    daemon = await startTestDaemon(dir, [
      { ...fakeUpstream('nodir'), cwd: join(dir, 'missing') },
      { ...fakeUpstream('notdir'), cwd: FAKE_SERVER },
    ]);
    await waitFor(
      () => snapshot('nodir').state === 'failed' && snapshot('notdir').state === 'failed',
      'both failed',
    );
    expect(snapshot('nodir').lastError).toMatchObject({
      code: 'CWD_NOT_FOUND',
      message: `upstream "nodir": working directory "${join(dir, 'missing')}" does not exist`,
    });
    expect(snapshot('notdir').lastError?.message).toContain('is not a directory');
  });

  it('closes sessions that stay idle, and keeps those with an open stream', async () => {
    daemon = await startTestDaemon(tempDir(), [], { sessionIdleTimeoutMs: 200 });
    const listening = await client();
    const idle = await connectClient(daemon.url);
    await idle.listTools();
    // The SDK client opens a standalone GET stream after initialize; close it for the idle one.
    await (idle.transport as { close(): Promise<void> } | undefined)?.close();
    await waitFor(async () => {
      const r = await fetch(daemon!.url, {
        method: 'POST',
        headers: {
          ...authHeaders(daemon!),
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': (idle.transport as { sessionId?: string } | undefined)?.sessionId ?? 'x',
          'mcp-protocol-version': '2025-11-25',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }),
      });
      await r.text();
      return r.status === 404;
    }, 'the idle session to be closed');
    const { tools } = await listening.listTools();
    expect(tools).toEqual([]);
  });
});
