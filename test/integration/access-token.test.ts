import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ACCESS_TOKEN_FILE,
  challengeProof,
  newAccessToken,
  sessionCredential,
  writeAccessToken,
} from '../../src/access/access-token.js';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders, connectClient, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import { waitFor } from '../helpers/wait.js';

const initialize = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});
const mcpHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

describe('the local access token', () => {
  const closers: (() => unknown)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function daemonIn(
    options: { auth?: 'token' | 'none'; logger?: pino.Logger } = {},
  ): Promise<{ daemon: Daemon; dir: string; base: string }> {
    const temp = makeTempDir();
    closers.push(temp.cleanup);
    const daemon = await startTestDaemon(temp.dir, [fakeUpstream('fake')], {
      overrides: { auth: options.auth ?? 'token' },
      ...(options.logger ? { logger: options.logger } : {}),
    });
    closers.push(() => daemon.close());
    return { daemon, dir: temp.dir, base: `http://127.0.0.1:${daemon.port}` };
  }

  it('is created at first start, 0600 in the 0700 config dir, and kept across restarts', async () => {
    const temp = makeTempDir();
    closers.push(temp.cleanup);
    const first = await startTestDaemon(temp.dir, []);
    const file = join(temp.dir, ACCESS_TOKEN_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(temp.dir).mode & 0o077).toBe(0);
    const token = readFileSync(file, 'utf8').trim();
    expect(token).toMatch(/^mcpb_[A-Za-z0-9_-]{43}$/);
    expect(first.accessToken).toBe(token);
    await first.close();
    const second = await startTestDaemon(temp.dir, []);
    closers.push(() => second.close());
    expect(second.accessToken).toBe(token);
  });

  it('answers every route but /healthz and the OAuth callback with a JSON 401 that says where the token is', async () => {
    const { base, dir } = await daemonIn();
    const routes: [string, string, string?][] = [
      ['POST', '/mcp', initialize],
      ['GET', '/mcp'],
      ['DELETE', '/mcp'],
      ['GET', '/status'],
      ['GET', '/'],
      ['POST', '/oauth/login', JSON.stringify({ upstream: 'fake' })],
      ['GET', '/oauth/login/some-state'],
      ['GET', '/no-such-route'],
    ];
    for (const [method, path, body] of routes) {
      const response = await fetch(`${base}${path}`, { method, headers: mcpHeaders, body });
      expect(response.status, `${method} ${path}`).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer realm="mcp-bridge"');
      const error = ((await response.json()) as { error: { code: number; message: string; data: unknown } })
        .error;
      expect(error.code).toBe(-32010);
      expect(error.message).toContain(join(dir, ACCESS_TOKEN_FILE));
      expect(error.message).toContain('mcp-bridge clients');
      expect(error.data).toMatchObject({ code: 'ACCESS_TOKEN_REQUIRED' });
    }
    const wrong = await fetch(`${base}/status`, { headers: { authorization: `Bearer ${newAccessToken()}` } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(((await wrong.json()) as { error: { data: unknown } }).error.data).toMatchObject({
      code: 'ACCESS_TOKEN_INVALID',
    });
    for (const scheme of ['Basic dXNlcjpwYXNz', 'Bearer', '']) {
      const response = await fetch(`${base}/status`, { headers: { authorization: scheme } });
      expect(response.status, scheme).toBe(401);
    }

    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    // Reached (no 401): the callback itself refuses a state it did not start.
    const callback = await fetch(`${base}/oauth/callback?code=x&state=forged`);
    expect(callback.status).toBe(400);
    expect(await callback.text()).toContain('does not belong to a login in progress');
  });

  it('serves every route with the token', async () => {
    const { daemon, base } = await daemonIn();
    const headers = authHeaders(daemon);
    expect((await fetch(`${base}/status`, { headers })).status).toBe(200);
    expect((await fetch(`${base}/`, { headers })).status).toBe(200);
    const init = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { ...mcpHeaders, ...headers },
      body: initialize,
    });
    expect(init.status).toBe(200);
    await init.body?.cancel();
    await waitFor(() => daemon.registry.get('fake')!.snapshot().state === 'ready', 'the upstream');
    const client = await connectClient(daemon.url);
    closers.push(() => client.close());
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
  });

  it('is still required from an allowed browser origin; CORS only lets the page read the answer', async () => {
    const { daemon, base } = await daemonIn();
    for (const origin of ['https://claude.ai', 'http://localhost:5173', 'https://x.claudeusercontent.com']) {
      const preflight = await fetch(`${base}/mcp`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type, mcp-protocol-version',
        },
      });
      expect(preflight.status, origin).toBe(204);
      const refused = await fetch(`${base}/mcp`, {
        method: 'POST',
        headers: { ...mcpHeaders, origin },
        body: initialize,
      });
      expect(refused.status, origin).toBe(401);
      const status = await fetch(`${base}/status`, { headers: { origin } });
      expect(status.status, origin).toBe(401);
      const served = await fetch(`${base}/status`, { headers: { origin, ...authHeaders(daemon) } });
      expect(served.status, origin).toBe(200);
    }
  });

  it('proves to /healthz?challenge= that it knows the token, without revealing it', async () => {
    const { daemon, base } = await daemonIn();
    const body = (await (await fetch(`${base}/healthz?challenge=abc123`)).json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      ok: true,
      auth: 'token',
      proof: challengeProof(daemon.accessToken!, daemon.port, 'abc123'),
    });
    expect(JSON.stringify(body)).not.toContain(daemon.accessToken!);
    const plain = (await (await fetch(`${base}/healthz`)).json()) as Record<string, unknown>;
    expect(plain.proof).toBeUndefined();
  });

  it('takes a rotated token within a second, without a restart, and refuses the old one', async () => {
    const { daemon, dir, base } = await daemonIn();
    const old = daemon.accessToken!;
    const fresh = newAccessToken();
    await writeAccessToken(dir, fresh);
    await waitFor(
      async () =>
        (await fetch(`${base}/status`, { headers: { authorization: `Bearer ${fresh}` } })).status === 200,
      'the new token to be accepted',
      5000,
    );
    expect((await fetch(`${base}/status`, { headers: { authorization: `Bearer ${old}` } })).status).toBe(401);
    expect(statSync(join(dir, ACCESS_TOKEN_FILE)).mode & 0o777).toBe(0o600);
  });

  it('ends sessions and streams opened with a token that was rotated', async () => {
    const { daemon, dir, base } = await daemonIn();
    const init = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { ...mcpHeaders, ...authHeaders(daemon) },
      body: initialize,
    });
    const session = init.headers.get('mcp-session-id')!;
    await init.body?.cancel();
    const sessionHeaders = {
      ...authHeaders(daemon),
      'mcp-session-id': session,
      'mcp-protocol-version': '2025-11-25',
    };
    await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { ...mcpHeaders, ...sessionHeaders },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    const stream = await fetch(`${base}/mcp`, {
      headers: { ...sessionHeaders, accept: 'text/event-stream' },
    });
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    const ended = (async () => {
      for (;;) if ((await reader.read()).done) return;
    })();
    await writeAccessToken(dir, newAccessToken());
    await ended;
    const after = await fetch(`${base}/mcp`, { headers: { ...sessionHeaders, accept: 'text/event-stream' } });
    expect(after.status).toBe(401);
  });

  it('makes a token file that others could read private again, and says so', async () => {
    const temp = makeTempDir();
    closers.push(temp.cleanup);
    const first = await startTestDaemon(temp.dir, []);
    await first.close();
    chmodSync(join(temp.dir, ACCESS_TOKEN_FILE), 0o644);
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const second = await startTestDaemon(temp.dir, [], { logger: pino({ level: 'warn' }, sink) });
    closers.push(() => second.close());
    expect(statSync(join(temp.dir, ACCESS_TOKEN_FILE)).mode & 0o777).toBe(0o600);
    expect(lines.join('')).toContain('mcp-bridge token rotate');
  });

  it('tells a web page that it needs the token, but not where the file is', async () => {
    const { base, dir } = await daemonIn();
    const response = await fetch(`${base}/status`, {
      headers: { origin: 'https://x.claudeusercontent.com' },
    });
    expect(response.status).toBe(401);
    const text = await response.text();
    expect(text).toContain('local access token');
    expect(text).not.toContain(dir);
  });

  it('accepts a session credential only for its own open session', async () => {
    const { daemon, base } = await daemonIn();
    const token = daemon.accessToken!;
    const init = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { ...mcpHeaders, authorization: `Bearer ${token}` },
      body: initialize,
    });
    const session = init.headers.get('mcp-session-id')!;
    await init.body?.cancel();
    const ping = (credential: string, id: string) =>
      fetch(`${base}/mcp`, {
        method: 'POST',
        headers: {
          ...mcpHeaders,
          authorization: `Bearer ${credential}`,
          'mcp-session-id': id,
          'mcp-protocol-version': '2025-11-25',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }),
      });
    expect((await ping(sessionCredential(token, session), session)).status).toBe(200);
    expect((await ping(sessionCredential(token, 'another-session'), 'another-session')).status).toBe(401);
    expect((await ping(sessionCredential(token, session), 'another-session')).status).toBe(401);
    expect((await ping(sessionCredential(newAccessToken(), session), session)).status).toBe(401);
    // Not a credential for anything but /mcp with that session.
    const status = await fetch(`${base}/status`, {
      headers: { authorization: `Bearer ${sessionCredential(token, session)}`, 'mcp-session-id': session },
    });
    expect(status.status).toBe(401);
  });

  it('with "auth": "none", serves without a token and warns at start', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const { daemon, base, dir } = await daemonIn({ auth: 'none', logger: pino({ level: 'warn' }, sink) });
    expect(daemon.accessToken).toBeUndefined();
    expect((await fetch(`${base}/status`)).status).toBe(200);
    expect(((await (await fetch(`${base}/healthz`)).json()) as { auth: string }).auth).toBe('none');
    expect(lines.join('')).toContain('the local access token is off');
    expect(() => statSync(join(dir, ACCESS_TOKEN_FILE))).toThrow();
  });

  // setpriv needs root to switch users (CI runs as root).
  it.skipIf(process.getuid?.() !== 0)(
    'keeps another user of this machine out: it cannot read the token, and is refused without it',
    async () => {
      const { daemon, dir, base } = await daemonIn();
      // What another local user runs: read the token file, then try the endpoint with and without it.
      const script = `
      const fs = require('node:fs');
      let read = 'read';
      try { fs.readFileSync(${JSON.stringify(join(dir, ACCESS_TOKEN_FILE))}); } catch (e) { read = e.code; }
      const init = ${JSON.stringify(initialize)};
      const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
      (async () => {
        const without = await fetch(${JSON.stringify(`${base}/mcp`)}, { method: 'POST', headers: h, body: init });
        const status = await fetch(${JSON.stringify(`${base}/status`)});
        const withToken = await fetch(${JSON.stringify(`${base}/mcp`)}, {
          method: 'POST', headers: { ...h, authorization: process.env.TOKEN }, body: init });
        console.log(JSON.stringify({ read, without: without.status, status: status.status, withToken: withToken.status }));
      })();`;
      const { stdout } = await promisify(execFile)(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, '-e', script],
        { env: { TOKEN: authHeaders(daemon).authorization, PATH: process.env.PATH }, cwd: '/' },
      );
      expect(JSON.parse(stdout)).toEqual({ read: 'EACCES', without: 401, status: 401, withToken: 200 });
    },
  );
});
