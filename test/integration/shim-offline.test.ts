import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Status } from '../../src/server/status.js';
import { authHeaders, rememberTokenFile } from '../helpers/access.js';
import { makeTempDir } from '../helpers/bridge.js';
import { cliEnv, freePort, startCli } from '../helpers/cli.js';
import { fakeServerEntry } from '../helpers/fake-server.js';
import { rawShim as spawnRawShim } from '../helpers/raw-shim.js';
import { stopProcess, waitFor } from '../helpers/wait.js';

/** Issue 13: Claude Desktop is answered at once, from the daemon's served cache, while it starts. */
describe('the stdio shim while the daemon is not up', () => {
  const closers: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** A config dir whose daemon ran once (so served-cache.json holds its surface), then stopped. */
  async function servedOnce(): Promise<{ dir: string; config: string; configDir: string; port: number }> {
    const temp = makeTempDir();
    closers.push(temp.cleanup);
    const configDir = join(temp.dir, 'config');
    mkdirSync(configDir, { recursive: true });
    const config = join(configDir, 'config.json');
    writeFileSync(config, JSON.stringify({ mcpServers: { fake: fakeServerEntry() }, pingIntervalMs: 0 }));
    const port = await freePort();
    const bridge = await startCli(cliEnv(temp.dir, { MCP_BRIDGE_PORT: String(port) }));
    const file = join(configDir, 'served-cache.json');
    await waitFor(
      () => existsSync(file) && readFileSync(file, 'utf8').includes('"fake__echo"'),
      'the served cache',
    );
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await bridge.stop('SIGTERM');
    return { dir: temp.dir, config, configDir, port };
  }

  const rawShim = (args: string[], env: NodeJS.ProcessEnv) => spawnRawShim(args, env, closers);

  const initialize = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'claude', version: '1' } },
  };
  const echo = {
    jsonrpc: '2.0',
    id: 3,
    method: 'tools/call',
    params: { name: 'fake__echo', arguments: { text: 'hi' } },
  };

  it('answers initialize and tools/list from the cache with no daemon, and runs a call once the daemon is up', async () => {
    const { dir, configDir, port } = await servedOnce();
    const shim = rawShim(['--url', `http://127.0.0.1:${port}/mcp`, '--wait', '30'], {
      PATH: process.env.PATH ?? '',
      MCP_BRIDGE_CONFIG_DIR: configDir,
    });
    shim.send(initialize);
    // No daemon exists at this point: these answers can only come from the cache.
    expect(await shim.reply(1)).toMatchObject({
      result: {
        protocolVersion: '2025-06-18',
        serverInfo: { name: 'mcp-bridge' },
        capabilities: { tools: {} },
      },
    });
    shim.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    shim.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
    const list = (await shim.reply(2)) as { result: { tools: { name: string }[] } };
    expect(list.result.tools.map((t) => t.name)).toContain('fake__echo');
    shim.send(echo);
    expect(shim.lines.some((l) => (JSON.parse(l) as { id?: number }).id === 3)).toBe(false);

    const bridge = await startCli(cliEnv(dir, { MCP_BRIDGE_PORT: String(port) }));
    closers.push(() => bridge.stop('SIGKILL'));
    expect(await shim.reply(3)).toMatchObject({ result: { content: [{ type: 'text', text: 'hi' }] } });
  });

  it('with --start-daemon, starts the daemon and the first call succeeds', async () => {
    const { dir, config, configDir, port } = await servedOnce();
    const env = { ...cliEnv(dir, { MCP_BRIDGE_PORT: String(port) }), MCP_BRIDGE_CONFIG: config };
    const shim = rawShim(['--start-daemon', '--config', config], env);
    shim.send(initialize);
    expect(await shim.reply(1)).toHaveProperty('result.serverInfo.name', 'mcp-bridge');
    shim.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    shim.send(echo);
    expect(await shim.reply(3)).toMatchObject({ result: { content: [{ type: 'text', text: 'hi' }] } });
    rememberTokenFile(`http://127.0.0.1:${port}`, configDir);
    const status = (await (
      await fetch(`http://127.0.0.1:${port}/status`, { headers: authHeaders(`http://127.0.0.1:${port}`) })
    ).json()) as Status;
    closers.push(() => stopProcess(status.pid));
    expect(status.pid).not.toBe(shim.child.pid);
  });

  it('treats a corrupt cache as none: initialize gets the old "not reachable" error, naming mcp-bridge doctor', async () => {
    const temp = makeTempDir();
    closers.push(temp.cleanup);
    const configDir = join(temp.dir, 'config');
    mkdirSync(configDir, { recursive: true });
    writeFileSync(join(configDir, 'served-cache.json'), '{"version":1,"tools":[{"secret-ish text');
    const port = await freePort();
    const shim = rawShim(['--url', `http://127.0.0.1:${port}/mcp`, '--wait', '0.5'], {
      PATH: process.env.PATH ?? '',
      MCP_BRIDGE_CONFIG_DIR: configDir,
    });
    shim.send(initialize);
    const answer = (await shim.reply(1)) as { error?: { message: string } };
    expect(answer.error?.message).toContain('mcp-bridge doctor');
    expect(shim.stderr()).not.toContain('secret-ish');
  });
});
