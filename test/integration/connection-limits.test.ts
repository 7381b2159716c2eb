import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/client';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BridgeConfig } from '../../src/config/schema.js';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders, connectClient, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import { bodyOf, postHead, raw, rawSocket } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

const FLOOD = fileURLToPath(new URL('../fixtures/connection-flood.mjs', import.meta.url));
const MAX_CONNECTIONS = 20;

/** The start of a request whose headers never end, as anyone who can reach the port can send. */
const STALLED_HEADERS = 'GET /status HTTP/1.1\r\nhost: 127.0.0.1\r\nx-stall: ';

function getStatus(daemon: Daemon): string {
  const token = authHeaders(daemon).authorization;
  return `GET /status HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: ${token}\r\n\r\n`;
}

/** Responses in what a raw socket received (kept-alive connections carry several). */
function statusLines(received: string): string[] {
  return received.match(/HTTP\/1\.1 \d+/g) ?? [];
}

/** Why this machine cannot run a process as another user, or undefined if it can. */
function otherUidUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'setpriv is Linux only';
  if (process.getuid?.() !== 0) return 'switching to another uid needs root';
  const probe = spawnSync(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', ''],
    {
      timeout: 10_000,
    },
  );
  if (probe.error) return `setpriv cannot run (${probe.error.message})`;
  if (probe.status !== 0) return `setpriv as uid 65534 failed: ${probe.stderr.toString().trim()}`;
  return undefined;
}

