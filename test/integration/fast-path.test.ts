import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders, connectClient, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import { INITIALIZE, raw } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

const STRICT_SERVER = fileURLToPath(new URL('../fixtures/strict-server.mjs', import.meta.url));

const INITIALIZE_ASKING = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-11-25',
    capabilities: { elicitation: { form: {} } },
    clientInfo: { name: 'raw', version: '1' },
  },
});

/**
 * A POST whose answer is read as it arrives. `part` sends the body in two pieces: the first now,
 * the rest when `finish()` is called.
 */
function openPost(port: number, headers: Record<string, string>, body: string, part = body.length) {
  let text = '';
  let status = 0;
  let contentType = '';
  let ended = false;
  const req = request(
    {
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/mcp',
      agent: false,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'content-length': String(Buffer.byteLength(body)),
        ...headers,
      },
    },
    (res) => {
      status = res.statusCode ?? 0;
      contentType = String(res.headers['content-type']);
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
      });
      res.on('end', () => {
        ended = true;
      });
    },
  );
  req.on('error', () => {
    ended = true;
  });
  req.write(body.slice(0, part));
  if (part === body.length) req.end();
  return {
    finish: () => req.end(body.slice(part)),
    ended: () => ended,
    status: () => status,
    messages: () => messagesOf({ headers: { 'content-type': contentType }, body: text }),
  };
}

/** The JSON-RPC messages of an answer, whichever of its two forms it took. */
function messagesOf(answer: { headers: Record<string, unknown>; body: string }): unknown[] {
  if (String(answer.headers['content-type']).startsWith('text/event-stream')) {
    return answer.body
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice(6)));
  }
  return answer.body ? [JSON.parse(answer.body)].flat() : [];
}

/**
 * The hot path for a 2025 session's tools/call (server/fast-path.ts) must answer exactly what the
 * SDK path answers. A one-element batch always takes the SDK path, so it is the reference.
 */
