import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders } from '../helpers/access.js';
import { makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { waitFor } from '../helpers/wait.js';

const require = createRequire(import.meta.url);
const EVERYTHING = join(
  dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')),
  'dist',
  'index.js',
);

describe('a real third-party server: @modelcontextprotocol/server-everything over stdio', () => {
  let daemon: Daemon | undefined;
  let client: Client | undefined;
  let cleanup = () => {};

  afterEach(async () => {
    await client?.close();
    await daemon?.close();
    cleanup();
  });

  it('serves all its tools, resources and prompts through the bridge', async () => {
    const temp = makeTempDir();
    cleanup = temp.cleanup;
    daemon = await startTestDaemon(temp.dir, [
      {
        kind: 'stdio',
        name: 'everything',
        command: process.execPath,
        args: [EVERYTHING, 'stdio'],
        env: {},
        callTimeoutMs: 20_000,
      },
    ]);
    await waitFor(
      () => daemon?.registry.get('everything')?.snapshot().state === 'ready',
      'everything ready',
      20_000,
    );
    const snapshot = daemon.registry.get('everything')!.snapshot();
    client = new Client(
      { name: 'everything-test', version: '1' },
      { capabilities: { elicitation: {}, sampling: {}, roots: {} } },
    );
    await client.connect(
      new StreamableHTTPClientTransport(new URL(daemon.url), {
        requestInit: { headers: authHeaders(daemon.url) },
      }),
    );

    // Everything it lists upstream is listed downstream, under the bridge's names.
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      snapshot.tools.map((t) => `everything__${t.name}`).sort(),
    );
    expect(tools.length).toBeGreaterThan(5);
    const { prompts } = await client.listPrompts();
    expect(prompts.length).toBe(snapshot.prompts?.length);
    expect(prompts.length).toBeGreaterThan(0);
    const { resources } = await client.listResources();
    expect(resources.length).toBe(snapshot.resources?.length);
    expect(resources.length).toBeGreaterThan(0);

    // And usable: a tool, a prompt and a resource.
    // Every tool, with arguments it accepts; the ones that ask the client are answered by it. Not
    // simulate-research-query: it requires task augmentation (tasks), which the bridge does not
    // offer. gzip-file-as-resource gets a data: URL (no network here).
    client.setRequestHandler('roots/list', async () => ({ roots: [{ uri: 'file:///work', name: 'work' }] }));
    client.setRequestHandler('elicitation/create', async () => ({
      action: 'accept',
      content: {
        name: 'Ada',
        check: true,
        firstLine: 'x',
        email: 'ada@example.com',
        homepage: 'https://example.com',
        birthdate: '2000-01-01',
        integer: 1,
        number: 1,
        untitledSingleSelectEnum: 'option1',
      },
    }));
    client.setRequestHandler('sampling/createMessage', async () => ({
      role: 'assistant',
      content: { type: 'text', text: 'sampled through the bridge' },
      model: 'test-model',
      stopReason: 'endTurn',
    }));
    const calls: Record<string, Record<string, unknown>> = {
      echo: { message: 'through the bridge' },
      'get-annotated-message': { messageType: 'success', includeImage: true },
      'get-env': {},
      'get-resource-links': { count: 2 },
      'get-resource-reference': { resourceType: 'Text', resourceId: 1 },
      'get-structured-content': { location: 'Chicago' },
      'get-sum': { a: 2, b: 3 },
      'get-tiny-image': {},
      'toggle-simulated-logging': {},
      'toggle-subscriber-updates': {},
      'trigger-long-running-operation': { duration: 0.2, steps: 2 },
      'get-roots-list': {},
      'trigger-elicitation-request': {},
      'trigger-sampling-request': { prompt: 'hi', maxTokens: 5 },
      'gzip-file-as-resource': {
        name: 'hello.txt.gz',
        data: 'data:text/plain;base64,aGVsbG8=',
        outputType: 'resourceLink',
      },
    };
    const results: Record<string, string> = {};
    for (const [name, args] of Object.entries(calls)) {
      const result = await client.callTool({ name: `everything__${name}`, arguments: args });
      expect(result.isError, `${name}: ${JSON.stringify(result.content)}`).toBeFalsy();
      results[name] = JSON.stringify(result);
    }
    expect(results.echo).toContain('through the bridge');
    expect(results['get-sum']).toContain('5');
    expect(results['get-tiny-image']).toContain('"type":"image"');
    expect(results['get-structured-content']).toContain('structuredContent');
    expect(results['get-resource-links']).toContain('"type":"resource_link"');
    expect(results['get-roots-list']).toContain('file:///work');
    expect(results['trigger-elicitation-request']).toContain('Ada');
    expect(results['trigger-sampling-request']).toContain('sampled through the bridge');
    // The two toggles again, so the server stops its timers.
    await client.callTool({ name: 'everything__toggle-simulated-logging', arguments: {} });
    await client.callTool({ name: 'everything__toggle-subscriber-updates', arguments: {} });

    const promptArgs: Record<string, Record<string, string>> = {
      'simple-prompt': {},
      'args-prompt': { city: 'Paris' },
      'completable-prompt': { department: 'Engineering', name: 'Alice' },
      'resource-prompt': { resourceType: 'Text', resourceId: '1' },
    };
    for (const prompt of prompts) {
      const original = prompt.name.replace(/^everything__/, '');
      const got = await client.getPrompt({ name: prompt.name, arguments: promptArgs[original] ?? {} });
      expect(got.messages.length, original).toBeGreaterThan(0);
    }
    const completion = await client.complete({
      ref: { type: 'ref/prompt', name: 'everything__completable-prompt' },
      argument: { name: 'department', value: 'Eng' },
    });
    expect(completion.completion.values).toContain('Engineering');
    for (const resource of resources) {
      const read = await client.readResource({ uri: resource.uri });
      expect(read.contents.length).toBeGreaterThan(0);
    }
    const templated = await client.readResource({ uri: 'demo://resource/dynamic/text/7' });
    expect(JSON.stringify(templated.contents)).toContain('7');

    // A 2026-07-28 client answers the same requests through input_required rounds.
    const modern = new Client(
      { name: 'everything-modern', version: '1' },
      {
        capabilities: { elicitation: {}, sampling: {}, roots: {} },
        versionNegotiation: { mode: { pin: '2026-07-28' } },
      },
    );
    modern.setRequestHandler('elicitation/create', async () => ({
      action: 'accept',
      content: { name: 'Grace' },
    }));
    modern.setRequestHandler('sampling/createMessage', async () => ({
      role: 'assistant',
      content: { type: 'text', text: 'sampled in rounds' },
      model: 'test-model',
      stopReason: 'endTurn',
    }));
    await modern.connect(
      new StreamableHTTPClientTransport(new URL(daemon.url), {
        requestInit: { headers: authHeaders(daemon.url) },
      }),
    );
    try {
      const elicited = await modern.callTool({
        name: 'everything__trigger-elicitation-request',
        arguments: {},
      });
      expect(JSON.stringify(elicited)).toContain('Grace');
      const sampled = await modern.callTool({
        name: 'everything__trigger-sampling-request',
        arguments: { prompt: 'hi', maxTokens: 5 },
      });
      expect(JSON.stringify(sampled)).toContain('sampled in rounds');
    } finally {
      await modern.close();
    }
  });
});
