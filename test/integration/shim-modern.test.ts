import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { StdioUpstreamConfig } from '../../src/config/schema.js';
import type { Daemon } from '../../src/daemon.js';
import { makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { BIN } from '../helpers/cli.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import { waitFor } from '../helpers/wait.js';

const CONFORMANCE_FIXTURE = fileURLToPath(new URL('../fixtures/conformance-server.mjs', import.meta.url));
const Loose = z.looseObject({});

/** Issue 13: the shim speaks 2026-07-28 (stateless, SEP-2243 headers) to its stdio client too. */
describe('the stdio shim with a 2026-07-28 client', () => {
  let daemon: Daemon | undefined;
  const closers: (() => Promise<unknown> | unknown)[] = [];

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await daemon?.close();
    daemon = undefined;
  });

  async function setup(): Promise<{ url: string; configDir: string }> {
    const temp = makeTempDir();
    closers.push(temp.cleanup);
    const conformance: StdioUpstreamConfig = {
      kind: 'stdio',
      name: 'conf',
      command: process.execPath,
      args: [CONFORMANCE_FIXTURE],
      env: {},
      callTimeoutMs: 10_000,
      protocol: 'auto',
    };
    daemon = await startTestDaemon(temp.dir, [
      fakeUpstream('fake', { FAKE_CHANGE_TOOLS_AFTER_MS: '2500' }),
      conformance,
    ]);
    await waitFor(() => daemon!.registry.snapshots().every((s) => s.state === 'ready'), 'upstreams ready');
    return { url: daemon.url, configDir: temp.dir };
  }

  async function shimClient(
    url: string,
    configDir: string,
    mode: 'auto' | { pin: string },
    stderr: string[] = [],
  ): Promise<Client> {
    const client = new Client(
      { name: 'modern-stdio', version: '1' },
      {
        capabilities: { elicitation: {} },
        versionNegotiation: { mode },
        inputRequired: { autoFulfill: false },
      },
    );
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'stdio', '--url', url],
      env: { PATH: process.env.PATH ?? '', MCP_BRIDGE_CONFIG_DIR: configDir },
      stderr: 'pipe',
    });
    transport.stderr?.on('data', (c) => stderr.push(String(c)));
    await client.connect(transport);
    closers.push(() => client.close());
    return client;
  }

  it('lists, calls (with Mcp-Param headers), reads a resource, and passes input_required rounds, pinned to 2026-07-28', async () => {
    const { url, configDir } = await setup();
    const stderr: string[] = [];
    const client = await shimClient(url, configDir, { pin: '2026-07-28' }, stderr);
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');

    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('fake__echo');
    const echo = await client.callTool({ name: 'fake__echo', arguments: { text: 'hi' } });
    expect(echo.content).toEqual([{ type: 'text', text: 'hi' }]);
    // The daemon refuses a tools/call whose Mcp-Param-Region header does not mirror the argument.
    const region = await client.callTool({
      name: 'conf__test_header_param',
      arguments: { region: 'eu-west ü' },
    });
    expect(region.content).toEqual([{ type: 'text', text: 'Region: eu-west ü' }]);

    const read = await client.readResource({ uri: 'fake://readme' });
    expect(read.contents[0]).toMatchObject({ uri: 'fake://readme' });

    // An upstream elicitation reaches a 2026-07-28 client as an input_required result, and back.
    const first = (await client.request(
      { method: 'tools/call', params: { name: 'fake__ask', arguments: {} } },
      Loose,
      { allowInputRequired: true },
    )) as Record<string, unknown> & { inputRequests?: Record<string, unknown>; requestState?: string };
    expect(first.resultType).toBe('input_required');
    const [key] = Object.keys(first.inputRequests ?? {});
    const done = (await client.request(
      {
        method: 'tools/call',
        params: {
          name: 'fake__ask',
          arguments: {},
          inputResponses: { [key!]: { action: 'accept', content: { name: 'Ada' } } },
          requestState: first.requestState,
        },
      },
      Loose,
      { allowInputRequired: true },
    )) as { content?: { text: string }[] };
    expect(JSON.parse(done.content![0]!.text)).toMatchObject({ action: 'accept', content: { name: 'Ada' } });
    expect(stderr.join('')).not.toContain('unexpected error');
  });

  it('ends on 2026-07-28 in auto mode, and delivers list_changed over subscriptions/listen', async () => {
    const { url, configDir } = await setup();
    const client = await shimClient(url, configDir, 'auto');
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    let changed = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => {
      changed++;
    });
    // A long-lived POST whose SSE stream carries the notifications; close() cancels it.
    const subscription = await client.listen({ toolsListChanged: true });
    closers.push(() => subscription.close());
    await waitFor(() => changed > 0, 'tools/list_changed over subscriptions/listen', 15_000);
    await waitFor(
      async () => (await client.listTools()).tools.some((t) => t.name === 'fake__late'),
      'the new tool',
    );
  });
});
