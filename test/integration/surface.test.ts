import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { UpstreamConfig } from '../../src/config/schema.js';
import type { Daemon } from '../../src/daemon.js';
import type { Status } from '../../src/server/status.js';
import { authHeaders } from '../helpers/access.js';
import { makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { FAKE_TOOL_COUNT, fakeUpstream } from '../helpers/fake-server.js';
import { waitFor } from '../helpers/wait.js';

describe('prompts, resources and completions through the bridge', () => {
  let daemon: Daemon | undefined;
  const clients: Client[] = [];
  let cleanup = () => {};

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await daemon?.close();
    daemon = undefined;
    cleanup();
  });

  async function setup(upstreams: UpstreamConfig[], pageSize?: number): Promise<Daemon> {
    const temp = makeTempDir();
    cleanup = temp.cleanup;
    daemon = await startTestDaemon(temp.dir, upstreams, pageSize ? { overrides: { pageSize } } : {});
    await waitFor(() => daemon!.registry.snapshots().every((s) => s.state === 'ready'), 'upstreams ready');
    return daemon;
  }

  /** A 2025 session client, or a stateless client pinned to a revision of 2026-07-28 or later. */
  async function client(pin?: string): Promise<Client> {
    const c = new Client(
      { name: 'surface', version: '1' },
      pin ? { versionNegotiation: { mode: { pin } } } : {},
    );
    await c.connect(
      new StreamableHTTPClientTransport(new URL(daemon!.url), {
        requestInit: { headers: authHeaders(daemon!.url) },
      }),
    );
    clients.push(c);
    return c;
  }

  const text = (result: { messages?: unknown[]; contents?: unknown[] }) =>
    JSON.stringify(result.messages ?? result.contents);

  it('namespaces prompts like tools, keeps resource URIs, namespaces only clashing URIs, and routes each back', async () => {
    await setup([fakeUpstream('alpha', { FAKE_NAME: 'a' }), fakeUpstream('beta', { FAKE_NAME: 'b' })]);
    const c = await client();

    const { prompts } = await c.listPrompts();
    expect(prompts.map((p) => p.name).sort()).toEqual(['alpha__greet', 'beta__greet']);
    expect(text(await c.getPrompt({ name: 'beta__greet', arguments: { who: 'Ada' } }))).toContain(
      'Hello Ada from b',
    );

    const { resources } = await c.listResources();
    expect(resources.map((r) => r.uri)).toEqual(['fake://readme', 'mcp-bridge://beta/fake://readme']);
    expect(text(await c.readResource({ uri: 'fake://readme' }))).toContain('from a');
    expect(text(await c.readResource({ uri: 'mcp-bridge://beta/fake://readme' }))).toContain(
      '"uri":"fake://readme"',
    );
    expect(text(await c.readResource({ uri: 'mcp-bridge://beta/fake://readme' }))).toContain('from b');

    const { resourceTemplates } = await c.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual([
      'fake://a/items/{id}',
      'fake://b/items/{id}',
    ]);
    expect(text(await c.readResource({ uri: 'fake://b/items/7' }))).toContain('fake://b/items/7 from b');

    const completion = await c.complete({
      ref: { type: 'ref/prompt', name: 'alpha__greet' },
      argument: { name: 'who', value: 'A' },
    });
    expect(completion.completion.values).toEqual(['Ada', 'Alan']);

    const status = (await (
      await fetch(daemon!.url.replace(/\/mcp$/, '/status'), { headers: authHeaders(daemon!) })
    ).json()) as Status;
    expect(status.clashes).toEqual([
      'resource "fake://readme" of "beta" is also served by "alpha"; exposed as "mcp-bridge://beta/fake://readme"',
    ]);
  });

  it('with "prefix": false, exposes names as they are; on a clash the later upstream keeps its prefix', async () => {
    await setup([
      { ...fakeUpstream('alpha', { FAKE_NAME: 'a' }), prefix: false },
      { ...fakeUpstream('beta', { FAKE_NAME: 'b' }), prefix: false },
    ]);
    const c = await client();
    const names = (await c.listTools()).tools.map((t) => t.name);
    expect(names).toContain('echo');
    expect(names).toContain('beta__echo');
    expect(names).not.toContain('alpha__echo');
    const echoed = await c.callTool({ name: 'echo', arguments: { text: 'plain' } });
    expect(echoed.content).toEqual([{ type: 'text', text: 'plain' }]);
    expect((await c.listPrompts()).prompts.map((p) => p.name).sort()).toEqual(['beta__greet', 'greet']);
    const status = (await (
      await fetch(daemon!.url.replace(/\/mcp$/, '/status'), { headers: authHeaders(daemon!) })
    ).json()) as Status;
    expect(status.clashes).toContain('tool "echo" of "beta" clashes with "alpha"; exposed as "beta__echo"');
  });

  it('merges upstream instructions into its own and forwards logging/setLevel', async () => {
    await setup([fakeUpstream('alpha', { FAKE_INSTRUCTIONS: 'Call echo before anything else.' })]);
    const c = await client();
    expect(c.getInstructions()).toContain('## alpha\nCall echo before anything else.');

    const logs: unknown[] = [];
    c.setNotificationHandler('notifications/message', (n) => {
      logs.push(n.params);
    });
    await c.setLoggingLevel('error');
    await c.callTool({ name: 'alpha__log', arguments: { text: 'quiet' } });
    await c.setLoggingLevel('debug');
    await c.callTool({ name: 'alpha__log', arguments: { text: 'loud' } });
    await waitFor(() => logs.length > 0, 'a log message');
    expect(logs).toEqual([expect.objectContaining({ data: { text: 'loud' } })]);
  });

  it('serves a stateless 2026-07-28 client and a 2025 session client on the same endpoint at once', async () => {
    await setup([fakeUpstream('alpha')]);
    const modern = await client('2026-07-28');
    const legacy = await client();
    const [modernTools, legacyTools] = await Promise.all([modern.listTools(), legacy.listTools()]);
    expect(modernTools.tools.map((t) => t.name)).toEqual(legacyTools.tools.map((t) => t.name));
    const [a, b] = await Promise.all([
      modern.callTool({ name: 'alpha__echo', arguments: { text: 'new' } }),
      legacy.callTool({ name: 'alpha__echo', arguments: { text: 'old' } }),
    ]);
    expect(a.content).toEqual([{ type: 'text', text: 'new' }]);
    expect(b.content).toEqual([{ type: 'text', text: 'old' }]);
    expect(text(await modern.getPrompt({ name: 'alpha__greet', arguments: { who: 'Ada' } }))).toContain(
      'Hello Ada',
    );
    expect(text(await modern.readResource({ uri: 'fake://readme' }))).toContain('fake://readme');

    // A 2026-07-28 request that names no log level gets no log messages; the 2025 session does.
    const modernLogs: unknown[] = [];
    modern.setNotificationHandler('notifications/message', (n) => {
      modernLogs.push(n.params);
    });
    const legacyLogs: unknown[] = [];
    legacy.setNotificationHandler('notifications/message', (n) => {
      legacyLogs.push(n.params);
    });
    await modern.callTool({ name: 'alpha__log', arguments: { text: 'modern' } });
    await legacy.callTool({ name: 'alpha__log', arguments: { text: 'legacy' } });
    await waitFor(() => legacyLogs.length > 0, 'the legacy log message');
    expect(modernLogs).toEqual([]);
  });

  it('sends resources/updated only to the session that subscribed', async () => {
    await setup([fakeUpstream('alpha')]);
    const [one, two] = [await client(), await client()];
    const updates: Record<string, string[]> = { one: [], two: [] };
    one.setNotificationHandler('notifications/resources/updated', (n) => {
      updates.one!.push(n.params.uri);
    });
    two.setNotificationHandler('notifications/resources/updated', (n) => {
      updates.two!.push(n.params.uri);
    });
    await one.subscribeResource({ uri: 'fake://readme' });
    const touched = await two.callTool({ name: 'alpha__touch', arguments: {} });
    expect(touched.content).toEqual([{ type: 'text', text: 'touched 1' }]);
    await waitFor(() => updates.one!.length > 0, 'the update');
    expect(updates).toEqual({ one: ['fake://readme'], two: [] });

    await one.unsubscribeResource({ uri: 'fake://readme' });
    expect((await two.callTool({ name: 'alpha__touch', arguments: {} })).content).toEqual([
      { type: 'text', text: 'touched 0' },
    ]);
  });

  it('subscribes the upstream for a 2026-07-28 listen stream that names a resource, while the stream is open', async () => {
    await setup([fakeUpstream('alpha')]);
    const modern = await client('2026-07-28');
    const updates: string[] = [];
    modern.setNotificationHandler('notifications/resources/updated', (n) => {
      updates.push(n.params.uri);
    });
    const subscription = await modern.listen({ resourceSubscriptions: ['fake://readme'] });
    const legacy = await client();
    expect((await legacy.callTool({ name: 'alpha__touch', arguments: {} })).content).toEqual([
      { type: 'text', text: 'touched 1' },
    ]);
    await waitFor(() => updates.length > 0, 'the update on the listen stream');
    expect(updates).toEqual(['fake://readme']);

    await subscription.close();
    await waitFor(async () => {
      const touched = await legacy.callTool({ name: 'alpha__touch', arguments: {} });
      return JSON.stringify(touched.content).includes('touched 0');
    }, 'the upstream subscription to end with the stream');
  });

  it('answers an unknown prompt with an error naming it; an unlisted URI matching no template goes nowhere when two upstreams could serve it', async () => {
    await setup([fakeUpstream('alpha', { FAKE_NAME: 'a' }), fakeUpstream('beta', { FAKE_NAME: 'b' })]);
    const c = await client();
    await expect(c.getPrompt({ name: 'nope' })).rejects.toMatchObject({
      message: expect.stringMatching(/unknown prompt "nope"/),
      data: { code: 'UNKNOWN_PROMPT' },
    });
    await expect(c.readResource({ uri: 'other://x' })).rejects.toMatchObject({
      message: expect.stringMatching(/unknown resource "other:\/\/x"/),
      data: { code: 'UNKNOWN_RESOURCE' },
    });
  });

  it('pages every merged list with an opaque cursor, and refuses a cursor it did not issue', async () => {
    await setup([fakeUpstream('alpha'), fakeUpstream('beta')], 5);
    const c = await client();
    const Page = z.looseObject({ nextCursor: z.string().optional() });
    const names: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const result = (await c.request({ method: 'tools/list', params: cursor ? { cursor } : {} }, Page)) as {
        tools: { name: string }[];
        nextCursor?: string;
      };
      expect(result.tools.length).toBeLessThanOrEqual(5);
      names.push(...result.tools.map((t) => t.name));
      cursor = result.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(Math.ceil((2 * FAKE_TOOL_COUNT) / 5));
    expect(new Set(names).size).toBe(2 * FAKE_TOOL_COUNT);
    // The SDK client walks the pages by itself.
    expect((await c.listTools()).tools.map((t) => t.name)).toEqual(names);
    expect((await c.listResources()).resources.length).toBeGreaterThan(0);

    await expect(
      c.request({ method: 'tools/list', params: { cursor: 'bogus' } }, Page),
    ).rejects.toMatchObject({
      code: -32602,
    });
    // A cursor of one list is no good for another.
    const first = (await c.request({ method: 'tools/list', params: {} }, Page)) as { nextCursor: string };
    await expect(
      c.request({ method: 'prompts/list', params: { cursor: first.nextCursor } }, Page),
    ).rejects.toThrow(/Invalid cursor/);
  });
});
