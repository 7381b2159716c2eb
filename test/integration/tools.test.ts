import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EXPOSED_NAME } from '../../src/catalog/naming.js';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders } from '../helpers/access.js';
import { connectClient, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { FAKE_TOOL_COUNT, fakeUpstream } from '../helpers/fake-server.js';
import { waitFor } from '../helpers/wait.js';

const Loose = z.looseObject({});

describe('tools through the bridge', () => {
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

  async function setup(
    upstreams = [fakeUpstream('alpha'), fakeUpstream('beta', { FAKE_PAGE_SIZE: '2', FAKE_NAME: 'b' })],
  ) {
    const temp = makeTempDir();
    cleanup = temp.cleanup;
    daemon = await startTestDaemon(temp.dir, upstreams);
    await waitFor(() => daemon!.registry.snapshots().every((s) => s.state === 'ready'), 'upstreams ready');
    client = await connectClient(daemon.url);
    return { daemon, client };
  }

  it('lists every upstream tool as <upstream>__<tool>, walking every upstream page', async () => {
    const { client } = await setup();
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toContain('alpha__echo');
    expect(names).toContain('beta__echo');
    expect(names).toContain('beta__crash');
    // FAKE_TOOL_COUNT tools each; beta serves them two per page
    expect(names.filter((n) => n.startsWith('beta__') || n.startsWith('beta_')).length).toBe(FAKE_TOOL_COUNT);
    for (const name of names) expect(name).toMatch(EXPOSED_NAME);
    const echo = tools.find((t) => t.name === 'alpha__echo');
    expect(echo?.annotations).toEqual({ readOnlyHint: true });
    expect(echo?._meta).toEqual({ 'fake/tool': true });
    expect(echo?.title).toBe('Echo');
  });

  it('shortens an illegal or long tool name deterministically and still routes the call', async () => {
    const { client } = await setup();
    const { tools } = await client.listTools();
    const long = tools.filter((t) => t.description === 'Needs a shortened exposed name');
    expect(long).toHaveLength(2);
    for (const t of long) {
      expect(t.name.length).toBeLessThanOrEqual(64);
      expect(t.name).toMatch(/_[0-9a-f]{8}$/);
    }
    const result = await client.callTool({ name: long[0]!.name, arguments: {} });
    expect(result.content).toEqual([
      {
        type: 'text',
        text: 'a.tool/with illegal-chars and a very long name that does not fit into sixty-four characters ran',
      },
    ]);
  });

  it('passes a result through unchanged: content kinds, structuredContent, isError, _meta', async () => {
    const { client } = await setup();
    const rich = await client.request(
      { method: 'tools/call', params: { name: 'alpha__rich', arguments: {} } },
      Loose,
    );
    expect(rich).toEqual({
      content: [
        { type: 'text', text: 'hello', annotations: { audience: ['user'], priority: 0.5 } },
        { type: 'image', data: 'iVBORw0KGgo=', mimeType: 'image/png' },
        { type: 'resource_link', uri: 'file:///tmp/x.txt', name: 'x.txt', mimeType: 'text/plain' },
        { type: 'resource', resource: { uri: 'mem://a', text: 'embedded', mimeType: 'text/plain' } },
      ],
      structuredContent: { ok: true },
      isError: false,
      _meta: { 'fake/trace': 'abc' },
      extension: { unknown: 'fields survive' },
    });
    const echo = await client.request(
      { method: 'tools/call', params: { name: 'beta__echo', arguments: { text: 'hi' } } },
      Loose,
    );
    expect(echo).toEqual({
      content: [{ type: 'text', text: 'hi' }],
      structuredContent: { echoed: 'hi' },
      _meta: { 'fake/meta': 'kept' },
    });
    const failed = await client.callTool({ name: 'alpha__fail', arguments: {} });
    expect(failed).toMatchObject({ isError: true, content: [{ type: 'text', text: 'it failed' }] });
  });

  it('relays progress notifications of a call to the caller', async () => {
    const { client } = await setup();
    const progress: number[] = [];
    const result = await client.callTool(
      { name: 'alpha__slow', arguments: { ms: 80 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(result.content).toEqual([{ type: 'text', text: 'slept 80' }]);
    expect(progress).toEqual([1, 2, 3, 4]);
  });

  it("sends an upstream's elicitation only to the session whose call is running", async () => {
    const { daemon } = await setup([fakeUpstream('alpha')]);
    const sessions = await Promise.all(
      ['one', 'two'].map(async (name) => {
        const c = new Client({ name, version: '1' }, { capabilities: { elicitation: {} } });
        await c.connect(
          new StreamableHTTPClientTransport(new URL(daemon.url), {
            requestInit: { headers: authHeaders(daemon.url) },
          }),
        );
        const asked: string[] = [];
        c.setRequestHandler('elicitation/create', async (request) => {
          asked.push(String(request.params.message));
          return { action: 'decline' };
        });
        return { c, asked };
      }),
    );
    try {
      const result = await sessions[0]!.c.callTool({ name: 'alpha__ask', arguments: {} });
      expect((result.content as { text: string }[])[0]!.text).toContain('decline');
      expect(sessions[0]!.asked).toHaveLength(1);
      expect(sessions[1]!.asked).toHaveLength(0);

      // Another call of the same session running meanwhile does not make it ambiguous…
      const [, again] = await Promise.all([
        sessions[0]!.c.callTool({ name: 'alpha__slow', arguments: { ms: 600 } }),
        sessions[0]!.c.callTool({ name: 'alpha__ask', arguments: {} }),
      ]);
      expect((again.content as { text: string }[])[0]!.text).toContain('decline');
      // …but a call of another session does: the request is refused, never sent to a guess.
      const [, refused] = await Promise.all([
        sessions[1]!.c.callTool({ name: 'alpha__slow', arguments: { ms: 600 } }),
        sessions[0]!.c.callTool({ name: 'alpha__ask', arguments: {} }).catch((e: Error) => e),
      ]);
      expect(refused).toBeInstanceOf(Error);
      expect((refused as Error).message).toContain('cannot tell which client to ask');
      expect(sessions[1]!.asked).toHaveLength(0);
    } finally {
      for (const { c } of sessions) await c.close();
    }
  });

  it("routes upstream A's sampling request during session 1's call to session 1 only, while session 2 uses upstream B", async () => {
    const { daemon } = await setup();
    const sessions = await Promise.all(
      ['one', 'two'].map(async (name) => {
        const c = new Client({ name, version: '1' }, { capabilities: { sampling: {} } });
        await c.connect(
          new StreamableHTTPClientTransport(new URL(daemon.url), {
            requestInit: { headers: authHeaders(daemon.url) },
          }),
        );
        let asked = 0;
        c.setRequestHandler('sampling/createMessage', async () => {
          asked++;
          return { role: 'assistant', content: { type: 'text', text: `from ${name}` }, model: 'm' };
        });
        return { c, asked: () => asked };
      }),
    );
    try {
      const progress: number[] = [];
      const [sampled] = await Promise.all([
        sessions[0]!.c.callTool({ name: 'alpha__sample', arguments: {} }),
        sessions[1]!.c.callTool(
          { name: 'beta__slow', arguments: { ms: 400 } },
          { onprogress: (p) => progress.push(p.progress) },
        ),
      ]);
      expect((sampled.content as { text: string }[])[0]!.text).toContain('from one');
      expect(sessions[0]!.asked()).toBe(1);
      expect(sessions[1]!.asked()).toBe(0);
      expect(progress.length).toBeGreaterThan(0);
    } finally {
      for (const { c } of sessions) await c.close();
    }
  });

  it('keeps progress apart when several sessions (both eras) call the same upstream at once', async () => {
    const { daemon } = await setup([fakeUpstream('alpha')]);
    const sessions = await Promise.all(
      ['2025', '2025', '2026-07-28', '2026-07-28'].map(async (era, i) => {
        const c = new Client(
          { name: `s${i}`, version: '1' },
          era === '2025' ? {} : { versionNegotiation: { mode: { pin: era } } },
        );
        await c.connect(
          new StreamableHTTPClientTransport(new URL(daemon.url), {
            requestInit: { headers: authHeaders(daemon.url) },
          }),
        );
        return c;
      }),
    );
    try {
      const seen = sessions.map(() => [] as number[]);
      const results = await Promise.all(
        sessions.map((c, i) =>
          c.callTool(
            { name: 'alpha__slow', arguments: { ms: 200 + i * 50 } },
            { onprogress: (p) => seen[i]!.push(p.progress) },
          ),
        ),
      );
      results.forEach((result, i) => {
        expect(result.content).toEqual([{ type: 'text', text: `slept ${200 + i * 50}` }]);
      });
      for (const progress of seen) expect(progress).toEqual([1, 2, 3, 4]);
    } finally {
      for (const c of sessions) await c.close();
    }
  });

  it('relays a URL elicitation, and its completion notice after the call, to the session that was asked', async () => {
    const { daemon } = await setup([fakeUpstream('alpha')]);
    const sessions = await Promise.all(
      ['one', 'two'].map(async (name) => {
        const c = new Client({ name, version: '1' }, { capabilities: { elicitation: { url: {} } } });
        await c.connect(
          new StreamableHTTPClientTransport(new URL(daemon.url), {
            requestInit: { headers: authHeaders(daemon.url) },
          }),
        );
        const completed: string[] = [];
        c.setRequestHandler('elicitation/create', async () => ({ action: 'accept' }));
        c.setNotificationHandler('notifications/elicitation/complete', (n) => {
          completed.push(n.params.elicitationId);
        });
        return { c, completed };
      }),
    );
    try {
      const result = await sessions[0]!.c.callTool({ name: 'alpha__ask_url', arguments: {} });
      const { action, elicitationId } = JSON.parse((result.content as { text: string }[])[0]!.text);
      expect(action).toBe('accept');
      await waitFor(() => sessions[0]!.completed.length === 1, 'the completion notice');
      expect(sessions[0]!.completed).toEqual([elicitationId]);
      expect(sessions[1]!.completed).toEqual([]);
    } finally {
      for (const { c } of sessions) await c.close();
    }
  });

  it('cancels the upstream call when the client cancels', async () => {
    const { client } = await setup([fakeUpstream('alpha')]);
    const controller = new AbortController();
    let started = false;
    const call = client.callTool(
      { name: 'alpha__slow', arguments: { ms: 2000 } },
      {
        signal: controller.signal,
        onprogress: () => {
          started = true;
        },
      },
    );
    call.catch(() => {});
    await waitFor(() => started, 'the call to start');
    controller.abort();
    await expect(call).rejects.toThrow();
    await waitFor(async () => {
      const stats = await client.callTool({ name: 'alpha__stats', arguments: {} });
      return (stats.structuredContent as { cancelled: number }).cancelled === 1;
    }, 'the upstream to see the cancellation');
  });

  it('answers an unknown tool with a JSON-RPC invalid-params error naming it', async () => {
    const { client } = await setup();
    await expect(client.callTool({ name: 'nope__nothing', arguments: {} })).rejects.toMatchObject({
      code: -32602,
      message: expect.stringContaining('unknown tool "nope__nothing"'),
    });
  });

  it('tells every session when an upstream tool list changes', async () => {
    const { client } = await setup([
      fakeUpstream('alpha'),
      fakeUpstream('late', { FAKE_CHANGE_TOOLS_AFTER_MS: '300' }),
    ]);
    const second = await connectClient(daemon!.url, 'second');
    let firstNotified = 0;
    let secondNotified = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => {
      firstNotified++;
    });
    second.setNotificationHandler('notifications/tools/list_changed', () => {
      secondNotified++;
    });
    await waitFor(() => firstNotified > 0 && secondNotified > 0, 'list_changed on both sessions');
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('late__late');
    await second.close();
  });
});
