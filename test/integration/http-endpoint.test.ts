import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { FAKE_TOOL_COUNT, fakeUpstream } from '../helpers/fake-server.js';
import { type RawResponse, raw as rawRequest } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/** A raw request, sent with the daemon's access token as a configured client would. */
function raw(port: number, options: Parameters<typeof rawRequest>[1]): Promise<RawResponse> {
  return rawRequest(port, {
    ...options,
    headers: { ...authHeaders(`http://127.0.0.1:${port}`), ...options.headers },
  });
}

const initialize = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

function jsonRpcError(response: RawResponse) {
  expect(response.headers['content-type']).toMatch(/application\/json/);
  const body = JSON.parse(response.body);
  expect(body.jsonrpc).toBe('2.0');
  return body.error as { code: number; message: string };
}

describe('the HTTP endpoint', () => {
  let daemon: Daemon;
  let cleanup: () => void;
  let port: number;

  beforeAll(async () => {
    const temp = makeTempDir();
    cleanup = temp.cleanup;
    daemon = await startTestDaemon(temp.dir, [fakeUpstream('fake')], {
      overrides: { maxBodyBytes: 64 * 1024, allowedHosts: ['bridge.tunnel.test'] },
    });
    port = daemon.port;
    await waitFor(() => daemon.registry.get('fake')!.snapshot().state === 'ready', 'ready');
  });

  afterAll(async () => {
    await daemon.close();
    cleanup();
  });

  async function openSession(host?: string): Promise<string> {
    const hostHeader: Record<string, string> = host ? { host } : {};
    const response = await raw(port, { body: initialize, headers: hostHeader });
    expect(response.status).toBe(200);
    const id = response.headers['mcp-session-id'];
    expect(typeof id).toBe('string');
    await raw(port, {
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      headers: { ...hostHeader, 'mcp-session-id': id as string, 'mcp-protocol-version': '2025-11-25' },
    });
    return id as string;
  }

  it('lets a tunnelled client whose response stream broke resume it with Last-Event-ID', async () => {
    // Through a tunnel (an allowed non-loopback Host) streams are resumable: a call answered
    // within 1 s is plain JSON (nothing to resume), a slower one's stream primes and keeps ids…
    const host = 'bridge.tunnel.test';
    const session = await openSession(host);
    const headers = {
      ...authHeaders(`http://127.0.0.1:${port}`),
      host,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': session,
      'mcp-protocol-version': '2025-11-25',
    };
    const lastEventId = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/mcp', headers }, (res) => {
        expect(res.headers['content-type']).toMatch(/text\/event-stream/);
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString('utf8');
          if (!/\n\n/.test(text)) return;
          // The first event primes the stream: an id to resume from, and a retry hint.
          expect(text).toMatch(/^retry: \d+$/m);
          resolve(/^id: (.+)$/m.exec(text)![1]!);
          req.destroy();
        });
      });
      req.on('error', () => {});
      req.end(
        JSON.stringify({
          jsonrpc: '2.0',
          id: 7,
          method: 'tools/call',
          params: { name: 'fake__slow', arguments: { ms: 1600 } },
        }),
      );
      setTimeout(() => reject(new Error('no priming event')), 5000).unref();
    });

    // As a client would after the retry hint: 409 means the server has not yet seen the old
    // stream close.
    let resumed: RawResponse;
    do {
      await new Promise((resolve) => setTimeout(resolve, 50));
      resumed = await raw(port, { method: 'GET', headers: { ...headers, 'last-event-id': lastEventId } });
    } while (resumed.status === 409);
    expect(resumed.status).toBe(200);
    const messages = resumed.body
      .split('\n')
      .filter((line) => line.startsWith('data: ') && line.length > 6)
      .map((line) => JSON.parse(line.slice(6)));
    expect(messages.at(-1)).toMatchObject({ id: 7, result: { content: [{ text: 'slept 1600' }] } });

    // …and on loopback they are not (a priming event costs every call about a millisecond).
    const local = await openSession();
    const plain = await raw(port, {
      headers: { 'mcp-session-id': local, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 8,
        method: 'tools/call',
        params: { name: 'fake__echo', arguments: { text: 'x' } },
      }),
    });
    expect(plain.body).not.toMatch(/^retry:/m);
  });

  it('rejects a Host that is not a loopback name with 403 (DNS rebinding)', async () => {
    const response = await raw(port, { body: initialize, headers: { host: 'evil.example:8769' } });
    expect(response.status).toBe(403);
    expect(jsonRpcError(response).message).toContain('Host "evil.example:8769" is not allowed');
    const status = await raw(port, { method: 'GET', path: '/status', headers: { host: 'attacker.test' } });
    expect(status.status).toBe(403);
  });

  it('accepts loopback Host names with any port', async () => {
    for (const host of ['localhost:8769', '127.0.0.1', '[::1]:1234']) {
      const response = await raw(port, { method: 'GET', path: '/healthz', headers: { host } });
      expect(response.status).toBe(200);
    }
  });

  it('rejects an Origin outside the allowlist with 403, and allows the listed ones with CORS headers', async () => {
    const evil = await raw(port, { body: initialize, headers: { origin: 'https://evil.example' } });
    expect(evil.status).toBe(403);
    expect(jsonRpcError(evil).message).toContain('Origin "https://evil.example" is not allowed');
    const lookalike = await raw(port, {
      body: initialize,
      headers: { origin: 'https://claude.ai.evil.example' },
    });
    expect(lookalike.status).toBe(403);
    const nullOrigin = await raw(port, { body: initialize, headers: { origin: 'null' } });
    expect(nullOrigin.status).toBe(403);

    for (const origin of [
      'https://claude.ai',
      'https://abc.claudeusercontent.com',
      'http://localhost:5173',
      'https://chatgpt.com',
    ]) {
      const ok = await raw(port, { body: initialize, headers: { origin } });
      expect(ok.status).toBe(200);
      expect(ok.headers['access-control-allow-origin']).toBe(origin);
      expect(String(ok.headers['access-control-expose-headers'])).toContain('Mcp-Session-Id');
    }
  });

  it('answers a CORS preflight from an allowed origin and refuses one from another', async () => {
    const preflight = await raw(port, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://claude.ai',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, mcp-session-id',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://claude.ai');
    expect(String(preflight.headers['access-control-allow-headers'])).toMatch(/Mcp-Session-Id/i);
    const refused = await raw(port, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(refused.status).toBe(403);
  });

  it('answers 400 for a request without a session id and 404 for an unknown one', async () => {
    const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    const missing = await raw(port, { body: list });
    expect(missing.status).toBe(400);
    expect(jsonRpcError(missing).message).toContain('missing Mcp-Session-Id');
    const unknown = await raw(port, { body: list, headers: { 'mcp-session-id': 'no-such-session' } });
    expect(unknown.status).toBe(404);
    expect(jsonRpcError(unknown).message).toContain('Session not found');
    // The request's id is echoed when it is known.
    expect(JSON.parse(missing.body).id).toBe(2);
    expect(JSON.parse(unknown.body).id).toBe(2);
    const get = await raw(port, { method: 'GET' });
    expect(get.status).toBe(400);
  });

  it('ends a session on DELETE; the id is unknown afterwards', async () => {
    const id = await openSession();
    const headers = { 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' };
    const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    const before = await raw(port, { body: list, headers });
    expect(before.status).toBe(200);
    expect(before.body).toContain('fake__echo');
    const deleted = await raw(port, { method: 'DELETE', headers });
    expect(deleted.status).toBe(200);
    const after = await raw(port, { body: list, headers });
    expect(after.status).toBe(404);
  });

  it('answers a body over the limit with 413 and a JSON-RPC error, not HTML', async () => {
    const huge = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { pad: 'x'.repeat(100 * 1024) },
    });
    const response = await raw(port, { body: huge });
    expect(response.status).toBe(413);
    expect(jsonRpcError(response).message).toContain('Request body too large: the limit is 65536 bytes');
  });

  it('answers malformed JSON with a JSON-RPC parse error', async () => {
    const response = await raw(port, { body: '{"jsonrpc": "2.0", "id": 1, "method": ' });
    expect(response.status).toBe(400);
    expect(jsonRpcError(response).code).toBe(-32700);
  });

  it('answers unknown paths with JSON, never an HTML page', async () => {
    const response = await raw(port, { method: 'GET', path: '/nope' });
    expect(response.status).toBe(404);
    expect(jsonRpcError(response).message).toContain('the MCP endpoint is /mcp');
  });

  it('reports health and every upstream in /status', async () => {
    const health = await raw(port, { method: 'GET', path: '/healthz' });
    expect(health.status).toBe(200);
    const status = JSON.parse((await raw(port, { method: 'GET', path: '/status' })).body);
    expect(status.upstreams).toEqual([
      expect.objectContaining({
        name: 'fake',
        kind: 'stdio',
        state: 'ready',
        toolCount: FAKE_TOOL_COUNT,
        toolsSource: 'live',
        pid: expect.any(Number),
        restarts: 0,
        lastError: null,
        since: expect.any(String),
      }),
    ]);
  });
});
