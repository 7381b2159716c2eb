// Findings of the review of the status page: the page cookie alone is not the owner's connection,
// a junk cookie from another port does not log the page out, and `open` trusts only a proven daemon.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findLocalDaemon } from '../../src/access/local-daemon.js';
import { pageLoginUrl } from '../../src/cli/open.js';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { raw } from '../helpers/raw-http.js';

describe('status page: what the page cookie alone is worth', () => {
  const tmp = makeTempDir();
  let daemon: Daemon;
  let base: string;

  beforeAll(async () => {
    daemon = await startTestDaemon(tmp.dir, [], { overrides: { maxConnections: 3 } });
    base = `http://127.0.0.1:${daemon.port}`;
  });
  afterAll(async () => {
    await daemon?.close();
    tmp.cleanup();
  });

  async function login() {
    const local = await findLocalDaemon({ host: '127.0.0.1', port: daemon.port, configDir: tmp.dir });
    const response = await fetch(await pageLoginUrl(local!), { redirect: 'manual' });
    const key = /#key=([A-Za-z0-9_-]+)$/.exec(response.headers.get('location') ?? '')![1]!;
    return { cookie: (response.headers.get('set-cookie') ?? '').split(';')[0]!, key };
  }

  it('connections that only show the shell with the cookie are evicted to make room for the owner', async () => {
    const { cookie } = await login();
    const sockets = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const socket = connect(daemon.port, '127.0.0.1');
        await new Promise((resolve) => socket.once('connect', resolve));
        socket.on('error', () => {});
        socket.write(
          `GET / HTTP/1.1\r\nHost: 127.0.0.1:${daemon.port}\r\nCookie: ${cookie}\r\nAccept: text/html\r\n\r\n`,
        );
        return socket;
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    try {
      // A new connection (fetch would reuse one of its pool).
      const status = await raw(daemon.port, {
        method: 'GET',
        path: '/status',
        headers: authHeaders(daemon.url),
      });
      expect(status.status).toBe(200);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });

  it('a junk cookie of the same name (set by a page on another port) does not hide the real one', async () => {
    const { cookie, key } = await login();
    const name = cookie.split('=')[0]!;
    const response = await fetch(`${base}/page/data`, {
      headers: { cookie: `${name}=junk; ${cookie}`, 'x-page-key': key, 'sec-fetch-site': 'same-origin' },
    });
    expect(response.status).toBe(200);
  });
});

describe('mcp-bridge open and a port squatter', () => {
  const tmp = makeTempDir();
  afterAll(() => tmp.cleanup());

  it('refuses a "daemon" that says it needs no token while the config says it does', async () => {
    const squatter = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        req.url?.startsWith('/healthz')
          ? '{"ok":true,"auth":"none"}'
          : '{"path":"/login?code=from-the-squatter"}',
      );
    });
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    try {
      const port = (squatter.address() as AddressInfo).port;
      const env = cliEnv(tmp.dir, { MCP_BRIDGE_PORT: String(port) });
      await runCli(['token', 'path'], env);
      const result = await runCli(['open', '--no-open'], env);
      expect(result.code).toBe(1);
      expect(result.stdout).not.toContain('from-the-squatter');
      expect(result.stderr).toContain('does not ask for the local access token');
    } finally {
      squatter.close();
    }
  });
});
