import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { StdioUpstreamConfig, UpstreamConfig } from '../../src/config/schema.js';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders } from '../helpers/access.js';
import { makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { freePort } from '../helpers/cli.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import { waitFor } from '../helpers/wait.js';

const CONFORMANCE_FIXTURE = fileURLToPath(new URL('../fixtures/conformance-server.mjs', import.meta.url));
const Loose = z.looseObject({});
type Raw = Record<string, unknown> & {
  resultType?: string;
  inputRequests?: Record<string, { method: string; params: Record<string, unknown> }>;
  requestState?: string;
  content?: { type: string; text: string }[];
};

/** The conformance fixture: it asks with input_required results (2026-07-28) or real requests (2025). */
function conformanceUpstream(name: string, protocol: 'auto' | 'legacy'): StdioUpstreamConfig {
  return {
    kind: 'stdio',
    name,
    command: process.execPath,
    args: [CONFORMANCE_FIXTURE],
    env: {},
    callTimeoutMs: 10_000,
    protocol,
  };
}

/** A remote upstream with a static key (so no OAuth), speaking whatever era it negotiates. */
function httpUpstream(name: string, url: string): UpstreamConfig {
  return {
    kind: 'http',
    name,
    url,
    headers: { authorization: 'Bearer none' },
    transport: 'streamable-http',
    oauth: {},
    callTimeoutMs: 10_000,
  };
}

describe('input_required rounds (2026-07-28) and requests from upstreams', () => {
  let daemon: Daemon | undefined;
  const clients: Client[] = [];
  let cleanup = () => {};

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await daemon?.close();
    daemon = undefined;
    cleanup();
  });

  async function setup(upstreams: UpstreamConfig[]): Promise<Daemon> {
    const temp = makeTempDir();
    cleanup = temp.cleanup;
    daemon = await startTestDaemon(temp.dir, upstreams);
    await waitFor(() => daemon!.registry.snapshots().every((s) => s.state === 'ready'), 'upstreams ready');
    return daemon;
  }

  /** A 2026-07-28 client; with autoFulfill off, input_required results come back as they are. */
  async function modernClient(capabilities: Record<string, unknown>, autoFulfill = false): Promise<Client> {
    const c = new Client(
      { name: 'modern', version: '1' },
      {
        capabilities,
        versionNegotiation: { mode: { pin: '2026-07-28' } },
        inputRequired: { autoFulfill },
      },
    );
    await c.connect(
      new StreamableHTTPClientTransport(new URL(daemon!.url), {
        requestInit: { headers: authHeaders(daemon!.url) },
      }),
    );
    clients.push(c);
    return c;
  }

  async function legacyClient(capabilities: Record<string, unknown>): Promise<Client> {
    const c = new Client({ name: 'legacy', version: '1' }, { capabilities });
    await c.connect(
      new StreamableHTTPClientTransport(new URL(daemon!.url), {
        requestInit: { headers: authHeaders(daemon!.url) },
      }),
    );
    clients.push(c);
    return c;
  }

  const call = (c: Client, params: Record<string, unknown>) =>
    c.request({ method: 'tools/call', params }, Loose, { allowInputRequired: true }) as Promise<Raw>;

  it("turns a 2025 upstream's elicitation into input_required rounds for a 2026-07-28 client", async () => {
    await setup([fakeUpstream('alpha')]);
    const modern = await modernClient({ elicitation: {} });

    const first = await call(modern, { name: 'alpha__ask', arguments: {} });
    expect(first.resultType).toBe('input_required');
    expect(first.inputRequests).toEqual({
      'elicitation-1': {
        method: 'elicitation/create',
        params: expect.objectContaining({ message: 'What is your name?' }),
      },
    });
    expect(first.requestState).toMatch(/^mcp-bridge\./);

    // A state the bridge did not mint for this call is refused, and the parked call is untouched.
    await expect(
      call(modern, { name: 'alpha__ask', arguments: {}, requestState: `${first.requestState}x` }),
    ).rejects.toMatchObject({ code: -32602 });

    const answer = { action: 'accept', content: { name: 'Ada' } };
    const done = await call(modern, {
      name: 'alpha__ask',
      arguments: {},
      requestState: first.requestState,
      inputResponses: { 'elicitation-1': answer },
    });
    expect(done.resultType).not.toBe('input_required');
    expect(JSON.parse(done.content![0]!.text)).toEqual(answer);

    // Each state is good for one round.
    await expect(
      call(modern, {
        name: 'alpha__ask',
        arguments: {},
        requestState: first.requestState,
        inputResponses: { 'elicitation-1': answer },
      }),
    ).rejects.toThrow(/requestState is unknown, already used or expired/);
  });

  it('asks again for an answer the retry left out, and works with the SDK client answering by itself', async () => {
    await setup([fakeUpstream('alpha')]);
    const modern = await modernClient({ sampling: {} });
    const first = await call(modern, { name: 'alpha__sample', arguments: {} });
    expect(Object.keys(first.inputRequests!)).toEqual(['sampling-1']);
    const again = await call(modern, {
      name: 'alpha__sample',
      arguments: {},
      requestState: first.requestState,
      inputResponses: { wrong: { action: 'accept' } },
    });
    expect(again.resultType).toBe('input_required');
    expect(Object.keys(again.inputRequests!)).toEqual(['sampling-1']);
    expect(again.requestState).not.toBe(first.requestState);
    // Finish the flow: while it waits for this client, the upstream's requests could be for
    // either client, so another client's call could not be asked anything (see the next test).
    const sampled = {
      role: 'assistant',
      content: { type: 'text', text: 'hi from the model' },
      model: 'test-model',
      stopReason: 'endTurn',
    };
    const done = await call(modern, {
      name: 'alpha__sample',
      arguments: {},
      requestState: again.requestState,
      inputResponses: { 'sampling-1': sampled },
    });
    expect(JSON.stringify(done.content)).toContain('hi from the model');

    // The SDK's own multi-round-trip driver fulfils the rounds through its sampling handler.
    const auto = await modernClient({ sampling: {} }, true);
    auto.setRequestHandler('sampling/createMessage', async () => ({ ...sampled, model: 'auto-model' }));
    const result = await auto.callTool({ name: 'alpha__sample', arguments: {} });
    expect(JSON.stringify(result.content)).toContain('auto-model');
  });

  it('keeps a round that is never answered from reaching anyone else, and refuses the ambiguous request', async () => {
    await setup([fakeUpstream('alpha')]);
    const abandoned = await modernClient({ elicitation: {} });
    expect((await call(abandoned, { name: 'alpha__ask', arguments: {} })).resultType).toBe('input_required');
    const other = await legacyClient({ elicitation: {} });
    const asked: unknown[] = [];
    other.setRequestHandler('elicitation/create', async (request) => {
      asked.push(request.params);
      return { action: 'decline' };
    });
    await expect(other.callTool({ name: 'alpha__ask', arguments: {} })).rejects.toThrow(
      /cannot tell which client to ask/,
    );
    expect(asked).toEqual([]);
  });

  it('refuses, without parking, a request the 2026-07-28 client did not declare a capability for', async () => {
    await setup([fakeUpstream('alpha')]);
    const modern = await modernClient({});
    const outcome = await call(modern, { name: 'alpha__ask', arguments: {} }).catch((error: Error) => error);
    expect(JSON.stringify(outcome instanceof Error ? outcome.message : outcome)).toContain(
      'did not declare the elicitation capability',
    );
  });

  it('passes a 2026-07-28 upstream’s own input_required rounds through, keys and state untouched', async () => {
    await setup([conformanceUpstream('conf', 'auto')]);
    await waitFor(() => daemon!.registry.snapshots()[0]!.serverInfo !== undefined, 'server info');
    const modern = await modernClient({ elicitation: {}, sampling: {}, roots: {} });
    const first = await call(modern, {
      name: 'conf__test_input_required_result_request_state',
      arguments: {},
    });
    expect(first.resultType).toBe('input_required');
    expect(Object.keys(first.inputRequests!)).toEqual(['confirm']);
    expect(first.requestState).not.toMatch(/^mcp-bridge\./);
    const done = await call(modern, {
      name: 'conf__test_input_required_result_request_state',
      arguments: {},
      requestState: first.requestState,
      inputResponses: { confirm: { action: 'accept', content: { ok: true } } },
    });
    expect(done.content![0]!.text).toContain('state-ok');

    // The client's declared capabilities reach the upstream: it asks only for what it can answer.
    const samplingOnly = await modernClient({ sampling: {} });
    const limited = await call(samplingOnly, {
      name: 'conf__test_input_required_result_capabilities',
      arguments: {},
    });
    expect(Object.values(limited.inputRequests!).map((r) => r.method)).toEqual(['sampling/createMessage']);
  });

  it('relays roots/list to a 2025 session, and as a round to a 2026-07-28 client, from either kind of upstream', async () => {
    await setup([conformanceUpstream('modern', 'auto'), conformanceUpstream('old', 'legacy')]);
    const roots = [{ uri: 'file:///work', name: 'work' }];
    const session = await legacyClient({ roots: {} });
    session.setRequestHandler('roots/list', async () => ({ roots }));
    for (const upstream of ['modern', 'old']) {
      const result = await session.callTool({
        name: `${upstream}__test_input_required_result_list_roots`,
        arguments: {},
      });
      expect(result.content).toEqual([{ type: 'text', text: 'Roots: file:///work' }]);
    }
    const modern = await modernClient({ roots: {} }, true);
    modern.setRequestHandler('roots/list', async () => ({ roots }));
    for (const upstream of ['modern', 'old']) {
      const result = await modern.callTool({
        name: `${upstream}__test_input_required_result_list_roots`,
        arguments: {},
      });
      expect(result.content).toEqual([{ type: 'text', text: 'Roots: file:///work' }]);
    }
  });

  it('cancels the upstream call when a 2026-07-28 client abandons its request', async () => {
    await setup([fakeUpstream('alpha')]);
    const modern = await modernClient({});
    const controller = new AbortController();
    let started = false;
    const pending = modern.callTool(
      { name: 'alpha__slow', arguments: { ms: 3000 } },
      { signal: controller.signal, onprogress: () => (started = true) },
    );
    pending.catch(() => {});
    await waitFor(() => started, 'the call to start');
    controller.abort();
    await expect(pending).rejects.toThrow();
    await waitFor(async () => {
      const stats = await modern.callTool({ name: 'alpha__stats', arguments: {} });
      return (stats.structuredContent as { cancelled: number }).cancelled === 1;
    }, 'the upstream to see the cancellation');
  });

  it('falls back to initialize for a stdio server that exits on the server/discover probe', async () => {
    const probeIntolerant = fileURLToPath(new URL('../fixtures/probe-intolerant.mjs', import.meta.url));
    await setup([
      {
        kind: 'stdio',
        name: 'old',
        command: process.execPath,
        args: [probeIntolerant],
        env: {},
        callTimeoutMs: 10_000,
        protocol: 'auto',
      },
    ]);
    const snapshot = daemon!.registry.get('old')!.snapshot();
    expect(snapshot.protocolVersion).toMatch(/^2025-/);
    const session = await legacyClient({});
    const result = await session.callTool({ name: 'old__echo', arguments: { text: 'still here' } });
    expect(result.content).toEqual([{ type: 'text', text: 'still here' }]);
  });

  it('serves a 2026-07-28 HTTP upstream: list changes and resource updates arrive over subscriptions/listen', async () => {
    const fixture = spawn(process.execPath, [CONFORMANCE_FIXTURE, '--http', '0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        fixture.stdout.on('data', (chunk: Buffer) => {
          const match = /listening on (\S+)/.exec(chunk.toString());
          if (match) resolve(match[1]!);
        });
        fixture.once('exit', () => reject(new Error('the fixture exited')));
      });
      await setup([httpUpstream('remote', url)]);
      expect(daemon!.registry.get('remote')!.snapshot().protocolVersion).toBe('2026-07-28');
      const session = await legacyClient({});
      let changed = 0;
      session.setNotificationHandler('notifications/tools/list_changed', () => {
        changed++;
      });
      await session.callTool({ name: 'remote__test_trigger_tool_change', arguments: {} });
      await waitFor(() => changed > 0, 'tools/list_changed from the 2026-07-28 upstream');
      const { tools } = await session.listTools();
      expect(tools.find((t) => t.name === 'remote__test_trigger_tool_change')?.description).toMatch(
        /revision 1/,
      );

      // A subscription rides on the upstream's listen stream; the update reaches the subscriber.
      const updated: string[] = [];
      session.setNotificationHandler('notifications/resources/updated', (n) => {
        updated.push(n.params.uri);
      });
      // Two at once: each reopens the listen stream, and neither may be lost.
      const uris = ['test://static-text', 'test://static-binary'];
      await Promise.all(uris.map((uri) => session.subscribeResource({ uri })));
      for (const uri of uris) {
        await session.callTool({ name: 'remote__test_trigger_resource_update', arguments: { uri } });
      }
      await waitFor(() => uris.every((uri) => updated.includes(uri)), 'resources/updated for both URIs');
    } finally {
      fixture.kill();
    }
  });

  it('asks each 2025 caller of a 2026-07-28 upstream its own questions, even while they run at once', async () => {
    await setup([conformanceUpstream('conf', 'auto')]);
    const sessions = await Promise.all(
      ['Ada', 'Grace'].map(async (name) => {
        const c = await legacyClient({ elicitation: {} });
        let asked = 0;
        c.setRequestHandler('elicitation/create', async () => {
          asked++;
          await new Promise((resolve) => setTimeout(resolve, 100));
          return { action: 'accept', content: { name } };
        });
        return { c, name, asked: () => asked };
      }),
    );
    const results = await Promise.all(
      sessions.map(({ c }) =>
        c.callTool({ name: 'conf__test_input_required_result_elicitation', arguments: {} }),
      ),
    );
    sessions.forEach(({ name, asked }, i) => {
      expect(results[i]!.content).toEqual([{ type: 'text', text: `Hello, ${name}!` }]);
      expect(asked()).toBe(1);
    });
  });

  it('stops the call timeout while the upstream waits for the client to answer', async () => {
    await setup([fakeUpstream('alpha', {}, 400)]);
    const session = await legacyClient({ elicitation: {} });
    session.setRequestHandler('elicitation/create', async () => {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return { action: 'accept', content: { name: 'slow typist' } };
    });
    const result = await session.callTool({ name: 'alpha__ask', arguments: {} });
    expect(JSON.stringify(result.content)).toContain('slow typist');
    // …and the timeout still applies to the upstream itself.
    await expect(session.callTool({ name: 'alpha__slow', arguments: { ms: 2000 } })).rejects.toThrow(
      /did not answer tools\/call within 400 ms/,
    );
  });

  it('negotiates 2026-07-28 with an HTTP upstream that was down when the bridge started', async () => {
    const port = await freePort();
    const temp = makeTempDir();
    cleanup = temp.cleanup;
    daemon = await startTestDaemon(temp.dir, [httpUpstream('late', `http://127.0.0.1:${port}/mcp`)]);
    await waitFor(() => daemon!.registry.get('late')!.snapshot().attempt > 0, 'a failed attempt');
    const fixture = spawn(process.execPath, [CONFORMANCE_FIXTURE, '--http', String(port)], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    try {
      await waitFor(() => daemon!.registry.get('late')!.snapshot().state === 'ready', 'ready', 15_000);
      expect(daemon!.registry.get('late')!.snapshot().protocolVersion).toBe('2026-07-28');
    } finally {
      fixture.kill();
    }
  });

  it('routes resource updates of a 2026-07-28 stdio upstream over its listen stream to the subscriber', async () => {
    await setup([conformanceUpstream('conf', 'auto')]);
    expect(daemon!.registry.get('conf')!.snapshot().protocolVersion).toBe('2026-07-28');
    const [subscriber, other] = [await legacyClient({}), await legacyClient({})];
    const updates: Record<string, string[]> = { subscriber: [], other: [] };
    subscriber.setNotificationHandler('notifications/resources/updated', (n) => {
      updates.subscriber!.push(n.params.uri);
    });
    other.setNotificationHandler('notifications/resources/updated', (n) => {
      updates.other!.push(n.params.uri);
    });
    const uri = 'test://static-text';
    await subscriber.subscribeResource({ uri });
    await other.callTool({ name: 'conf__test_trigger_resource_update', arguments: { uri } });
    await waitFor(() => updates.subscriber!.length > 0, 'the update');
    expect(updates).toEqual({ subscriber: [uri], other: [] });
  });

  it('mirrors x-mcp-header arguments into Mcp-Param-* headers for a 2026-07-28 HTTP upstream, which checks them', async () => {
    // The upstream is another bridge (it refuses tools/call whose headers do not mirror the body).
    const inner = makeTempDir();
    const upstreamBridge = await startTestDaemon(inner.dir, [conformanceUpstream('conf', 'auto')]);
    try {
      await waitFor(() => upstreamBridge.registry.get('conf')!.snapshot().state === 'ready', 'inner ready');
      // The outer bridge holds the inner one's access token as a static header, as a user would.
      await setup([
        { ...httpUpstream('chain', upstreamBridge.url), headers: authHeaders(upstreamBridge), prefix: false },
      ]);
      expect(daemon!.registry.get('chain')!.snapshot().protocolVersion).toBe('2026-07-28');
      const session = await legacyClient({});
      const result = await session.callTool({
        name: 'conf__test_header_param',
        arguments: { region: 'Zürich' },
      });
      expect(result.content).toEqual([{ type: 'text', text: 'Region: Zürich' }]);

      // Without the header, the inner bridge says so.
      const raw = await fetch(upstreamBridge.url, {
        method: 'POST',
        headers: {
          ...authHeaders(upstreamBridge.url),
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2026-07-28',
          'mcp-method': 'tools/call',
          'mcp-name': 'conf__test_header_param',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/call',
          params: {
            name: 'conf__test_header_param',
            arguments: { region: 'eu' },
            _meta: {
              'io.modelcontextprotocol/protocolVersion': '2026-07-28',
              'io.modelcontextprotocol/clientCapabilities': {},
              'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
            },
          },
        }),
      });
      expect(raw.status).toBe(400);
      expect(await raw.json()).toMatchObject({
        id: 1,
        error: { code: -32020, message: expect.stringContaining('Mcp-Param-Region is missing') },
      });
    } finally {
      await upstreamBridge.close();
      inner.cleanup();
    }
  });
});
