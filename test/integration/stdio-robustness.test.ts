import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/client';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { BridgeConfig, StdioUpstreamConfig } from '../../src/config/schema.js';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders, connectClient, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import { isAlive, waitFor } from '../helpers/wait.js';

const FLOOD_SERVER = fileURLToPath(new URL('../fixtures/flood-server.mjs', import.meta.url));
const MiB = 1024 * 1024;

function floodUpstream(name: string, env: Record<string, string>): StdioUpstreamConfig {
  return { kind: 'stdio', name, command: process.execPath, args: [FLOOD_SERVER], env, callTimeoutMs: 60_000 };
}

describe('a stdio upstream that floods its output', () => {
  let daemon: Daemon | undefined;
  let client: Client | undefined;
  const cleanups: (() => void)[] = [];

  afterEach(async () => {
    await client?.close();
    await daemon?.close();
    client = undefined;
    daemon = undefined;
    for (const c of cleanups.splice(0)) c();
  });

  /** A daemon with the flooding upstream "bad" and the fixture server "good"; its log lines are kept. */
  async function start(env: Record<string, string>, overrides: Partial<BridgeConfig> = {}) {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    const pidFile = join(temp.dir, 'bad.pids');
    const logs: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });
    daemon = await startTestDaemon(
      temp.dir,
      [floodUpstream('bad', { ...env, FLOOD_PIDFILE: pidFile }), fakeUpstream('good')],
      { logger, overrides },
    );
    const d = daemon;
    client = await connectClient(d.url);
    await waitFor(() => d.registry.get('good')?.snapshot().state === 'ready', 'good to be ready');
    const bad = () => d.registry.get('bad')!.snapshot();
    const pids = () =>
      existsSync(pidFile) ? readFileSync(pidFile, 'utf8').split('\n').filter(Boolean).map(Number) : [];
    return { daemon: d, client, logs, bad, pids };
  }

  /** Calls the healthy upstream until `done()` (or the deadline); returns how many calls it answered. */
  async function keepCalling(c: Client, done: () => boolean, what: string, timeoutMs = 45_000) {
    const deadline = Date.now() + timeoutMs;
    let answered = 0;
    // At least one call, even when the bad upstream fails before the first one is sent.
    do {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what} (${answered} calls answered)`);
      const result = await c.callTool({ name: 'good__echo', arguments: { text: `call ${answered}` } });
      expect(JSON.stringify(result.content)).toContain(`call ${answered}`);
      answered++;
    } while (!done());
    return answered;
  }

  async function status(d: Daemon, name: string) {
    const response = await fetch(d.url.replace(/\/mcp$/, '/status'), { headers: authHeaders(d) });
    const body = (await response.json()) as {
      upstreams: { name: string; lastError: { code: string } | null }[];
    };
    return body.upstreams.find((u) => u.name === name);
  }

  it('stops a child whose stdout line never ends (600 MB), retries it, and keeps serving the others', async () => {
    const {
      daemon: d,
      client: c,
      bad,
      pids,
    } = await start({
      FLOOD_STREAM: 'stdout',
      FLOOD_BYTES: String(600 * MiB),
    });
    const answered = await keepCalling(
      c,
      () => bad().lastError?.code === 'UPSTREAM_OUTPUT_TOO_LARGE' && bad().attempt >= 2,
      'the bad upstream to fail twice with UPSTREAM_OUTPUT_TOO_LARGE',
    );
    expect(answered).toBeGreaterThan(0);
    expect(bad().lastError?.message).toMatch(
      /longer than 64 MiB \(maxStdoutLineBytes\).*raise "maxStdoutLineBytes"/,
    );
    expect(['backoff', 'starting']).toContain(bad().state);
    // The first child was stopped, not left writing.
    const first = pids()[0]!;
    await waitFor(() => !isAlive(first), `the first flooding child (pid ${first}) to be gone`);
    expect((await status(d, 'bad'))?.lastError?.code).toBe('UPSTREAM_OUTPUT_TOO_LARGE');
    expect(d.registry.get('good')?.snapshot().state).toBe('ready');
  }, 90_000);

  it('drops a 600 MB stderr line without logging it, and the child keeps running', async () => {
    const {
      client: c,
      logs,
      bad,
    } = await start({
      FLOOD_STREAM: 'stderr',
      FLOOD_BYTES: String(600 * MiB),
      FLOOD_WHEN: 'call',
    });
    await waitFor(() => bad().state === 'ready', 'bad to be ready');
    const pid = bad().pid;
    let flooded = false;
    const flood = c.callTool({ name: 'bad__flood', arguments: {} }).finally(() => {
      flooded = true;
    });
    const answered = await keepCalling(c, () => flooded, 'the flood call to return');
    expect(JSON.stringify((await flood).content)).toContain('pong');
    expect(answered).toBeGreaterThan(0);
    expect(bad()).toMatchObject({ state: 'ready', pid, restarts: 0, lastError: undefined });
    // One note with the size, none with the content; the next stderr line is logged again.
    const dropped = logs
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === 'dropped an over-long stderr line');
    expect(dropped).toEqual([expect.objectContaining({ upstream: 'bad', bytes: 600 * MiB })]);
    expect(logs.some((l) => l.includes('xxxxxxxx'))).toBe(false);
    await waitFor(
      () => logs.some((l) => l.includes('"msg":"flood: done"')),
      'the next stderr line in the log',
    );
  }, 90_000);

  it('fails a 200 MB stdout line past a lowered cap, then restarts the child; the call in flight gets an error', async () => {
    const { client: c, bad } = await start(
      { FLOOD_STREAM: 'stdout', FLOOD_BYTES: String(200 * MiB), FLOOD_NEWLINE: '1', FLOOD_WHEN: 'call' },
      { maxStdoutLineBytes: 16 * MiB },
    );
    await waitFor(() => bad().state === 'ready', 'bad to be ready');
    let flooded = false;
    const flood = c.callTool({ name: 'bad__flood', arguments: {} }).then(
      () => 'answered',
      (error: Error) => error.message,
    );
    void flood.finally(() => {
      flooded = true;
    });
    const answered = await keepCalling(c, () => flooded, 'the flood call to end');
    expect(await flood).toMatch(/closed the connection during tools\/call/);
    expect(answered).toBeGreaterThan(0);
    expect(bad().lastError).toMatchObject({
      code: 'UPSTREAM_OUTPUT_TOO_LARGE',
      message: expect.stringContaining('longer than 16 MiB'),
    });
    // Like after a crash: a new child, ready again.
    await waitFor(() => bad().state === 'ready' && bad().restarts >= 1, 'bad to be restarted and ready');
    expect(JSON.stringify((await c.callTool({ name: 'bad__ping', arguments: {} })).content)).toContain(
      'pong',
    );
  }, 90_000);
});
