import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { afterEach, describe, expect, it } from 'vitest';
import type { Status } from '../../src/server/status.js';
import { authHeaders, rememberTokenFile } from '../helpers/access.js';
import { makeTempDir } from '../helpers/bridge.js';
import { BIN, cliEnv, freePort, type RunningBridge, startCli } from '../helpers/cli.js';
import { fakeServerEntry } from '../helpers/fake-server.js';
import { rawShim as spawnRawShim } from '../helpers/raw-shim.js';
import { stopProcess, waitFor } from '../helpers/wait.js';

describe('the stdio shim (mcp-bridge stdio)', () => {
  const closers: (() => Promise<unknown> | unknown)[] = [];

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  // The config dir of the last setup(): shims read the daemon's access token from it.
  let configDir = '';

  function setup(env: Record<string, string> = {}): { dir: string; config: string } {
    const temp = makeTempDir();
    configDir = join(temp.dir, 'config');
    closers.push(temp.cleanup);
    mkdirSync(join(temp.dir, 'config'), { recursive: true });
    const config = join(temp.dir, 'config', 'config.json');
    writeFileSync(config, JSON.stringify({ mcpServers: { fake: fakeServerEntry(env) }, pingIntervalMs: 0 }));
    return { dir: temp.dir, config };
  }

  async function daemon(dir: string, port: number): Promise<RunningBridge> {
    const bridge = await startCli(cliEnv(dir, { MCP_BRIDGE_PORT: String(port) }));
    closers.push(() => bridge.stop('SIGKILL'));
    await waitFor(async () => {
      const status = (await (
        await fetch(`http://127.0.0.1:${port}/status`, { headers: authHeaders(`http://127.0.0.1:${port}`) })
      ).json()) as Status;
      return status.upstreams.every((u) => u.state === 'ready');
    }, 'upstreams ready');
    return bridge;
  }

  /** Claude Desktop's view: the SDK stdio client spawning the shim. */
  async function shimClient(port: number, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Client> {
    const client = new Client(
      { name: 'claude-desktop-like', version: '1.0.0' },
      { capabilities: { elicitation: {}, sampling: {} } },
    );
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [BIN, 'stdio', '--url', `http://127.0.0.1:${port}/mcp`, ...args],
        env: { PATH: process.env.PATH ?? '', MCP_BRIDGE_CONFIG_DIR: configDir, ...env },
        stderr: 'pipe',
      }),
    );
    closers.push(() => client.close());
    return client;
  }

  /** The shim driven with raw JSON lines, to see exactly what it writes to stdout. */
  function rawShim(
    args: string[],
    env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '', MCP_BRIDGE_CONFIG_DIR: configDir },
  ) {
    return spawnRawShim(args, env, closers);
  }

  const initialize = (id = 1) => ({
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });

  it('lists and calls tools, with progress, and writes nothing but JSON-RPC lines to stdout', async () => {
    const { dir } = setup();
    const port = await freePort();
    await daemon(dir, port);
    const client = await shimClient(port);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('fake__echo');
    const echo = await client.callTool({ name: 'fake__echo', arguments: { text: 'hi' } });
    expect(echo.content).toEqual([{ type: 'text', text: 'hi' }]);

    const raw = rawShim(['--url', `http://127.0.0.1:${port}/mcp`]);
    raw.send(initialize());
    await raw.reply(1);
    raw.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    raw.send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'fake__echo', arguments: { text: 'x' } },
    });
    expect(await raw.reply(2)).toMatchObject({ result: { content: [{ type: 'text', text: 'x' }] } });
    // Progress, in order and before the answer (checked on the raw lines: SDK clients may drop a
    // notification that arrives in the same read as the response).
    raw.send({
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: { name: 'fake__slow', arguments: { ms: 80 }, _meta: { progressToken: 'p' } },
    });
    await raw.reply(3);
    const forCall = raw.lines
      .map((l) => JSON.parse(l) as { id?: number; method?: string; params?: { progress?: number } })
      .filter((m) => m.id === 3 || m.method === 'notifications/progress');
    expect(forCall.map((m) => m.params?.progress ?? 'result')).toEqual([1, 2, 3, 4, 'result']);
    raw.child.stdin!.end();
    const [code] = (await once(raw.child, 'exit')) as [number];
    expect(code).toBe(0);
    for (const line of raw.lines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: '2.0' });
  });

  it('passes elicitation and sampling requests of an upstream to the client and the answers back, and relays log messages', async () => {
    const { dir } = setup();
    const port = await freePort();
    await daemon(dir, port);
    const client = await shimClient(port);
    const asked: string[] = [];
    client.setRequestHandler('elicitation/create', async (request) => {
      asked.push(String(request.params.message));
      return { action: 'accept', content: { name: 'Ada' } };
    });
    const logs: unknown[] = [];
    client.setNotificationHandler('notifications/message', (notification) => {
      logs.push(notification.params);
    });

    const answer = await client.callTool({ name: 'fake__ask', arguments: {} });
    expect(asked).toEqual(['What is your name?']);
    expect(JSON.parse((answer.content as { text: string }[])[0]!.text)).toEqual({
      action: 'accept',
      content: { name: 'Ada' },
    });

    client.setRequestHandler('sampling/createMessage', async () => ({
      role: 'assistant',
      content: { type: 'text', text: 'hi from the model' },
      model: 'test-model',
    }));
    const sampled = await client.callTool({ name: 'fake__sample', arguments: {} });
    expect(JSON.parse((sampled.content as { text: string }[])[0]!.text)).toMatchObject({
      model: 'test-model',
      content: { text: 'hi from the model' },
    });

    await client.callTool({ name: 'fake__log', arguments: { text: 'hi there' } });
    await waitFor(() => logs.length > 0, 'the log message');
    expect(logs[0]).toMatchObject({ level: 'info', logger: 'fake/fixture', data: { text: 'hi there' } });
  });

  it('delivers notifications the daemon sends outside any call (tools/list_changed) over its event stream', async () => {
    const { dir } = setup({ FAKE_CHANGE_TOOLS_AFTER_MS: '3000' });
    const port = await freePort();
    await daemon(dir, port);
    const client = await shimClient(port);
    let changed = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => {
      changed++;
    });
    await waitFor(() => changed > 0, 'tools/list_changed from the daemon');
    await waitFor(
      async () => (await client.listTools()).tools.some((t) => t.name === 'fake__late'),
      'the new tool',
    );
  });

  it('hides a daemon restart: the next list and call work, and a call in flight gets a "restarted" error', async () => {
    const { dir } = setup();
    const port = await freePort();
    const first = await daemon(dir, port);
    const client = await shimClient(port);
    await client.listTools();
    let listChanged = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => {
      listChanged++;
    });

    const inFlight = client.callTool({ name: 'fake__slow', arguments: { ms: 4000 } }).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 300));
    first.child.kill('SIGKILL');
    const interrupted = await inFlight;
    expect(interrupted).toBeInstanceOf(Error);
    expect((interrupted as Error).message).toContain('restarted during tools/call');
    expect((interrupted as Error & { data?: unknown }).data).toEqual({ code: 'DAEMON_RESTARTED' });

    await daemon(dir, port);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('fake__echo');
    const echo = await client.callTool({ name: 'fake__echo', arguments: { text: 'after' } });
    expect(echo.content).toEqual([{ type: 'text', text: 'after' }]);
    await waitFor(() => listChanged > 0, 'tools/list_changed after the reconnect');
  });

  it('fails with a clear error when the daemon stays away longer than --wait', async () => {
    const { dir } = setup();
    const port = await freePort();
    const bridge = await daemon(dir, port);
    const client = await shimClient(port, ['--wait', '1']);
    await client.listTools();
    await bridge.stop('SIGKILL');
    const error = await client.listTools().catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/daemon is not reachable at .*npm start/);
  });

  it('answers initialize with how to start the daemon when none is running', async () => {
    const port = await freePort();
    const raw = rawShim(['--url', `http://127.0.0.1:${port}/mcp`, '--wait', '0.5']);
    raw.send(initialize());
    const answer = (await raw.reply(1)) as { error?: { code: number; message: string; data?: unknown } };
    expect(answer.error?.message).toContain('npm start');
    expect(answer.error?.message).toContain('--start-daemon');
    expect(answer.error?.code).toBe(-32003);
    expect(answer.error?.data).toEqual({ code: 'DAEMON_UNREACHABLE' });
  });

  it('answers a line that is not JSON with a parse error for id null, from the error registry', async () => {
    const port = await freePort();
    const raw = rawShim(['--url', `http://127.0.0.1:${port}/mcp`, '--wait', '0.5']);
    raw.child.stdin!.write('{not json\n');
    const answer = await waitFor(() => raw.lines[0], 'the parse error');
    expect(JSON.parse(answer)).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32700, message: 'Parse error: the line is not JSON', data: { code: 'LINE_NOT_JSON' } },
    });
  });

  it('reports a version mismatch between the shim and the daemon on stderr', async () => {
    // A stand-in daemon of another version: enough HTTP to answer initialize and /healthz.
    const other = createHttpServer((req, res) => {
      if (req.url?.startsWith('/healthz')) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ok: true, version: '0.0.0-other' }));
        return;
      }
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        const message = body ? (JSON.parse(body) as { id?: number }) : {};
        if (message.id === undefined) {
          res.statusCode = 202;
          res.end();
          return;
        }
        res.setHeader('content-type', 'application/json');
        res.setHeader('mcp-session-id', 's1');
        res.end(
          JSON.stringify({
            jsonrpc: '2.0',
            id: message.id,
            result: {
              protocolVersion: '2025-06-18',
              capabilities: {},
              serverInfo: { name: 'other', version: '0' },
            },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => other.close(resolve)));
    const { port } = other.address() as { port: number };
    const raw = rawShim(['--url', `http://127.0.0.1:${port}/mcp`]);
    raw.send(initialize());
    await raw.reply(1);
    await waitFor(() => raw.stderr().includes('version mismatch'), 'the mismatch report');
    expect(raw.stderr()).toMatch(/this shim is mcp-bridge \S+, the daemon is 0\.0\.0-other/);
  });

  it('with --start-daemon, several shims started at once leave exactly one daemon', async () => {
    const { dir, config } = setup();
    const port = await freePort();
    const env = { ...cliEnv(dir, { MCP_BRIDGE_PORT: String(port) }), MCP_BRIDGE_CONFIG: config };
    const shims = Array.from({ length: 3 }, () => rawShim(['--start-daemon', '--config', config], env));
    for (const shim of shims) shim.send(initialize());
    for (const shim of shims) expect(await shim.reply(1)).toHaveProperty('result');
    rememberTokenFile(`http://127.0.0.1:${port}`, configDir);
    const status = (await (
      await fetch(`http://127.0.0.1:${port}/status`, { headers: authHeaders(`http://127.0.0.1:${port}`) })
    ).json()) as Status;
    closers.push(() => stopProcess(status.pid));
    await waitFor(() => daemonsFor(config).length === 1, 'the losing daemons to exit', 15_000);
    expect(daemonsFor(config)).toEqual([status.pid]);
  });

  it('lets the client cancel a call: no "restarted" error, no new session, the next call works', async () => {
    const { dir } = setup();
    const port = await freePort();
    await daemon(dir, port);
    const raw = rawShim(['--url', `http://127.0.0.1:${port}/mcp`]);
    raw.send(initialize());
    await raw.reply(1);
    raw.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    raw.send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'fake__slow', arguments: { ms: 3000 } },
    });
    raw.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2, reason: 'user' } });
    raw.send({
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: { name: 'fake__echo', arguments: { text: 'after' } },
    });
    expect(await raw.reply(3)).toHaveProperty('result');
    // The cancelled call is never answered (the client gave up on it) and nothing reconnected. The
    // daemon ends the cancelled call's stream within milliseconds; this settles that, not a race.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(raw.lines.map((l) => JSON.parse(l) as { id?: number }).filter((m) => m.id === 2)).toEqual([]);
    expect(raw.stderr()).not.toContain('reconnecting');
    expect(raw.lines.join('\n')).not.toContain('list_changed');
  });

  it('answers calls already sent, then ends its session (DELETE) and exits 0 when stdin closes', async () => {
    const { dir } = setup();
    const port = await freePort();
    await daemon(dir, port);
    const raw = rawShim(['--url', `http://127.0.0.1:${port}/mcp`]);
    raw.send(initialize());
    await raw.reply(1);
    const sessions = async () =>
      (
        (await (
          await fetch(`http://127.0.0.1:${port}/status`, { headers: authHeaders(`http://127.0.0.1:${port}`) })
        ).json()) as Status
      ).sessions;
    expect(await sessions()).toBe(1);
    // A call still running when stdin ends is answered before the session goes.
    raw.send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'fake__slow', arguments: { ms: 400 } },
    });
    raw.child.stdin!.end();
    const [code] = (await once(raw.child, 'exit')) as [number];
    expect(code).toBe(0);
    expect(await raw.reply(2)).toMatchObject({ result: { content: [{ type: 'text', text: 'slept 400' }] } });
    expect(await sessions()).toBe(0);
  });
});

/** Pids of `mcp-bridge start --config <config>` processes. */
function daemonsFor(config: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => line.includes(' start ') && line.includes(config))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}
