#!/usr/bin/env node
// The client under test for `npm run conformance:auth` (see auth-client.example.mjs for the suite's
// contract). It exercises the bridge's own OAuth path end to end, the way a person uses it:
//   1. a real daemon (dist/, in this process, port 0) with one http upstream: the suite's server;
//   2. the upstream goes to needs_auth; a login starts through the daemon's API (as `mcp-bridge
//      auth` does), the suite's authorization server approves at once, and its redirect is handed
//      to the daemon's own /oauth/callback;
//   3. an MCP client lists the upstream's tools through the daemon and calls test-tool; a 403
//      insufficient_scope leads to one more login with the wider scope (at most 3 logins in all).
// Exit 0 when the call succeeded, 1 otherwise.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { DEFAULTS } from '../../dist/config/schema.js';
import { startDaemon } from '../../dist/daemon.js';
import { createLogger } from '../../dist/log.js';

/** The client id the suite expects when its authorization server supports Client ID Metadata Documents. */
const CIMD_URL = 'https://conformance-test.local/client-metadata.json';
const MAX_LOGINS = 3;
const NAME = 'conf';

const serverUrl = process.argv.at(-1);
const context = process.env.MCP_CONFORMANCE_CONTEXT ? JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT) : {};
const dir = mkdtempSync(join(tmpdir(), 'mcp-bridge-conformance-'));
const log = (line) => process.stderr.write(`[auth-client] ${line}\n`);

async function main() {
  if (!serverUrl || !/^https?:\/\//.test(serverUrl))
    throw new Error(`expected the server URL last, got ${serverUrl}`);
  log(`scenario=${process.env.MCP_CONFORMANCE_SCENARIO ?? '?'} server=${serverUrl}`);
  const logger = createLogger({ level: 'debug', logPath: join(dir, 'bridge.log'), pretty: false });
  const daemon = await startDaemon({
    config: {
      file: join(dir, 'config.json'),
      fileExists: false,
      configDir: dir,
      logPath: join(dir, 'bridge.log'),
      logLevel: 'debug',
      port: 0,
      host: '127.0.0.1',
      mcpPath: DEFAULTS.mcpPath,
      allowedOrigins: [],
      allowedHosts: [],
      maxBodyBytes: DEFAULTS.maxBodyBytes,
      callTimeoutMs: 20_000,
      pingIntervalMs: 0,
      pageSize: DEFAULTS.pageSize,
      auth: DEFAULTS.auth,
      upstreams: [
        {
          kind: 'http',
          name: NAME,
          url: serverUrl,
          headers: {},
          transport: 'streamable-http',
          oauth: {
            clientId: typeof context.client_id === 'string' ? context.client_id : undefined,
            clientSecret: typeof context.client_secret === 'string' ? context.client_secret : undefined,
            clientMetadataUrl: CIMD_URL,
          },
          callTimeoutMs: 20_000,
        },
      ],
    },
    logger,
    upstreamDefaults: { backoff: { minMs: 100, maxMs: 1000, factor: 2 } },
  });
  const base = `http://127.0.0.1:${daemon.port}`;
  let logins = 0;
  const upstream = () => daemon.registry.get(NAME).snapshot();

  const login = async () => {
    if (++logins > MAX_LOGINS) throw new Error(`giving up after ${MAX_LOGINS} logins`);
    const started = await fetch(`${base}/oauth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${daemon.accessToken}` },
      body: JSON.stringify({ upstream: NAME }),
    });
    const body = await started.json();
    if (!started.ok) throw new Error(`login did not start: ${body.error}`);
    log(`login ${logins}: ${body.authorizationUrl}`);
    // The suite's authorization server approves at once and redirects to our callback.
    const approved = await fetch(body.authorizationUrl, { redirect: 'manual' });
    const location = approved.headers.get('location');
    if (!location)
      throw new Error(`the authorization endpoint answered HTTP ${approved.status} without a redirect`);
    const callback = await fetch(new URL(location, body.authorizationUrl));
    if (callback.status !== 200)
      throw new Error(`callback: HTTP ${callback.status}: ${await callback.text()}`);
    // The server may still refuse (e.g. it moved to another authorization server): log in again.
    await waitUntil(() => ['ready', 'needs_auth'].includes(upstream().state), 'the upstream after the login');
    if (upstream().state === 'needs_auth') await login();
  };

  try {
    await waitUntil(
      () => ['ready', 'needs_auth', 'failed'].includes(upstream().state),
      'the first connection',
    );
    if (upstream().state === 'failed') throw new Error(`upstream failed: ${upstream().lastError?.message}`);
    if (upstream().state === 'needs_auth') await login();

    const client = new Client({ name: 'conformance-auth-client', version: '0.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${daemon.accessToken}` } },
      }),
    );
    const { tools } = await client.listTools();
    log(`tools: ${tools.map((t) => t.name).join(', ')}`);
    for (;;) {
      const result = await client
        .callTool({ name: `${NAME}__test-tool`, arguments: {} })
        .catch((error) => error);
      if (!(result instanceof Error)) {
        log(`test-tool: ${JSON.stringify(result.content)}`);
        break;
      }
      log(`call failed: ${result.message}`);
      if (!/needs more permission|needs a login|npm run auth/.test(result.message)) throw result;
      await login();
    }
    await client.close();
  } finally {
    await daemon.close();
  }
}

async function waitUntil(check, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

main().then(
  () => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  },
  (error) => {
    log(error?.stack ?? String(error));
    log(`bridge log kept in ${dir}`);
    process.exit(1);
  },
);
