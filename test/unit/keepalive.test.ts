import {
  Client,
  InMemoryTransport,
  type JSONRPCMessage,
  type Transport,
  type TransportSendOptions,
} from '@modelcontextprotocol/client';
import { Server } from '@modelcontextprotocol/server';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createSilentLogger } from '../../src/log.js';
import { type KeepaliveOptions, startKeepalive } from '../../src/upstream/keepalive.js';

/**
 * The server side of an in-memory pair, with a switch: `hung` drops the server's answers (a server
 * whose event loop is stuck), `refusing` turns them into JSON-RPC errors. Counts the pings it sees.
 */
class ServerGate implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  mode: 'answering' | 'hung' | 'refusing' = 'answering';
  pings = 0;

  constructor(private readonly inner: InMemoryTransport) {}

  async start(): Promise<void> {
    this.inner.onmessage = (message) => {
      if ('method' in message && message.method === 'ping') this.pings++;
      this.onmessage?.(message);
    };
    this.inner.onclose = () => this.onclose?.();
    await this.inner.start();
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (this.mode === 'hung') return;
    if (this.mode === 'refusing' && 'id' in message && 'result' in message) {
      const refusal = {
        jsonrpc: '2.0' as const,
        id: message.id,
        error: { code: -32601, message: 'no ping' },
      };
      return this.inner.send(refusal, options);
    }
    return this.inner.send(message, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('startKeepalive', () => {
  let gate: ServerGate;
  let client: Client;
  let stop: () => void = () => {};

  beforeEach(async () => {
    vi.useFakeTimers();
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    gate = new ServerGate(serverSide);
    await new Server({ name: 'pinged', version: '1.0.0' }, { capabilities: {} }).connect(gate);
    client = new Client({ name: 'bridge', version: '1.0.0' });
    await client.connect(clientSide);
  });
  afterEach(async () => {
    stop();
    await client.close();
    vi.useRealTimers();
  });

  function keepalive(overrides: Partial<KeepaliveOptions> = {}) {
    const onDead = vi.fn();
    stop = startKeepalive({
      client,
      intervalMs: 1000,
      isBusy: () => false,
      isCurrent: () => true,
      onDead,
      log: createSilentLogger(),
      ...overrides,
    });
    return onDead;
  }

  it('pings an idle connection once per interval and leaves a healthy one alone', async () => {
    const onDead = keepalive();
    await vi.advanceTimersByTimeAsync(999);
    expect(gate.pings).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(gate.pings).toBe(1);
    await vi.advanceTimersByTimeAsync(9000);
    expect(gate.pings).toBe(10);
    expect(onDead).not.toHaveBeenCalled();
  });

  it('gives up on a connection after two missed pings in a row', async () => {
    const onDead = keepalive();
    gate.mode = 'hung';
    await vi.advanceTimersByTimeAsync(2000); // the first ping went out at 1 s and timed out at 2 s
    expect(onDead).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1000);
    expect(onDead).toHaveBeenCalledTimes(1);
  });

  it('forgives a single missed ping once the next one is answered', async () => {
    // 20 s apart, a ping times out after 10 s: each ping settles before the next one goes out.
    const onDead = keepalive({ intervalMs: 20_000 });
    gate.mode = 'hung';
    await vi.advanceTimersByTimeAsync(30_000); // ping 1 missed
    gate.mode = 'answering';
    await vi.advanceTimersByTimeAsync(20_000); // ping 2 answered
    gate.mode = 'hung';
    await vi.advanceTimersByTimeAsync(20_000); // ping 3 missed: one miss in a row
    expect(onDead).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(20_000); // ping 4 missed: two
    expect(gate.pings).toBe(4);
    expect(onDead).toHaveBeenCalledTimes(1);
  });

  it('counts a JSON-RPC error as an answer: the server is alive', async () => {
    const onDead = keepalive();
    gate.mode = 'refusing';
    await vi.advanceTimersByTimeAsync(10_000);
    expect(gate.pings).toBe(10);
    expect(onDead).not.toHaveBeenCalled();
  });

  it('does not ping a server busy with a call', async () => {
    let busy = true;
    const onDead = keepalive({ isBusy: () => busy });
    gate.mode = 'hung';
    await vi.advanceTimersByTimeAsync(10_000);
    expect(gate.pings).toBe(0);
    busy = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect(gate.pings).toBe(1);
    expect(onDead).not.toHaveBeenCalled();
  });

  it('ignores a connection that is no longer current, even a ping that fails after that', async () => {
    let current = true;
    const onDead = keepalive({ isCurrent: () => current });
    gate.mode = 'hung';
    await vi.advanceTimersByTimeAsync(2500); // ping 1 missed, ping 2 on its way
    current = false;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(gate.pings).toBe(2);
    expect(onDead).not.toHaveBeenCalled();
  });

  it('stops pinging when stopped, and never starts with an interval of 0', async () => {
    keepalive();
    await vi.advanceTimersByTimeAsync(1000);
    stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(gate.pings).toBe(1);
    keepalive({ intervalMs: 0 });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(gate.pings).toBe(1);
  });
});
