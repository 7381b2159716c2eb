import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConnectorInfo } from '../../src/public/oauth-store.js';
import { makeTempDir } from '../helpers/bridge.js';
import { cliEnv, freePort, type RunningBridge, runCli, startCli } from '../helpers/cli.js';
import { connectLikeChatGPT, initializeWith, OWNER_PASSWORD, refresh } from '../helpers/connector.js';
import { fakeServerEntry } from '../helpers/fake-server.js';

interface ListJson {
  daemonRunning: boolean;
  public: { url: string; exposes: string[] } | null;
  connectors: ConnectorInfo[];
}

// Runs bin/ (dist/): `npm test` builds first (pretest); a direct `npx vitest run` needs `npm run build`.
describe('mcp-bridge connectors', () => {
  const closers: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** A config dir with two upstreams and the real daemon's env for a public listener on loopback. */
  async function setup() {
    const temp = makeTempDir();
    closers.push(temp.cleanup);
    const configDir = join(temp.dir, 'config');
    mkdirSync(configDir, { recursive: true });
    writeFileSync(
      join(configDir, 'config.json'),
      JSON.stringify({
        mcpServers: { notes: fakeServerEntry(), github: fakeServerEntry() },
        pingIntervalMs: 0,
      }),
    );
    const publicPort = await freePort();
    const issuer = `http://127.0.0.1:${publicPort}`;
    const env = cliEnv(temp.dir, {
      MCP_BRIDGE_PUBLIC_URL: issuer,
      MCP_BRIDGE_PUBLIC_PORT: String(publicPort),
      MCP_BRIDGE_OWNER_PASSWORD: OWNER_PASSWORD,
    });
    const start = async (): Promise<RunningBridge> => {
      const bridge = await startCli(env);
      closers.push(() => bridge.stop());
      return bridge;
    };
    return { configDir, env, resource: `${issuer}/mcp`, start };
  }

  it('with the daemon running: lists a ChatGPT connector, and revoking it kills its tokens at once', async () => {
    const { env, resource, start } = await setup();
    await start();
    const empty = await runCli(['connectors', 'list'], env);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toContain(`public: ${resource} exposes notes, github`);
    expect(empty.stdout).toContain('no connectors yet');
    expect(empty.stdout).toContain('docs/connectors.md');

    const { conn, tokens } = await connectLikeChatGPT(resource);
    const clientId = conn.client.client_id;
    expect((await initializeWith(resource, tokens.access_token)).status).toBe(200);

    const listed = await runCli(['connectors', 'list', '--json'], env);
    expect(listed.code).toBe(0);
    const json = JSON.parse(listed.stdout) as ListJson;
    expect(json.daemonRunning).toBe(true);
    expect(json.public).toEqual({ url: resource, exposes: ['notes', 'github'] });
    expect(json.connectors).toHaveLength(1);
    expect(json.connectors[0]).toMatchObject({
      clientId,
      clientName: 'ChatGPT',
      redirectHosts: ['chatgpt.com'],
    });
    expect(json.connectors[0]!.scopes).toContain('mcp');

    const table = await runCli(['connectors', 'list'], env);
    expect(table.stdout).not.toContain('not running');
    const row = table.stdout.split('\n').find((line) => line.includes(clientId))!;
    expect(row).toMatch(/^ChatGPT\s/);
    expect(row).toContain('chatgpt.com');
    expect(row).toContain('mcp');

    const revoked = await runCli(['connectors', 'revoke', clientId], env);
    expect(revoked.stderr).toBe('');
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`revoked ${clientId} ChatGPT (chatgpt.com)`);
    // At once, in the running daemon: no restart, no waiting.
    expect((await initializeWith(resource, tokens.access_token)).status).toBe(401);
    const refreshed = await refresh(conn, tokens.refresh_token!);
    expect(refreshed.ok).toBe(false);
    // The registration went with the grants, so the token endpoint no longer knows the client.
    expect((await refreshed.json()).error).toMatch(/^invalid_(grant|client)$/);
    const after = JSON.parse((await runCli(['connectors', 'list', '--json'], env)).stdout) as ListJson;
    expect(after.connectors).toEqual([]);

    // An unknown id: the daemon's CONNECTOR_NOT_FOUND, exit 1.
    const unknown = await runCli(['connectors', 'revoke', clientId], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`no connector has the client id "${clientId}"`);
  });

  it('with the daemon stopped: list and revoke work on connectors.json, and the revocation holds at the next start', async () => {
    const { configDir, env, resource, start } = await setup();
    const bridge = await start();
    const a = await connectLikeChatGPT(resource);
    const b = await connectLikeChatGPT(resource);
    const c = await connectLikeChatGPT(resource);
    expect(await bridge.stop()).toBe(0);

    const listed = await runCli(['connectors', 'list'], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('daemon is not running');
    expect(listed.stdout).toContain(`public: ${resource} exposes notes, github`);
    for (const { conn } of [a, b, c]) expect(listed.stdout).toContain(conn.client.client_id);
    const json = JSON.parse((await runCli(['connectors', 'list', '--json'], env)).stdout) as ListJson;
    expect(json.daemonRunning).toBe(false);
    expect(json.connectors.map((x) => x.clientName)).toEqual(['ChatGPT', 'ChatGPT', 'ChatGPT']);

    const one = await runCli(['connectors', 'revoke', a.conn.client.client_id], env);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain(`revoked ${a.conn.client.client_id}`);
    expect(one.stdout).toContain('the daemon is not running');
    expect(readFileSync(join(configDir, 'connectors.json'), 'utf8')).not.toContain(a.conn.client.client_id);

    const unknown = await runCli(['connectors', 'revoke', 'no-such-client'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no connector has the client id "no-such-client"');

    // b survives for now; c goes with --all after the restart check below.
    const restarted = await start();
    expect((await initializeWith(resource, a.tokens.access_token)).status).toBe(401);
    expect((await initializeWith(resource, b.tokens.access_token)).status).toBe(200);
    expect(await restarted.stop()).toBe(0);

    const all = await runCli(['connectors', 'revoke', '--all'], env);
    expect(all.code).toBe(0);
    expect(all.stdout).toContain('2 connector(s) revoked');
    const none = await runCli(['connectors', 'list'], env);
    expect(none.stdout).toContain('no connectors yet');
    await start();
    for (const { tokens } of [b, c])
      expect((await initializeWith(resource, tokens.access_token)).status).toBe(401);
  });

  it('never edits connectors.json behind a daemon that runs but does not answer', async () => {
    const { configDir, env, resource, start } = await setup();
    const bridge = await start();
    const { conn } = await connectLikeChatGPT(resource);
    await bridge.stop();
    const file = join(configDir, 'connectors.json');
    const before = readFileSync(file, 'utf8');
    // A live pid (this test process) on a port where nothing listens.
    const port = await freePort();
    const record = { pid: process.pid, startTime: null, host: '127.0.0.1', port, startedAt: '', version: '' };
    writeFileSync(join(configDir, 'daemon.json'), JSON.stringify(record));
    const refused = await runCli(['connectors', 'revoke', conn.client.client_id], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `the daemon (pid ${process.pid}) runs but does not answer at 127.0.0.1:${port}`,
    );
    expect(readFileSync(file, 'utf8')).toBe(before);
    writeFileSync(join(configDir, 'daemon.json'), JSON.stringify({ ...record, port: null }));
    const starting = await runCli(['connectors', 'list'], env);
    expect(starting.code).toBe(1);
    expect(starting.stderr).toContain('still starting');
  });

  it('usage errors exit 2; no public listener is said plainly', async () => {
    const temp = makeTempDir();
    closers.push(temp.cleanup);
    const env = cliEnv(temp.dir);
    for (const args of [
      ['connectors'],
      ['connectors', 'revoke'],
      ['connectors', 'revoke', 'a', 'b'],
      ['connectors', 'revoke', 'a', '--all'],
      ['connectors', 'list', 'extra'],
      ['connectors', 'forget'],
      ['connectors', 'list', '--bogus'],
    ]) {
      const result = await runCli(args, env);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toContain('connectors');
    }
    const none = await runCli(['connectors', 'list'], env);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('public: none (public.url is not set');
    expect(none.stdout).toContain('no connectors yet');
    // Reading an absent file creates none.
    expect(existsSync(join(temp.dir, 'config', 'connectors.json'))).toBe(false);
    const help = await runCli(['help', 'connectors'], env);
    expect(help.stdout).toContain('mcp-bridge connectors revoke <client-id> | --all');
  });
});