describe('the connection cap, against connections that never send the access token', () => {
  const daemons: Daemon[] = [];
  const cleanups: (() => void)[] = [];
  let client: Client | undefined;

  afterEach(async () => {
    await client?.close();
    client = undefined;
    await Promise.all(daemons.splice(0).map((d) => d.close()));
    for (const c of cleanups.splice(0)) c();
  });

  async function start(overrides: Partial<BridgeConfig>, logger?: pino.Logger): Promise<Daemon> {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    const daemon = await startTestDaemon(temp.dir, [fakeUpstream('fake')], {
      overrides: { maxConnections: MAX_CONNECTIONS, ...overrides },
      ...(logger ? { logger } : {}),
    });
    daemons.push(daemon);
    await waitFor(() => daemon.registry.get('fake')!.snapshot().state === 'ready', 'fake to be ready');
    return daemon;
  }

  async function echo(c: Client, text: string): Promise<string> {
    return JSON.stringify((await c.callTool({ name: 'fake__echo', arguments: { text } })).content);
  }

  it(`serves the owner while 60 connections stall before their headers at a cap of ${MAX_CONNECTIONS}, closing the stalled ones and never the owner's`, async () => {
    const daemon = await start({});
    client = await connectClient(daemon.url);
    expect(await echo(client, 'before')).toContain('before');
    const owner = Array.from({ length: 5 }, () => rawSocket(daemon.port, getStatus(daemon)));
    await waitFor(
      () => owner.every((s) => statusLines(s.received()).length === 1),
      "the owner's connections",
    );

    const stalled = Array.from({ length: 60 }, () => rawSocket(daemon.port, STALLED_HEADERS));
    // The owner holds at least 6 connections (these 5 and the client's), so at least 46 are closed.
    await waitFor(() => stalled.filter((s) => s.closed()).length >= 46, 'stalled connections to make room');
    // Closed to make room, without an answer: not by a timeout (that answers 408).
    for (const s of stalled.filter((s) => s.closed())) expect(s.received()).toBe('');

    // At the cap, with stalled connections still open: a new connection of the owner is served.
    const fresh = await raw(daemon.port, { method: 'GET', path: '/status', headers: authHeaders(daemon) });
    expect(fresh.status).toBe(200);
    expect(await echo(client, 'during')).toContain('during');
    for (const s of owner) {
      expect(s.closed()).toBe(false);
      s.socket.write(getStatus(daemon));
    }
    await waitFor(
      () => owner.every((s) => statusLines(s.received()).join() === 'HTTP/1.1 200,HTTP/1.1 200'),
      "a second answer on each of the owner's connections",
    );
    for (const s of [...owner, ...stalled]) s.socket.destroy();
  });

  it('with "auth": "none" counts every connection as the owner\'s: past the cap the newcomer is refused, none is closed', async () => {
    const daemon = await start({ auth: 'none', maxConnections: 4 });
    const held = Array.from({ length: 4 }, () =>
      rawSocket(daemon.port, 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n'),
    );
    await waitFor(() => held.every((s) => /^HTTP\/1\.1 200 /.test(s.received())), 'the held connections');
    const refused = await raw(daemon.port, { method: 'GET', path: '/status' });
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body).error.data).toEqual({ code: 'TOO_MANY_CONNECTIONS', limit: 4 });
    expect(held.some((s) => s.closed())).toBe(false);
    for (const s of held) s.socket.destroy();
  });

  it('closes a connection whose headers stall after 5 s, long before bodyTimeoutMs; a stalled body waits for bodyTimeoutMs', {
    timeout: 30_000,
  }, async () => {
    const daemon = await start({ bodyTimeoutMs: 120_000 });
    const headers = rawSocket(daemon.port, STALLED_HEADERS);
    const body = rawSocket(daemon.port, `${postHead(authHeaders(daemon), 1000)}{"jsonrpc":`);
    await waitFor(() => headers.closed(), 'the stalled headers to be cut', 20_000);
    expect(headers.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(bodyOf(headers.received())).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: {
        code: -32600,
        message: 'Request timeout: the request headers did not arrive within 5000 ms',
        data: { code: 'HEADERS_TIMEOUT', headersTimeoutMs: 5000 },
      },
    });
    expect(body.closed()).toBe(false);
    body.socket.destroy();
  });

  it('logs connections that time out once per 10 s, whatever their number', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
    const daemon = await start({ bodyTimeoutMs: 300, maxConnections: 1000 }, logger);
    const sockets = [
      ...Array.from({ length: 10 }, () => rawSocket(daemon.port, STALLED_HEADERS)),
      ...Array.from({ length: 10 }, () => rawSocket(daemon.port, `${postHead(authHeaders(daemon), 1000)}{`)),
    ];
    await waitFor(() => sockets.every((s) => s.closed()), 'every stalled connection to be cut');
    const timeouts = lines.map((l) => JSON.parse(l)).filter((l) => /in time/.test(l.msg));
    expect(timeouts.map((l) => [l.code, l.level])).toEqual([
      ['HEADERS_TIMEOUT', 40],
      ['BODY_TIMEOUT', 40],
    ]);
  });

  const noOtherUid = otherUidUnavailable();
  describe('another local user (uid 65534 through setpriv)', () => {
    let flood: ChildProcessWithoutNullStreams | undefined;

    afterAll(async () => {
      if (!flood || flood.exitCode !== null) return;
      const exited = new Promise((resolve) => flood!.once('exit', resolve));
      flood.stdin.end();
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      if (flood.exitCode === null && flood.pid) process.kill(flood.pid, 'SIGKILL');
    });

    it.skipIf(noOtherUid !== undefined)(
      `cannot lock the owner out with 500 connections that it reopens as soon as they close${noOtherUid ? ` (skipped: ${noOtherUid})` : ''}`,
      async () => {
        const daemon = await start({});
        flood = spawn(
          'setpriv',
          [
            '--reuid=65534',
            '--regid=65534',
            '--clear-groups',
            process.execPath,
            FLOOD,
            String(daemon.port),
            '500',
          ],
          { stdio: ['pipe', 'pipe', 'pipe'] },
        );
        let out = '';
        flood.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString('utf8');
        });
        await waitFor(() => out.includes('open 500'), 'the flood to connect');
        client = await connectClient(daemon.url);
        for (let i = 0; i < 50; i++) {
          const status = await raw(daemon.port, {
            method: 'GET',
            path: '/status',
            headers: authHeaders(daemon),
          });
          expect(status.status, `request ${i}`).toBe(200);
        }
        expect(await echo(client, 'flooded')).toContain('flooded');
        // The flood kept going all along: it reconnected far more often than it had connections.
        flood.stdin.write('report\n');
        await waitFor(() => /connects (\d+)/.exec(out), 'the flood to report');
        expect(Number(/connects (\d+)/.exec(out)![1])).toBeGreaterThan(1000);
      },
    );
  });
});

describe('errors express raises before any body is read', () => {
  let daemon: Daemon;
  let cleanup: () => void;

  beforeAll(async () => {
    const temp = makeTempDir();
    cleanup = temp.cleanup;
    daemon = await startTestDaemon(temp.dir, []);
  });

  afterAll(async () => {
    await daemon?.close();
    cleanup?.();
  });

  it('answers a path that does not decode with its own 400, not as an unreadable body', async () => {
    const response = await raw(daemon.port, {
      method: 'GET',
      path: '/oauth/login/%%%%',
      headers: authHeaders(daemon),
    });
    expect(response.status).toBe(400);
    const { error } = JSON.parse(response.body);
    expect(error.code).toBe(-32600);
    expect(error.message).toMatch(/^Bad Request: Failed to decode param/);
    expect(error.message).not.toMatch(/body/);
    expect(error.data?.code).not.toBe('BODY_UNREADABLE');
  });
});
