import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/bridge.js';
import { connectLikeChatGPT, type PublicDaemon, startPublicDaemon } from '../helpers/connector.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The public listener's tool calls take the hot path, and its streams stay resumable: a client
 * whose tunnel dropped a slow call's stream gets the answer on a GET with Last-Event-ID.
 */
describe('public listener: resumable hot-path streams', () => {
  const tmp = makeTempDir();
  let pub: PublicDaemon;
  let token: string;

  beforeAll(async () => {
    pub = await startPublicDaemon(tmp.dir, [fakeUpstream('notes')]);
    await waitFor(() => pub.daemon.registry.get('notes')!.snapshot().state === 'ready', 'notes');
    token = (await connectLikeChatGPT(pub.resource)).tokens.access_token;
  });
  afterAll(async () => {
    await pub?.daemon.close();
    tmp.cleanup();
  });

  async function session(version: string) {
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${token}`,
    };
    const init = await fetch(pub.resource, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'resumer', version: '1' } },
      }),
    });
    await init.text();
    const id = init.headers.get('mcp-session-id')!;
    const sessionHeaders = { ...headers, 'mcp-session-id': id, 'mcp-protocol-version': version };
    await fetch(pub.resource, {
      method: 'POST',
      headers: sessionHeaders,
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    return sessionHeaders;
  }

  /** Reads SSE from `body` until `until` says stop; returns the events seen. */
  async function readEvents(
    body: ReadableStream<Uint8Array>,
    until: (events: { id?: string; data: string }[]) => boolean,
  ) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const events: { id?: string; data: string }[] = [];
    let buffer = '';
    while (!until(events)) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const id = /^id: (.*)$/m.exec(frame)?.[1];
        const data = /^data: ?(.*)$/m.exec(frame)?.[1];
        if (data !== undefined) events.push({ id, data });
        end = buffer.indexOf('\n\n');
      }
    }
    return { events, cancel: () => reader.cancel() };
  }

  it('a fast call is answered as JSON on the hot path', async () => {
    const headers = await session('2025-11-25');
    const response = await fetch(pub.resource, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'notes__echo', arguments: { text: 'quick' } },
      }),
    });
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(JSON.stringify(await response.json())).toContain('quick');
  });

  it('a dropped stream of a slow call is taken up again with Last-Event-ID and gets the answer', async () => {
    const headers = await session('2025-11-25');
    const controller = new AbortController();
    const response = await fetch(pub.resource, {
      method: 'POST',
      headers,
      signal: controller.signal,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'notes__slow', arguments: { ms: 2500 } },
      }),
    });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    // The priming event (an id, no data) comes when the answer turns into a stream.
    const { events } = await readEvents(response.body!, (seen) => seen.length > 0);
    const primingId = events[0]!.id!;
    expect(primingId).toBeTruthy();
    controller.abort();
    const resumed = await fetch(pub.resource, {
      method: 'GET',
      headers: { ...headers, 'last-event-id': primingId },
    });
    expect(resumed.status).toBe(200);
    const after = await readEvents(resumed.body!, (seen) => seen.some((e) => e.data.includes('"id":7')));
    const answer = after.events.find((e) => e.data.includes('"id":7'))!;
    expect(answer.id).toBeTruthy();
    expect(JSON.parse(answer.data).result).toBeDefined();
    await after.cancel();
  });

  it('clients of revisions before 2025-11-25 get no event ids (they cannot resume)', async () => {
    const headers = await session('2025-06-18');
    const response = await fetch(pub.resource, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 3,
        method: 'tools/call',
        params: { name: 'notes__slow', arguments: { ms: 1300 } },
      }),
    });
    const { events } = await readEvents(response.body!, (seen) =>
      seen.some((e) => e.data.includes('"id":3')),
    );
    expect(events.every((e) => e.id === undefined)).toBe(true);
  });
});
