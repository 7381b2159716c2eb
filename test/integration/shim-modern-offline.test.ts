import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { afterEach, describe, expect, it } from 'vitest';
import type { Status } from '../../src/server/status.js';
import { authHeaders } from '../helpers/access.js';
import { makeTempDir, writeConfigDir } from '../helpers/bridge.js';
import { BIN, cliEnv, freePort, startCli } from '../helpers/cli.js';
import { fakeServerEntry } from '../helpers/fake-server.js';
import { rawShim as spawnRawShim } from '../helpers/raw-shim.js';
import { waitFor } from '../helpers/wait.js';

const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'modern', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
const discover = (id: number) => ({
  jsonrpc: '2.0',
  id,
  method: 'server/discover',
  params: { _meta: ENVELOPE },
});

/** A 2026-07-28 client connects with server/discover: answered from the served cache, as initialize is. */
describe('the stdio shim with a 2026-07-28 client while the daemon is not up', () => {
  const closers: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** A config dir whose daemon ran once (so served-cache.json holds its surface); `live` asks it. */
  async function servedOnce(live: (port: number, configDir: string) => Promise<void> = async () => {}) {
    const temp = makeTempDir();
    closers.push(temp.cleanup);
    const configDir = writeConfigDir(temp.dir, { fake: fakeServerEntry() });
    const port = await freePort();
    const bridge = await startCli(cliEnv(temp.dir, { MCP_BRIDGE_PORT: String(port) }));
    const file = join(configDir, 'served-cache.json');
    await waitFor(
      () => existsSync(file) && readFileSync(file, 'utf8').includes('"fake__echo"'),
      'the served cache',
    );
    await live(port, configDir);
    await bridge.stop('SIGTERM');
    /** Starts the daemon again; `ready`: waits until its upstream serves. */
    const restart = async (ready = false) => {
      const again = await startCli(cliEnv(temp.dir, { MCP_BRIDGE_PORT: String(port) }));
      closers.push(() => again.stop('SIGKILL'));
      if (!ready) return;
      await waitFor(async () => {
        const status = (await (
          await fetch(`http://127.0.0.1:${port}/status`, { headers: authHeaders(`http://127.0.0.1:${port}`) })
        ).json()) as Status;
        return status.upstreams.every((u) => u.state === 'ready');
      }, 'upstreams ready');
    };
    return { configDir, port, restart };
  }

  const shimEnv = (configDir: string) => ({ PATH: process.env.PATH ?? '', MCP_BRIDGE_CONFIG_DIR: configDir });

  it('answers server/discover from the cache exactly as the daemon did, and forwards once it is up', async () => {
    let served: Record<string, unknown> | undefined;
    const { configDir, port, restart } = await servedOnce(async (livePort, dir) => {
      const shim = spawnRawShim(['--url', `http://127.0.0.1:${livePort}/mcp`], shimEnv(dir), closers);
      shim.send(discover(1));
      served = (await shim.reply(1)).result as Record<string, unknown>;
    });
    expect(served).toHaveProperty('supportedVersions', ['2026-07-28']);

    const shim = spawnRawShim(
      ['--url', `http://127.0.0.1:${port}/mcp`, '--wait', '30'],
      shimEnv(configDir),
      closers,
    );
    shim.send(discover(1));
    // No daemon exists now, and --wait is 30 s: an answer this soon can only come from the cache.
    expect((await shim.reply(1, 5000)).result).toEqual(served);
    expect(shim.stderr()).toContain('answered server/discover from its served cache');

    shim.send({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: ENVELOPE } });
    await restart();
    // Held until the daemon listens, then forwarded (its upstream may still be connecting).
    expect(await shim.reply(2)).toHaveProperty('result.tools');
  });

  it('lets an SDK client pinned to 2026-07-28 connect with no daemon, then call once it is up', async () => {
    const { configDir, port, restart } = await servedOnce();
    const client = new Client(
      { name: 'modern-stdio', version: '1' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'stdio', '--url', `http://127.0.0.1:${port}/mcp`, '--wait', '30'],
      env: shimEnv(configDir),
      stderr: 'pipe',
    });
    // Registered first: without the cached answer, connect never resolves.
    closers.push(() => transport.close());
    const started = Date.now();
    await client.connect(transport);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    expect(client.getServerVersion()).toMatchObject({ name: 'mcp-bridge' });

    await restart(true);
    const echo = await client.callTool({ name: 'fake__echo', arguments: { text: 'hi' } });
    expect(echo.content).toEqual([{ type: 'text', text: 'hi' }]);
  });
});