describe('the tools/call hot path', () => {
  let daemon: Daemon | undefined;
  let client: Client | undefined;
  let cleanup = () => {};

  afterEach(async () => {
    await client?.close();
    await daemon?.close();
    cleanup();
    client = undefined;
    daemon = undefined;
  });

  async function setup(upstreams = [fakeUpstream('alpha')]) {
    const temp = makeTempDir();
    cleanup = temp.cleanup;
    daemon = await startTestDaemon(temp.dir, upstreams);
    await waitFor(() => daemon!.registry.snapshots().every((s) => s.state === 'ready'), 'upstream ready');
    return daemon;
  }

  async function session(d: Daemon, initialize = INITIALIZE) {
    const port = Number(new URL(d.url).port);
    const init = await raw(port, { headers: authHeaders(d), body: initialize });
    const id = String(init.headers['mcp-session-id']);
    const headers = { ...authHeaders(d), 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' };
    await raw(port, {
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    const post = (body: unknown) => raw(port, { headers, body: JSON.stringify(body) });
    return { id, headers, port, post };
  }

  const call = (id: number | string, name: string, args?: unknown) => ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, ...(args === undefined ? {} : { arguments: args }) },
  });

  it('answers a plain call with application/json, the same result the SDK path sends', async () => {
    const { post } = await session(await setup());
    const fast = await post(call(7, 'alpha__echo', { text: 'héllo' }));
    expect(fast.status).toBe(200);
    expect(fast.headers['content-type']).toBe('application/json');
    const reference = await post([call(7, 'alpha__echo', { text: 'héllo' })]);
    expect(reference.headers['content-type']).toBe('text/event-stream');
    expect(messagesOf(fast)).toEqual(messagesOf(reference));
    expect(messagesOf(fast)).toEqual([
      {
        jsonrpc: '2.0',
        id: 7,
        result: expect.objectContaining({ content: [{ type: 'text', text: 'héllo' }] }),
      },
    ]);
  });

  it('sends the same errors as the SDK path: unknown tool, tool error, bad arguments', async () => {
    const { post } = await session(await setup());
    for (const body of [
      call(1, 'nope__nothing'),
      call(2, 'alpha__fail'),
      call(3, 'alpha__echo', 'not an object'),
      { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { arguments: {} } },
    ]) {
      const fast = messagesOf(await post(body));
      const reference = messagesOf(await post([body]));
      expect(fast).toEqual(reference);
    }
  });

  it('streams progress before the result, then the result (SDK client)', async () => {
    const d = await setup();
    client = await connectClient(d.url);
    const progress: number[] = [];
    const result = await client.callTool(
      { name: 'alpha__slow', arguments: { ms: 200 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(result.content).toEqual([{ type: 'text', text: 'slept 200' }]);
    expect(progress).toEqual([1, 2, 3, 4]);
  });

  it('cancels the upstream call when the client cancels, and the session goes on', async () => {
    const d = await setup();
    client = await connectClient(d.url);
    const aborted = new AbortController();
    const pending = client.callTool(
      { name: 'alpha__slow', arguments: { ms: 2000 } },
      { signal: aborted.signal },
    );
    await new Promise((r) => setTimeout(r, 200));
    aborted.abort('changed my mind');
    await expect(pending).rejects.toThrow();
    await waitFor(async () => {
      const stats = await client!.callTool({ name: 'alpha__stats' });
      return (stats.structuredContent as { cancelled: number }).cancelled === 1;
    }, 'the upstream saw the cancellation');
  });

  it('ends a running call when its session is deleted', async () => {
    const { post, port, headers } = await session(await setup());
    const running = post(call(9, 'alpha__slow', { ms: 3000 }));
    await new Promise((r) => setTimeout(r, 200));
    const deleted = await raw(port, { method: 'DELETE', headers });
    expect(deleted.status).toBe(200);
    const answer = await running;
    expect(messagesOf(answer)).toEqual([]);
  });

  it('takes answers to its requests and cancellations of its calls that come the SDK way (batch, chunked)', async () => {
    const d = await setup();
    for (const how of ['batch', 'chunked'] as const) {
      const { port, headers, post } = await session(d, INITIALIZE_ASKING);
      const asking = openPost(port, headers, JSON.stringify(call(5, 'alpha__ask')));
      await waitFor(() => asking.messages().length > 0, 'the elicitation request');
      const [ask] = asking.messages() as { id: unknown; method: string }[];
      expect(ask?.method).toBe('elicitation/create');
      const answer = { jsonrpc: '2.0', id: ask?.id, result: { action: 'accept', content: { name: 'Ada' } } };
      const sent =
        how === 'batch'
          ? await post([answer])
          : await raw(port, {
              headers: { ...headers, 'transfer-encoding': 'chunked' },
              body: JSON.stringify(answer),
            });
      expect(sent.status).toBe(202);
      await waitFor(() => asking.ended(), `the call to end after a ${how} answer`);
      expect(asking.messages().at(-1)).toMatchObject({ id: 5, result: { content: [{ type: 'text' }] } });
    }
    const { port, headers, post } = await session(d);
    const slow = openPost(port, headers, JSON.stringify(call(6, 'alpha__slow', { ms: 3000 })));
    await new Promise((r) => setTimeout(r, 200));
    const cancel = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 6 } };
    expect((await post([cancel])).status).toBe(202);
    await waitFor(() => slow.ended(), 'the cancelled call to end');
    expect(slow.messages()).toEqual([]);
  });

  it('answers 404, and runs nothing, for a call whose body arrives after its session ended', async () => {
    const d = await setup();
    const { port, headers } = await session(d);
    const body = JSON.stringify(call(3, 'alpha__echo', { text: 'too late' }));
    const late = openPost(port, headers, body, 10);
    await new Promise((r) => setTimeout(r, 100));
    expect((await raw(port, { method: 'DELETE', headers })).status).toBe(200);
    late.finish();
    await waitFor(() => late.ended(), 'the late call to be answered');
    expect(late.status()).toBe(404);
    expect(late.messages()).toMatchObject([{ error: { data: { code: 'SESSION_NOT_FOUND' } } }]);
  });

  it('refuses an invalid tool result as the SDK server does, and serves an upstream that takes integer ids only', async () => {
    const strict = {
      kind: 'stdio' as const,
      name: 'strict',
      command: process.execPath,
      args: [STRICT_SERVER],
      env: {},
      callTimeoutMs: 10_000,
    };
    const { post } = await session(await setup([strict]));
    expect(messagesOf(await post(call(1, 'strict__ok')))).toMatchObject([
      { id: 1, result: { content: [{ text: 'ok' }] } },
    ]);
    for (const tool of ['strict__text_missing', 'strict__content_not_array']) {
      const fast = messagesOf(await post(call(2, tool)));
      const reference = messagesOf(await post([call(2, tool)]));
      expect(fast).toMatchObject([
        { id: 2, error: { code: -32602, message: expect.stringMatching(/^Invalid tools\/call result: /) } },
      ]);
      expect((reference[0] as { error: { code: number } }).error.code).toBe(-32602);
    }
  });

  it('leaves to the SDK what its message schema refuses (a fractional id, an extra key)', async () => {
    const { post } = await session(await setup());
    for (const body of [
      call(1.5, 'alpha__echo', { text: 'x' }),
      { ...call(1, 'alpha__echo', { text: 'x' }), extra: 1 },
    ]) {
      const fast = await post(body);
      const reference = await post([body]);
      expect([fast.status, messagesOf(fast)]).toEqual([reference.status, messagesOf(reference)]);
      expect(fast.status).toBe(400);
    }
  });
});
