import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/client';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { StdioUpstreamConfig, UpstreamConfig } from '../../src/config/schema.js';
import type { Daemon } from '../../src/daemon.js';
import { connectClient, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { FAKE_TOOL_COUNT, fakeUpstream } from '../helpers/fake-server.js';
import { nested } from '../helpers/raw-http.js';
import { httpUpstream } from '../helpers/remote.js';
import { waitFor } from '../helpers/wait.js';

const DEEP_SERVER = fileURLToPath(new URL('../fixtures/deep-server.mjs', import.meta.url));
const LEVELS = 100_000;

function deepUpstream(name: string, env: Record<string, string> = {}): StdioUpstreamConfig {
  // A call that hung would show as a test timeout, not as this error.
  return { kind: 'stdio', name, command: process.execPath, args: [DEEP_SERVER], env, callTimeoutMs: 60_000 };
}

/**
 * A Streamable HTTP upstream in plain JSON (no SDK), answering `tools/call` of "deep" with a result
 * nested `LEVELS` deep, and listing a deep schema when `deepSchema` is set.
 */
async function startDeepHttpServer(deepSchema: boolean): Promise<{ url: string; server: Server }> {
  const tools = [
    { name: 'ping', inputSchema: { type: 'object' } },
    { name: 'deep', inputSchema: { type: 'object' } },
  ];
  const server = createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const message = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (message.id === undefined) {
        res.writeHead(202).end();
        return;
      }
      const id = JSON.stringify(message.id);
      let text: string;
      if (message.method === 'initialize') {
        text = JSON.stringify({
          jsonrpc: '2.0',
          id: message.id,
          result: {
            protocolVersion: message.params.protocolVersion,
            capabilities: { tools: {} },
            serverInfo: { name: 'deep-http', version: '1' },
          },
        });
      } else if (message.method === 'tools/list') {
        const listed = deepSchema
          ? `{"name":"deep_schema","inputSchema":{"type":"object","properties":${nested(LEVELS)}}},`
          : '';
        text = `{"jsonrpc":"2.0","id":${id},"result":{"tools":[${listed}${tools.map((t) => JSON.stringify(t)).join(',')}]}}`;
      } else if (message.method === 'tools/call' && message.params.name === 'deep') {
        text = `{"jsonrpc":"2.0","id":${id},"result":{"content":[],"structuredContent":${nested(LEVELS)}}}`;
      } else if (message.method === 'tools/call') {
        text = JSON.stringify({
          jsonrpc: '2.0',
          id: message.id,
          result: { content: [{ type: 'text', text: 'pong' }] },
        });
      } else {
        text = JSON.stringify({
          jsonrpc: '2.0',
          id: message.id,
          error: { code: -32601, message: 'no such method' },
        });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, server };
}

describe('an upstream whose output nests too deep', () => {
  let daemon: Daemon | undefined;
  let client: Client | undefined;
  const cleanups: (() => void | Promise<void>)[] = [];

  afterEach(async () => {
    await client?.close();
    await daemon?.close();
    client = undefined;
    daemon = undefined;
    for (const c of cleanups.splice(0)) await c();
  });

  /** A daemon with the given "bad" upstream next to the fixture server "good"; its log lines are kept. */
  async function start(bad: UpstreamConfig) {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    const logs: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => logs.push(line) });
    daemon = await startTestDaemon(temp.dir, [bad, fakeUpstream('good')], { logger });
    const d = daemon;
    client = await connectClient(d.url);
    await waitFor(() => d.registry.get('good')?.snapshot().state === 'ready', 'good to be ready');
    const snapshot = () => d.registry.get('bad')!.snapshot();
    return { daemon: d, client, logs, bad: snapshot, configDir: temp.dir };
  }

  function deepWarnings(logs: readonly string[]) {
    // No log line carries the content: a line that did would be megabytes of `{"a":`.
    for (const line of logs) expect(line.length).toBeLessThan(10_000);
    return logs.map((l) => JSON.parse(l)).filter((l) => l.code === 'UPSTREAM_OUTPUT_TOO_DEEP');
  }

  for (const kind of ['stdio', 'http'] as const) {
    it(`keeps the other upstreams' tools listed when a ${kind} upstream lists a tool schema ${LEVELS} levels deep`, async () => {
      let bad: UpstreamConfig = deepUpstream('bad', { DEEP_SCHEMA: '1' });
      if (kind === 'http') {
        const remote = await startDeepHttpServer(true);
        cleanups.push(() => new Promise<void>((r) => remote.server.close(() => r())));
        bad = httpUpstream('bad', remote.url, { protocol: 'legacy' });
      }
      const { client: c, logs, bad: snapshot, configDir } = await start(bad);
      // Its tools/list is answered with the error, so start-up fails (and is retried with backoff).
      await waitFor(() => snapshot().lastError, 'bad to fail start-up');
      expect(snapshot().lastError).toMatchObject({
        code: 'HANDSHAKE_FAILED',
        message: expect.stringMatching(/answered with JSON nested more than 1000 levels deep/),
      });
      const listed = await c.listTools();
      expect(listed.tools.filter((t) => t.name.startsWith('good__'))).toHaveLength(FAKE_TOOL_COUNT);
      expect(listed.tools.some((t) => t.name.startsWith('bad__'))).toBe(false);
      expect(deepWarnings(logs)).toContainEqual(
        expect.objectContaining({ level: 40, upstream: 'bad', limit: 1000 }),
      );
      // The tool cache holds the healthy upstream's tools.
      await waitFor(() => {
        const cache = JSON.parse(readFileSync(join(configDir, 'tools-cache.json'), 'utf8'));
        return cache.upstreams.good?.tools.length === FAKE_TOOL_COUNT;
      }, 'the tool cache to be written');
    }, 60_000);

    it(`answers a call whose ${kind} result nests ${LEVELS} levels deep with UPSTREAM_OUTPUT_TOO_DEEP, and the upstream keeps serving`, async () => {
      let bad: UpstreamConfig = deepUpstream('bad');
      if (kind === 'http') {
        const remote = await startDeepHttpServer(false);
        cleanups.push(() => new Promise<void>((r) => remote.server.close(() => r())));
        bad = httpUpstream('bad', remote.url, { protocol: 'legacy', callTimeoutMs: 60_000 });
      }
      const { client: c, logs, bad: snapshot } = await start(bad);
      await waitFor(() => snapshot().state === 'ready', 'bad to be ready');
      const pid = snapshot().pid;
      const deep = await c.callTool({ name: 'bad__deep', arguments: {} }).then(
        () => undefined,
        (error: { code?: number; message?: string; data?: unknown }) => error,
      );
      expect(deep).toMatchObject({
        code: -32001,
        message: expect.stringMatching(/upstream "bad" .*nested more than 1000 levels/),
        data: { code: 'UPSTREAM_OUTPUT_TOO_DEEP', upstream: 'bad', limit: 1000 },
      });
      const warnings = deepWarnings(logs);
      expect(warnings).toEqual([
        expect.objectContaining({ level: 40, upstream: 'bad', limit: 1000, kind: 'response' }),
      ]);
      expect(JSON.stringify((await c.callTool({ name: 'bad__ping', arguments: {} })).content)).toContain(
        'pong',
      );
      expect(snapshot()).toMatchObject({ state: 'ready', pid, restarts: 0 });
      expect((await c.listTools()).tools.filter((t) => t.name.startsWith('good__'))).toHaveLength(
        FAKE_TOOL_COUNT,
      );
    }, 60_000);
  }

  it('drops a stdio notification nested too deep, and answers a request from the child nested too deep with an error', async () => {
    const { client: c, logs, bad: snapshot } = await start(deepUpstream('bad'));
    await waitFor(() => snapshot().state === 'ready', 'bad to be ready');
    const logged: unknown[] = [];
    c.setNotificationHandler('notifications/message', (n) => {
      logged.push(n.params);
    });
    await c.setLoggingLevel('debug');
    const result = await c.callTool({ name: 'bad__deep_log', arguments: {} });
    expect(JSON.stringify(result.content)).toContain('pong');
    expect(logged).toEqual([]);
    const asked = await c.callTool({ name: 'bad__deep_request', arguments: {} });
    expect(JSON.stringify(asked.content)).toContain('error -32001');
    expect(deepWarnings(logs).map((l) => l.kind)).toEqual(['notification', 'request']);
    expect(snapshot().state).toBe('ready');
  }, 60_000);
});
