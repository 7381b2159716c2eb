import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import {
  bodyOf,
  INITIALIZE,
  nested,
  postHead,
  type RawResponse,
  raw,
  rawSocket,
} from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

const BODY_TIMEOUT_MS = 500;

function jsonRpcError(response: RawResponse) {
  expect(response.headers['content-type']).toMatch(/application\/json/);
  return JSON.parse(response.body) as {
    id: unknown;
    error: { code: number; message: string; data?: Record<string, unknown> };
  };
}

/** A request stream kept open, with what arrived so far. */
function openStream(port: number, method: string, headers: Record<string, string>, body?: string) {
  let text = '';
  let status = 0;
  let ended = false;
  const req = request(
    {
      host: '127.0.0.1',
      port,
      method,
      path: '/mcp',
      agent: false,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...headers,
      },
    },
    (res) => {
      status = res.statusCode ?? 0;
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
      });
      // 'close' without 'end' when the connection is cut.
      res.on('close', () => {
        ended = true;
      });
    },
  );
  req.on('error', () => {
    ended = true;
  });
  req.end(body);
  return { text: () => text, status: () => status, ended: () => ended, destroy: () => req.destroy() };
}

describe('request bodies, timeouts and cancelled calls', () => {
  let daemon: Daemon;
  let cleanup: () => void;
  let port: number;

  beforeAll(async () => {
    const temp = makeTempDir();
    cleanup = temp.cleanup;
    daemon = await startTestDaemon(temp.dir, [fakeUpstream('fake')], {
      overrides: { bodyTimeoutMs: BODY_TIMEOUT_MS },
    });
    port = daemon.port;
    await waitFor(() => daemon.registry.get('fake')!.snapshot().state === 'ready', 'ready');
  });

  afterAll(async () => {
    await daemon?.close();
    cleanup();
  });

  async function openSession(): Promise<Record<string, string>> {
    const response = await raw(port, { body: INITIALIZE, headers: authHeaders(daemon) });
    expect(response.status).toBe(200);
    const headers = {
      ...authHeaders(daemon),
      'mcp-session-id': response.headers['mcp-session-id'] as string,
      'mcp-protocol-version': '2025-11-25',
    };
    await raw(port, {
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    return headers;
  }

  /** A connection that sent its headers and part of its body, and then nothing. */
  function stalledBody() {
    return rawSocket(port, `${postHead(authHeaders(daemon), 1000)}{"jsonrpc":`);
  }

  it('closes connections that stall before their request is complete, with a 408 JSON-RPC answer', async () => {
    const stalled = Array.from({ length: 20 }, () => stalledBody());
    const headersOnly = rawSocket(port, 'POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n');
    await waitFor(
      () => stalled.every((s) => s.closed()) && headersOnly.closed(),
      'the stalled connections to be closed',
    );
    // The headers timeout is the shorter of 5 s and bodyTimeoutMs.
    expect(bodyOf(headersOnly.received())).toMatchObject({
      error: { data: { code: 'HEADERS_TIMEOUT', headersTimeoutMs: BODY_TIMEOUT_MS } },
    });
    for (const socket of stalled) {
      expect(socket.received()).toMatch(/^HTTP\/1\.1 408 /);
      expect(bodyOf(socket.received())).toEqual({
        jsonrpc: '2.0',
        id: null,
        error: {
          code: -32600,
          message: expect.stringContaining(`did not arrive within ${BODY_TIMEOUT_MS} ms`),
          data: { code: 'BODY_TIMEOUT', bodyTimeoutMs: BODY_TIMEOUT_MS },
        },
      });
    }
  });

  it('does not cut an event stream or a call that outlive the body timeout', async () => {
    const headers = await openSession();
    const resources = await raw(port, {
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'resources/list' }),
    });
    const uri = /"uri":"([^"]+readme)"/.exec(resources.body)![1]!;
    await raw(port, {
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'resources/subscribe', params: { uri } }),
    });
    const events = openStream(port, 'GET', headers);
    await waitFor(() => events.status() === 200, 'the event stream to open');
    const call = openStream(
      port,
      'POST',
      headers,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 4,
        method: 'tools/call',
        params: { name: 'fake__slow', arguments: { ms: 4 * BODY_TIMEOUT_MS } },
      }),
    );
    // Once a connection opened after both has been cut, both have outlived the body timeout.
    const stalled = stalledBody();
    await waitFor(() => stalled.closed(), 'the body timeout to cut a stalled connection');
    expect(events.ended()).toBe(false);

    await raw(port, {
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 5,
        method: 'tools/call',
        params: { name: 'fake__touch', arguments: {} },
      }),
    });
    await waitFor(
      () => events.text().includes('notifications/resources/updated'),
      'the update on the event stream',
    );
    await waitFor(() => call.ended(), 'the long call to finish');
    expect(call.text()).toContain(`slept ${4 * BODY_TIMEOUT_MS}`);
    events.destroy();
  });

  it('ends the response of a call its 2025 client cancelled, and cancels the call upstream', async () => {
    const headers = await openSession();
    const call = openStream(
      port,
      'POST',
      headers,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'fake__slow', arguments: { ms: 2000 } },
      }),
    );
    await waitFor(() => call.status() === 200, 'the call to start');
    const cancel = await raw(port, {
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: 7, reason: 'the user pressed stop' },
      }),
    });
    expect(cancel.status).toBe(202);
    await waitFor(() => call.ended(), 'the response of the cancelled call to end');
    // Nothing is written for the cancelled request: its client expects no answer.
    expect(call.text()).not.toContain('"id":7');
    await waitFor(async () => {
      const stats = await raw(port, {
        headers,
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 8,
          method: 'tools/call',
          params: { name: 'fake__stats', arguments: {} },
        }),
      });
      return stats.body.includes('"cancelled":1');
    }, 'the upstream to see the cancellation');
  });

  it('answers a body that does not decode with 400 and an unknown encoding with 415, as JSON-RPC errors', async () => {
    const notCompressed = Buffer.from(INITIALIZE);
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const response = await raw(port, {
        headers: { ...authHeaders(daemon), 'content-encoding': encoding },
        body: notCompressed,
      });
      expect(response.status, encoding).toBe(400);
      expect(jsonRpcError(response).error).toMatchObject({
        code: -32700,
        data: { code: 'BODY_UNREADABLE', contentEncoding: encoding },
      });
    }
    const unknown = await raw(port, {
      headers: { ...authHeaders(daemon), 'content-encoding': 'x-snappy' },
      body: notCompressed,
    });
    expect(unknown.status).toBe(415);
    expect(jsonRpcError(unknown).error).toMatchObject({
      code: -32600,
      message: expect.stringContaining('x-snappy'),
      data: { code: 'UNSUPPORTED_ENCODING' },
    });
    // A body that is what its Content-Encoding says is read as before.
    const gzipped = await raw(port, {
      headers: { ...authHeaders(daemon), 'content-encoding': 'gzip' },
      body: gzipSync(INITIALIZE),
    });
    expect(gzipped.status).toBe(200);
  });

  it('answers JSON nested 50,000 levels deep with 400 on every route, and serves it at the depth limit', async () => {
    const deepInitialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"},"x":${nested(50_000)}}}`;
    const refused = await raw(port, { headers: authHeaders(daemon), body: deepInitialize });
    expect(refused.status).toBe(400);
    expect(jsonRpcError(refused)).toMatchObject({
      id: 1,
      error: { code: -32600, data: { code: 'JSON_TOO_DEEP', limit: 1000 } },
    });

    const headers = await openSession();
    // body → params → arguments → `k` nested objects: 3 + k levels.
    const call = (id: number, k: number) =>
      raw(port, {
        headers,
        body: `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"fake__echo","arguments":{"text":"deep","nest":${nested(k)}}}}`,
      });
    const tooDeep = await call(2, 50_000);
    expect(tooDeep.status).toBe(400);
    expect(jsonRpcError(tooDeep)).toMatchObject({ id: 2, error: { data: { code: 'JSON_TOO_DEEP' } } });
    expect((await call(3, 998)).status).toBe(400);
    const atLimit = await call(4, 997);
    expect(atLimit.status).toBe(200);
    expect(atLimit.body).toContain('"text":"deep"');

    const modern = await raw(port, {
      headers: {
        ...authHeaders(daemon),
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': 'fake__echo',
      },
      body: `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"fake__echo","arguments":{"text":${nested(50_000)}},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}}}`,
    });
    expect(modern.status).toBe(400);
    expect(jsonRpcError(modern)).toMatchObject({ id: 5, error: { data: { code: 'JSON_TOO_DEEP' } } });
  });
});

