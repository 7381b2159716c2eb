import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon.js';
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
    client = new Client({ name: 'everything-test', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(daemon.url)));

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
    const echo = await client.callTool({
      name: 'everything__echo',
      arguments: { message: 'through the bridge' },
    });
    expect(JSON.stringify(echo.content)).toContain('through the bridge');
    const prompt = await client.getPrompt({ name: prompts[0]!.name, arguments: {} }).catch((e: Error) => e);
    // Prompts with required arguments may refuse an empty call; either way the upstream answered.
    expect(prompt instanceof Error ? prompt.message : JSON.stringify(prompt)).not.toMatch(/unknown prompt/);
    for (const resource of resources) {
      const read = await client.readResource({ uri: resource.uri });
      expect(read.contents.length).toBeGreaterThan(0);
    }
  });
});
