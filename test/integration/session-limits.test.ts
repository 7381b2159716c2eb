import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../../src/daemon.js';
import { createSilentLogger } from '../../src/log.js';
import { rememberToken } from '../helpers/access.js';
import { authHeaders, makeTempDir, startTestDaemon, testConfig } from '../helpers/bridge.js';
import { INITIALIZE, raw } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

const MAX_SESSIONS = 3;

describe('the session limit', () => {
  const cleanups: (() => void)[] = [];
  const daemons: Daemon[] = [];

  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.close()));
    for (const cleanup of cleanups) cleanup();
  });

  function temp(): string {
    const dir = makeTempDir();
    cleanups.push(dir.cleanup);
    return dir.dir;
  }

  async function initialize(daemon: Daemon) {
    return raw(daemon.port, { headers: authHeaders(daemon), body: INITIALIZE });
  }

  function sessionHeaders(daemon: Daemon, id: string): Record<string, string> {
    return { ...authHeaders(daemon), 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' };
  }

  describe('while every session was used recently', () => {
    let daemon: Daemon;

    beforeAll(async () => {
      daemon = await startTestDaemon(temp(), [], { overrides: { maxSessions: MAX_SESSIONS } });
      daemons.push(daemon);
    });

    it('answers initialize past maxSessions with 503 and Retry-After, and takes one again after a DELETE', async () => {
      const ids: string[] = [];
      for (let i = 0; i < MAX_SESSIONS; i++) {
        const response = await initialize(daemon);
        expect(response.status).toBe(200);
        ids.push(response.headers['mcp-session-id'] as string);
      }
      const refused = await initialize(daemon);
      expect(refused.status).toBe(503);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(refused.headers['mcp-session-id']).toBeUndefined();
      expect(JSON.parse(refused.body)).toEqual({
        jsonrpc: '2.0',
        id: 1,
        error: {
          code: -32011,
          message: expect.stringContaining(`${MAX_SESSIONS} sessions open`),
          data: { code: 'TOO_MANY_SESSIONS', limit: MAX_SESSIONS },
        },
      });
      const status = await raw(daemon.port, { method: 'GET', path: '/status', headers: authHeaders(daemon) });
      expect(JSON.parse(status.body).sessions).toBe(MAX_SESSIONS);

      const deleted = await raw(daemon.port, { method: 'DELETE', headers: sessionHeaders(daemon, ids[0]!) });
      expect(deleted.status).toBe(200);
      expect((await initialize(daemon)).status).toBe(200);
    });
  });

  describe('when sessions sit idle', () => {
    let daemon: Daemon;

    beforeAll(async () => {
      const dir = temp();
      daemon = await startDaemon({
        config: testConfig(dir, [], { maxSessions: MAX_SESSIONS }),
        logger: createSilentLogger(),
        sessionEvictIdleAfterMs: 200,
      });
      rememberToken(daemon.url, () => daemon.accessToken);
      daemons.push(daemon);
    });

    it('makes room by closing the least recently used idle session, never one with an open stream', async () => {
      const listening = (await initialize(daemon)).headers['mcp-session-id'] as string;
      const stream = request({
        host: '127.0.0.1',
        port: daemon.port,
        method: 'GET',
        path: '/mcp',
        agent: false,
        headers: { ...sessionHeaders(daemon, listening), accept: 'text/event-stream' },
      });
      stream.on('error', () => {});
      const opened = new Promise((resolve) => stream.once('response', resolve));
      stream.end();
      await opened;
      const oldestIdle = (await initialize(daemon)).headers['mcp-session-id'] as string;
      expect((await initialize(daemon)).status).toBe(200);

      await waitFor(async () => (await initialize(daemon)).status === 200, 'an idle session to make room');
      const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
      const evicted = await raw(daemon.port, { headers: sessionHeaders(daemon, oldestIdle), body: list });
      expect(evicted.status).toBe(404);
      const kept = await raw(daemon.port, { headers: sessionHeaders(daemon, listening), body: list });
      expect(kept.status).toBe(200);
      stream.destroy();
    });
  });
});
