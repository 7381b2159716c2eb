import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { authHeaders } from '../helpers/access.js';
import { connectClient, makeTempDir } from '../helpers/bridge.js';
import { cliEnv, type RunningBridge, runCli, startCli } from '../helpers/cli.js';
import { FAKE_SERVER, FAKE_TOOL_COUNT, fakeServerEntry } from '../helpers/fake-server.js';
import { isAlive, waitFor } from '../helpers/wait.js';

describe('the mcp-bridge command', () => {
  const cleanups: (() => void)[] = [];
  let bridge: RunningBridge | undefined;

  afterEach(async () => {
    await bridge?.stop('SIGKILL');
    bridge = undefined;
    for (const c of cleanups.splice(0)) c();
  });

  function tempDir(): string {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    return temp.dir;
  }

  function writeConfig(dir: string, config: unknown): string {
    const configDir = join(dir, 'config');
    mkdirSync(configDir, { recursive: true });
    const file = join(configDir, 'config.json');
    writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
    return file;
  }

  it('prints help for every command', async () => {
    const dir = tempDir();
    for (const args of [['--help'], ['start', '--help'], ['status', '--help'], ['help', 'start']]) {
      const result = await runCli(args, cliEnv(dir));
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/Usage: mcp-bridge/);
    }
    const unknown = await runCli(['frobnicate'], cliEnv(dir));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    const badFlag = await runCli(['start', '--nope'], cliEnv(dir));
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain("Unknown option '--nope'");
  });

  it('fails with exit code 2 and names the file and key for a config error, without a stack trace', async () => {
    const dir = tempDir();
    const cases: [unknown, RegExp][] = [
      ['{"mcpServers": {', /is not valid JSON/],
      [{ mcpServers: { fs: { comand: 'npx' } } }, /unknown key "comand".*\n?.*mcpServers\.fs/s],
      [
        { mcpServers: { fs: { command: 'npx', args: 'not-a-list' } } },
        /expected array, received string[\s\S]*mcpServers\.fs\.args/,
      ],
      [
        { mcpServers: { 'bad name!': { command: 'x' } } },
        /upstream name must be[\s\S]*mcpServers\["bad name!"\]/,
      ],
      [{ port: 'eighty' }, /expected number[\s\S]*port/],
      [
        { mcpServers: { fs: { command: 'x', env: { T: '${env:MCP_BRIDGE_TEST_UNSET}' } } } },
        /mcpServers\.fs\.env\.T refers to \$\{env:MCP_BRIDGE_TEST_UNSET\}/,
      ],
    ];
    for (const [config, pattern] of cases) {
      const file = writeConfig(dir, config);
      const result = await runCli(['start'], cliEnv(dir));
      expect(result.code, JSON.stringify(config)).toBe(2);
      expect(result.stderr).toContain(file);
      expect(result.stderr).toMatch(pattern);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
    const missing = await runCli(['start', '--config', join(dir, 'nope.json')], cliEnv(dir));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`config file ${join(dir, 'nope.json')} does not exist`);
  });

  it('starts with no config file, creates the config dir with an example, and answers MCP requests', async () => {
    const dir = tempDir();
    bridge = await startCli(cliEnv(dir));
    expect(bridge.stderr()).toContain(`no config file at ${join(dir, 'config', 'config.json')}`);
    expect(existsSync(join(dir, 'config', 'config.example.json'))).toBe(true);
    expect(statSync(join(dir, 'config')).mode & 0o777).toBe(0o700);
    const client = await connectClient(bridge.url);
    const { tools } = await client.listTools();
    expect(tools).toEqual([]);
    await client.close();
    expect(await bridge.stop('SIGTERM')).toBe(0);
    expect(existsSync(join(dir, 'config', 'tools-cache.json'))).toBe(false);
  });

  it('runs the upstreams of --config and MCP_BRIDGE_SENTINEL_COMMAND, expanding ${env:X}', async () => {
    const dir = tempDir();
    const file = join(dir, 'elsewhere.json');
    writeFileSync(
      file,
      JSON.stringify({
        mcpServers: {
          fake: { ...fakeServerEntry({ API_TOKEN: 'supersecret-123' }), args: ['${env:FAKE_PATH}'] },
        },
      }),
    );
    bridge = await startCli(
      cliEnv(dir, {
        FAKE_PATH: FAKE_SERVER,
        MCP_BRIDGE_SENTINEL_COMMAND: process.execPath,
        MCP_BRIDGE_SENTINEL_ARGS: FAKE_SERVER,
      }),
      ['--config', file],
    );
    const client = await connectClient(bridge.url);
    await waitFor(
      async () => (await client.listTools()).tools.length === 2 * FAKE_TOOL_COUNT,
      'both upstreams listed',
    );
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('fake__echo');
    expect(names).toContain('sentinel__echo');
    const result = await client.callTool({ name: 'sentinel__echo', arguments: { text: 'hello' } });
    expect(result.content).toEqual([{ type: 'text', text: 'hello' }]);
    await client.close();
    expect(await bridge.stop()).toBe(0);
    bridge = undefined;
    const logDir = join(dir, 'logs');
    const log = readdirSync(logDir)
      .map((f) => readFileSync(join(logDir, f), 'utf8'))
      .join('');
    expect(log).toContain('starting upstream');
    expect(log).toContain('"API_TOKEN":"[redacted]"');
    expect(log).not.toContain('supersecret-123');
  });

  it('stops every child and grandchild on SIGTERM and SIGINT, exiting 0', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const dir = tempDir();
      const pidFile = join(dir, 'child.pid');
      const grandchildFile = join(dir, 'grandchild.pid');
      writeConfig(dir, {
        mcpServers: {
          kid: fakeServerEntry({
            FAKE_PIDFILE: pidFile,
            FAKE_GRANDCHILD_PIDFILE: grandchildFile,
            FAKE_IGNORE_SIGTERM: '1',
          }),
          other: fakeServerEntry(),
        },
      });
      bridge = await startCli(cliEnv(dir));
      await waitFor(
        () => existsSync(grandchildFile) && readFileSync(grandchildFile, 'utf8') !== '',
        'grandchild pid',
      );
      const child = Number(readFileSync(pidFile, 'utf8'));
      const grandchild = Number(readFileSync(grandchildFile, 'utf8'));
      expect(isAlive(child) && isAlive(grandchild)).toBe(true);
      expect(await bridge.stop(signal)).toBe(0);
      bridge = undefined;
      expect(isAlive(child)).toBe(false);
      expect(isAlive(grandchild)).toBe(false);
    }
  });

  it('answers tools/list from the cache at once after a restart while the upstream hangs', async () => {
    const dir = tempDir();
    writeConfig(dir, { mcpServers: { slowpoke: fakeServerEntry() } });
    bridge = await startCli(cliEnv(dir));
    await waitFor(() => existsSync(join(dir, 'config', 'tools-cache.json')), 'the cache file');
    expect(await bridge.stop()).toBe(0);
    const cache = JSON.parse(readFileSync(join(dir, 'config', 'tools-cache.json'), 'utf8'));
    expect(cache.upstreams.slowpoke.tools).toHaveLength(FAKE_TOOL_COUNT);

    writeConfig(dir, { mcpServers: { slowpoke: fakeServerEntry({ FAKE_HANG: '1' }) } });
    bridge = await startCli(cliEnv(dir));
    const client = await connectClient(bridge.url);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('slowpoke__echo');
    const status = await (
      await fetch(bridge.url.replace(/\/mcp$/, '/status'), { headers: authHeaders(bridge.url) })
    ).json();
    expect(status.upstreams[0]).toMatchObject({ name: 'slowpoke', state: 'starting', toolsSource: 'cache' });
    await client.close();
  });

  it('refuses to start on a port that is taken, naming it (exit 1)', async () => {
    const dir = tempDir();
    bridge = await startCli(cliEnv(dir));
    // Another config dir: the same one is refused before the port is tried (DAEMON_ALREADY_RUNNING).
    const second = await runCli(['start'], cliEnv(tempDir(), { MCP_BRIDGE_PORT: String(bridge.port) }));
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`port ${bridge.port} on 127.0.0.1 is already in use`);
  });

  it('shows the daemon state with `mcp-bridge status`', async () => {
    const dir = tempDir();
    writeConfig(dir, { mcpServers: { fake: fakeServerEntry() } });
    bridge = await startCli(cliEnv(dir));
    const env = cliEnv(dir, { MCP_BRIDGE_PORT: String(bridge.port) });
    await waitFor(async () => (await runCli(['status'], env)).stdout.includes('ready'), 'status shows ready');
    const result = await runCli(['status'], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`fake\\s+ready\\s+${FAKE_TOOL_COUNT} tool\\(s\\)`));
    expect(result.stdout).toMatch(/, MCP 2025-\d\d-\d\d,/);
    await bridge.stop();
    bridge = undefined;
    const down = await runCli(['status'], env);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('no mcp-bridge daemon answers');
  });
});
