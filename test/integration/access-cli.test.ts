import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readAccessToken } from '../../src/access/access-token.js';
import { authHeaders } from '../helpers/access.js';
import { makeTempDir } from '../helpers/bridge.js';
import { BIN, cliEnv, freePort, runCli, startCli } from '../helpers/cli.js';
import { fakeServerEntry } from '../helpers/fake-server.js';
import { startResourceServer } from '../helpers/mcp-resource-server.js';
import { completeConsent, startAuthServer } from '../helpers/oauth-server.js';
import { waitFor } from '../helpers/wait.js';

describe('the CLI with the local access token', () => {
  const closers: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  function setup(config: object): {
    dir: string;
    configDir: string;
    browserLog: string;
    env: NodeJS.ProcessEnv;
  } {
    const temp = makeTempDir();
    closers.push(temp.cleanup);
    const configDir = join(temp.dir, 'config');
    mkdirSync(configDir, { recursive: true });
    writeFileSync(join(configDir, 'config.json'), JSON.stringify(config));
    // `open` ends in xdg-open, which runs $BROWSER when there is no desktop: a browser we can watch.
    const browserLog = join(temp.dir, 'browser.log');
    const browser = join(temp.dir, 'browser.sh');
    writeFileSync(browser, `#!/bin/sh\necho "$1" >> ${JSON.stringify(browserLog)}\n`);
    chmodSync(browser, 0o755);
    return { dir: temp.dir, configDir, browserLog, env: cliEnv(temp.dir, { BROWSER: browser }) };
  }

  /** A program squatting on the daemon's port: answers like mcp-bridge would, and records what it is sent. */
  async function squatter(port: number, healthz: object) {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      res.setHeader('content-type', 'application/json');
      if (req.url?.startsWith('/healthz')) {
        res.end(JSON.stringify(healthz));
        return;
      }
      res.end(
        JSON.stringify({
          upstream: 'notes',
          authorizationUrl: 'https://evil.example/authorize',
          state: 's',
          issuer: 'https://evil.example',
          upstreams: [],
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(resolve)));
    return seen;
  }

  it('`clients` prints ready-to-paste settings with the token; `status` and `token rotate` work with no setup', async () => {
    const { env, configDir } = setup({ mcpServers: { fake: fakeServerEntry() }, pingIntervalMs: 0 });
    // Before the daemon ever ran: the token is created so the settings work at its first start.
    const before = await runCli(['clients'], { ...env, MCP_BRIDGE_PORT: '8769' });
    expect(before.code).toBe(0);
    const token = readAccessToken(configDir)!;
    expect(token).toBeDefined();
    expect(before.stdout).toContain(
      `claude mcp add --transport http bridge http://127.0.0.1:8769/mcp --header "Authorization: Bearer ${token}"`,
    );
    for (const client of ['Claude Desktop', 'Cursor', 'VS Code', 'MCP Inspector', 'Python SDK'])
      expect(before.stdout).toContain(`# ${client}`);
    const json = JSON.parse((await runCli(['clients', '--json'], env)).stdout) as {
      snippets: { client: string; text: string }[];
    };
    const vscode = JSON.parse(json.snippets.find((s) => s.client === 'VS Code')!.text);
    expect(vscode.servers.bridge.headers.Authorization).toBe(`Bearer ${token}`);

    const bridge = await startCli(env);
    closers.push(() => bridge.stop('SIGKILL'));
    const env2 = { ...env, MCP_BRIDGE_PORT: String(bridge.port) };
    const status = await runCli(['status'], env2);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('fake');

    const rotated = await runCli(['token', 'rotate'], env2);
    expect(rotated.code).toBe(0);
    const fresh = readAccessToken(configDir)!;
    expect(fresh).not.toBe(token);
    await waitFor(
      async () =>
        (await fetch(new URL('/status', bridge.url), { headers: { authorization: `Bearer ${token}` } }))
          .status === 401,
      'the old token to be refused',
      5000,
    );
    // The CLI reads the new token itself.
    expect((await runCli(['status'], env2)).code).toBe(0);
  });

  it('`auth` opens the browser on the authorization server of a daemon that proved itself', async () => {
    const as = await startAuthServer();
    closers.push(() => as.close());
    const rs = await startResourceServer({ auth: as });
    closers.push(() => rs.close());
    const { env, browserLog } = setup({ mcpServers: { notes: { url: rs.url } } });
    const bridge = await startCli(env);
    closers.push(() => bridge.stop('SIGKILL'));
    const child: ChildProcess = spawn(process.execPath, [BIN, 'auth', 'notes'], {
      env: { ...env, MCP_BRIDGE_PORT: String(bridge.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    closers.push(() => child.exitCode === null && child.kill('SIGKILL'));
    const exited = once(child, 'exit');
    const opened = await waitFor(
      () => existsSync(browserLog) && readFileSync(browserLog, 'utf8').trim(),
      'the browser',
    );
    expect(new URL(opened).origin).toBe(new URL(as.issuer).origin);
    expect((await fetch(await completeConsent(opened))).status).toBe(200);
    expect((await exited)[0]).toBe(0);
    expect(authHeaders(bridge.url).authorization).toMatch(/^Bearer mcpb_/);
  });

  for (const [what, healthz] of [
    ['a wrong proof', { ok: true, version: '0.1.0', auth: 'token', proof: 'forged' }],
    ['no token at all', { ok: true, version: '0.1.0', auth: 'none' }],
  ] as const) {
    it(`\`auth\` and \`status\` send no token to a squatter on the port (${what}), and no browser opens`, async () => {
      const port = await freePort();
      const { env, browserLog, configDir } = setup({
        mcpServers: { notes: { url: 'https://notes.example/mcp' } },
      });
      // The real daemon ran once, so there is a token to steal.
      expect((await runCli(['clients'], env)).code).toBe(0);
      const token = readAccessToken(configDir)!;
      const seen = await squatter(port, healthz);
      const envP = { ...env, MCP_BRIDGE_PORT: String(port) };
      const auth = await runCli(['auth', 'notes', '--timeout', '5'], envP);
      expect(auth.code).toBe(1);
      expect(auth.stderr).toContain('local access token was not sent');
      expect(auth.stderr).not.toContain('evil.example');
      const status = await runCli(['status'], envP);
      if (healthz.auth === 'token') {
        expect(status.code).toBe(1);
        expect(status.stderr).toContain('could not prove it knows the access token');
      }
      expect(seen.length).toBeGreaterThan(0);
      for (const headers of seen) expect(JSON.stringify(headers)).not.toContain(token);
      expect(existsSync(browserLog)).toBe(false);
    });
  }
});
