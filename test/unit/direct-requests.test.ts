import {
  InMemoryTransport,
  type JSONRPCMessage,
  ProtocolError,
  SdkError,
} from '@modelcontextprotocol/client';
import { describe, expect, it } from 'vitest';
import { DirectRequests } from '../../src/upstream/direct-requests.js';

/** A transport pair: the bridge's end (with a stand-in for the Client's handlers) and the upstream's end. */
async function pair() {
  const [bridge, upstream] = InMemoryTransport.createLinkedPair();
  const toClient: JSONRPCMessage[] = [];
  let clientClosed = false;
  bridge.onmessage = (message) => toClient.push(message);
  bridge.onclose = () => {
    clientClosed = true;
  };
  const received: JSONRPCMessage[] = [];
  upstream.onmessage = (message) => received.push(message);
  await bridge.start();
  await upstream.start();
  return { bridge, upstream, toClient, received, clientClosed: () => clientClosed };
}

/** The Client's id counter, as DirectRequests finds it on an SDK v2 Client. */
const direct = (transport: InMemoryTransport) =>
  DirectRequests.of(transport, { _requestMessageId: 0 }) as DirectRequests;

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('DirectRequests (a 2025 stdio upstream, without the Client)', () => {
  it('sends with the next ids of the Client and resolves the result; the Client still gets everything else', async () => {
    const { bridge, upstream, toClient, received } = await pair();
    const call = direct(bridge).request(
      'tools/call',
      { name: 'echo' },
      { signal: new AbortController().signal },
    );
    await tick();
    expect(received).toEqual([{ jsonrpc: '2.0', id: 0, method: 'tools/call', params: { name: 'echo' } }]);
    await upstream.send({ jsonrpc: '2.0', id: 7, result: {} }); // a request of the Client's
    await upstream.send({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    await upstream.send({
      jsonrpc: '2.0',
      id: 0,
      result: { content: [], resultType: 'complete' },
    });
    await expect(call).resolves.toEqual({ content: [] });
    expect(toClient).toEqual([
      { jsonrpc: '2.0', id: 7, result: {} },
      { jsonrpc: '2.0', method: 'notifications/tools/list_changed' },
    ]);
  });

  it('relays progress for its token, and turns JSON-RPC errors into ProtocolError', async () => {
    const { bridge, upstream, received } = await pair();
    const progress: unknown[] = [];
    const call = direct(bridge).request(
      'tools/call',
      { name: 'slow', _meta: { keep: 1 } },
      {
        signal: new AbortController().signal,
        onprogress: (p) => progress.push(p),
      },
    );
    await tick();
    expect(received[0]).toMatchObject({ params: { _meta: { keep: 1, progressToken: 0 } } });
    await upstream.send({
      jsonrpc: '2.0',
      method: 'notifications/progress',
      params: { progressToken: 0, progress: 1, total: 2 },
    });
    await upstream.send({
      jsonrpc: '2.0',
      id: 0,
      error: { code: -32602, message: 'bad', data: { x: 1 } },
    });
    const error = await call.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: -32602, data: { x: 1 } });
    expect(progress).toEqual([{ progress: 1, total: 2 }]);
  });

  it('cancels at the upstream on abort, and fails what is pending when the transport closes', async () => {
    const { bridge, upstream, received, clientClosed } = await pair();
    const requests = direct(bridge);
    const controller = new AbortController();
    const aborted = requests.request('tools/call', { name: 'a' }, { signal: controller.signal });
    const open = requests.request('tools/call', { name: 'b' }, { signal: new AbortController().signal });
    controller.abort('changed my mind');
    await expect(aborted).rejects.toBeInstanceOf(SdkError);
    await tick();
    expect(received.at(-1)).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: 0, reason: 'changed my mind' },
    });
    await upstream.close();
    await expect(open).rejects.toMatchObject({ message: 'Connection closed' });
    expect(clientClosed()).toBe(true);
  });

  it('refuses a result that is not an object', async () => {
    const { bridge, upstream } = await pair();
    const call = direct(bridge).request('tools/call', {}, { signal: new AbortController().signal });
    await tick();
    await upstream.send({ jsonrpc: '2.0', id: 0, result: [1] } as unknown as JSONRPCMessage);
    await expect(call).rejects.toThrow(/not an object/);
  });
});
