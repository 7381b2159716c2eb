import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import type { Status } from '../../src/server/status.js';
import { authHeaders } from '../helpers/access.js';
import { makeTempDir } from '../helpers/bridge.js';
import { BIN, cliEnv, freePort, type RunningBridge, runCli, startCli } from '../helpers/cli.js';
import { type ResourceServer, startResourceServer } from '../helpers/mcp-resource-server.js';
import { type AuthServer, completeConsent, startAuthServer } from '../helpers/oauth-server.js';
import { loginThroughDaemon } from '../helpers/remote.js';
import { waitFor } from '../helpers/wait.js';

describe('OAuth through the real CLI', () => {
  const closers: (() => Promise<unknown> | unknown)[] = [];

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function setup(ttl = 3600): Promise<{ as: AuthServer; rs: ResourceServer; dir: string }> {
    const as = await startAuthServer({ accessTokenTtlSec: ttl });
    closers.push(() => as.close());
    const rs = await startResourceServer({ auth: as });
    closers.push(() => rs.close());
    const temp = makeTempDir();
    closers.push(temp.cleanup);
    mkdirSync(join(temp.dir, 'config'), { recursive: true });
    writeFileSync(
      join(temp.dir, 'config', 'config.json'),
      JSON.stringify({ mcpServers: { notes: { url: rs.url } } }),
    );
    return { as, rs, dir: temp.dir };
  }

  async function daemon(dir: string, port = 0): Promise<RunningBridge> {
    const bridge = await startCli(cliEnv(dir, { MCP_BRIDGE_PORT: String(port) }));
    closers.push(() => bridge.stop('SIGKILL'));
    return bridge;
  }

  async function upstreamState(bridge: RunningBridge): Promise<string | undefined> {
    const status = (await (
      await fetch(`http://127.0.0.1:${bridge.port}/status`, { headers: authHeaders(bridge.url) })
    ).json()) as Status;
    return status.upstreams.find((u) => u.name === 'notes')?.state;
  }

  /** Runs `mcp-bridge auth …`, completes the consent in code from the URL it prints, and waits for it. */
  async function runAuth(
    env: NodeJS.ProcessEnv,
    args: string[],
  ): Promise<{ code: number | null; stdout: string }> {
    const child: ChildProcess = spawn(process.execPath, [BIN, 'auth', ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    closers.push(() => child.exitCode === null && child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c) => {
      stdout += c;
    });
    child.stderr!.on('data', (c) => {
      stderr += c;
    });
    const exited = once(child, 'exit');
    const url = await waitFor(() => /in a browser:\n(http\S+)\n/.exec(stdout)?.[1], 'the authorization URL');
    const callback = await completeConsent(url);
    const page = await fetch(callback);
    expect(page.status).toBe(200);
    const [code] = (await exited) as [number | null];
    return { code, stdout: `${stdout}${stderr}` };
  }

  async function callWhoami(bridge: RunningBridge): Promise<string> {
    const client = new Client({ name: 't', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(bridge.url), {
        requestInit: { headers: authHeaders(bridge.url) },
      }),
    );
    try {
      const result = await client.callTool({ name: 'notes__whoami', arguments: {} });
      expect(result.isError).toBeFalsy();
      return (result.content as { text: string }[])[0]!.text;
    } finally {
      await client.close();
    }
  }

  it('`mcp-bridge auth NAME` without a daemon serves the callback itself; the daemon started later needs no login', async () => {
    const { dir } = await setup();
    const port = await freePort();
    const result = await runAuth(cliEnv(dir, { MCP_BRIDGE_PORT: String(port) }), ['notes', '--no-open']);
    expect(result.stdout).toContain('Logged in to "notes"');
    expect(result.code).toBe(0);

    const bridge = await daemon(dir);
    await waitFor(async () => (await upstreamState(bridge)) === 'ready', 'notes ready from the stored login');
    expect(JSON.parse(await callWhoami(bridge)).scope).toContain('mcp:read');
  });

  it('`mcp-bridge auth` with a daemon running logs in every upstream in needs_auth, through the daemon', async () => {
    const { dir } = await setup();
    const bridge = await daemon(dir);
    await waitFor(async () => (await upstreamState(bridge)) === 'needs_auth', 'notes in needs_auth');
    const status = await runCli(['status'], cliEnv(dir, { MCP_BRIDGE_PORT: String(bridge.port) }));
    expect(status.stdout).toMatch(/notes\s+needs_auth/);
    expect(status.stdout).toContain('to fix: npm run auth -- notes');
    const result = await runAuth(cliEnv(dir, { MCP_BRIDGE_PORT: String(bridge.port) }), ['--no-open']);
    expect(result.stdout).toContain('"notes" is ready in the daemon');
    expect(result.code).toBe(0);
    await callWhoami(bridge);
  });

  it('a daemon killed with SIGKILL during a refresh leaves a parseable, usable token file', async () => {
    const { as, dir } = await setup(3);
    const first = await daemon(dir);
    expect((await loginThroughDaemon(`http://127.0.0.1:${first.port}`, 'notes')).status).toBe(200);
    await waitFor(async () => (await upstreamState(first)) === 'ready', 'notes ready');

    // Hold the proactive refresh at the token endpoint, then kill the daemon mid-request.
    as.setTokenDelay(30_000);
    await waitFor(() => as.counts.delayedTokenRequests >= 1, 'the refresh to reach the token endpoint');
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');
    const file = JSON.parse(readFileSync(join(dir, 'config', 'oauth-state.json'), 'utf8')) as {
      tokens: Record<string, { refreshToken?: string }>;
    };
    expect(file.tokens.notes?.refreshToken).toBeTruthy();
    await waitFor(() => as.counts.droppedTokenRequests >= 1, 'the held request to be dropped');
    as.setTokenDelay(0);

    // A new daemon takes over the dead process's lock and refreshes with the stored token.
    const second = await daemon(dir);
    await waitFor(
      async () => (await upstreamState(second)) === 'ready',
      'notes ready after the crash',
      25_000,
    );
    await callWhoami(second);
    expect(as.counts.invalidGrant).toBe(0);
  }, 90_000);
});