describe('connection and body limits', () => {
  let cleanup: () => void;
  const daemons: Daemon[] = [];

  beforeAll(() => {
    cleanup = makeTempDir().cleanup;
  });

  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.close()));
    cleanup();
  });

  async function start(overrides: Parameters<typeof startTestDaemon>[2]['overrides']): Promise<Daemon> {
    const temp = makeTempDir();
    const daemon = await startTestDaemon(temp.dir, [], { overrides });
    daemons.push(daemon);
    return daemon;
  }

  it('answers connections past maxConnections, when every open one has the access token, with 503 and Retry-After, and serves again once one closes', async () => {
    const daemon = await start({ maxConnections: 4 });
    const held = Array.from({ length: 4 }, () =>
      rawSocket(
        daemon.port,
        `GET /status HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: ${authHeaders(daemon).authorization}\r\n\r\n`,
      ),
    );
    await waitFor(
      () => held.every((s) => /^HTTP\/1\.1 200 /.test(s.received())),
      'the first connections to be served',
    );
    const refused = await raw(daemon.port, { method: 'GET', path: '/status', headers: authHeaders(daemon) });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers.connection).toBe('close');
    expect(jsonRpcError(refused).error).toMatchObject({
      code: -32011,
      data: { code: 'TOO_MANY_CONNECTIONS', limit: 4 },
    });
    held[0]!.socket.destroy();
    await waitFor(
      async () =>
        (await raw(daemon.port, { method: 'GET', path: '/status', headers: authHeaders(daemon) })).status ===
        200,
      'a connection to be free again',
    );
    for (const socket of held) socket.socket.destroy();
  });

  it('answers a body that would pass maxBodyBytesInFlight with 503 and Retry-After, and takes it once room is made', async () => {
    const daemon = await start({ maxBodyBytesInFlight: 64 * 1024 });
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 9,
      method: 'tools/list',
      params: { pad: 'x'.repeat(40_000) },
    });
    // Its body arrives in part: its bytes stay reserved until it is answered.
    const holder = rawSocket(
      daemon.port,
      postHead(authHeaders(daemon), Buffer.byteLength(body)) + body.slice(0, 100),
    );
    let refused: RawResponse | undefined;
    await waitFor(async () => {
      const response = await raw(daemon.port, { headers: authHeaders(daemon), body });
      if (response.status === 503) refused = response;
      return refused;
    }, 'a body past the limit to be refused');
    expect(refused!.headers['retry-after']).toBe('1');
    expect(jsonRpcError(refused!)).toMatchObject({
      id: null,
      error: { code: -32011, data: { code: 'BODY_BYTES_IN_FLIGHT', limit: 64 * 1024 } },
    });

    holder.socket.write(body.slice(100));
    await waitFor(() => /^HTTP\/1\.1 400 /.test(holder.received()), 'the held body to be answered');
    await waitFor(
      async () => (await raw(daemon.port, { headers: authHeaders(daemon), body })).status === 400,
      'the next body to be taken (400: it has no session)',
    );
    holder.socket.destroy();
  });
});
