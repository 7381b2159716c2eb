import type { Client } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders, connectClient, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import { INITIALIZE, raw } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

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

  async function setup() {
    const temp = makeTempDir();
    cleanup = temp.cleanup;
    daemon = await startTestDaemon(temp.dir, [fakeUpstream('alpha')]);
    await waitFor(() => daemon!.registry.snapshots().every((s) => s.state === 'ready'), 'upstream ready');
    return daemon;
  }

  async function session(d: Daemon) {
    const port = Number(new URL(d.url).port);
    const init = await raw(port, { headers: authHeaders(d), body: INITIALIZE });
    const id = String(init.headers['mcp-session-id']);
    const headers = { ...authHeaders(d), 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' };
    await raw(port, { headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
    const post = (body: unknown) => raw(port, { headers, body: JSON.stringify(body) });
    return { id, headers, port, post };
  }

  /** The JSON-RPC messages of an answer, whichever of its two forms it took. */
  function messagesOf(answer: { headers: Record<string, unknown>; body: string }): unknown[] {
    if (String(answer.headers['content-type']).startsWith('text/event-stream')) {
      return answer.body
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => JSON.parse(line.slice(6)));
    }
    return [JSON.parse(answer.body)].flat();
  }

  const call = (id: number, name: string, args?: unknown) => ({
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
      { jsonrpc: '2.0', id: 7, result: expect.objectContaining({ content: [{ type: 'text', text: 'héllo' }] }) },
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
    const pending = client.callTool({ name: 'alpha__slow', arguments: { ms: 2000 } }, { signal: aborted.signal });
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
});
