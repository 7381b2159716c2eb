// What the bench runs and connects to: the real daemon process, the fixture server (over stdio or
// Streamable HTTP), and SDK clients of either. Every process started here is ended by exitBench.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { now } from './stats.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'mcp-bridge.js');
export const FAKE = join(ROOT, 'test', 'fixtures', 'fake-server.mjs');

export async function directClient(env = {}) {
  const client = new Client({ name: 'bench-direct', version: '1' });
  await client.connect(
    new StdioClientTransport({ command: process.execPath, args: [FAKE], env: { ...process.env, ...env } }),
  );
  return client;
}

/** The fixture served over Streamable HTTP (one session) by its own process. */
export async function httpFixture() {
  const child = spawn(process.execPath, [FAKE], {
    env: { ...process.env, FAKE_HTTP: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve) =>
    child.stdout.once('data', (chunk) => resolve(String(chunk).trim())),
  );
  return { url, child };
}

/** A client of its own HTTP fixture: the baseline for the HTTP hop itself. */
export async function directHttpClient() {
  const { url, child } = await httpFixture();
  const client = await bridgeClient(url);
  return {
    client,
    url,
    pid: child.pid,
    async close() {
      await client.close();
      child.kill();
    },
  };
}

export async function bridgeClient(url) {
  const client = new Client({ name: 'bench-bridge', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: auth(url) } }),
  );
  return client;
}

// Each daemon's local access token, by origin: every request to a daemon carries it, as a configured client's would.
export const TOKENS = new Map();
export const auth = (url) => {
  const token = TOKENS.get(new URL(url).origin);
  return token ? { authorization: `Bearer ${token}` } : {};
};

/** Starts the real daemon process; resolves with its URL and pid once it listens. */
export async function startDaemon(dir, servers, extraEnv = {}, extraConfig = {}) {
  const configDir = join(dir, 'config');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(
    join(configDir, 'config.json'),
    JSON.stringify({ mcpServers: servers, pingIntervalMs: 0, ...extraConfig }),
  );
  const startedAt = now();
  const child = spawn(process.execPath, [BIN, 'start'], {
    env: {
      ...process.env,
      MCP_BRIDGE_CONFIG_DIR: configDir,
      MCP_BRIDGE_LOG_PATH: join(dir, 'logs', 'mcp-bridge.log'),
      MCP_BRIDGE_PORT: '0',
      MCP_BRIDGE_LOG_LEVEL: 'warn',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`daemon exited (${code})`)));
  });
  TOKENS.set(new URL(url).origin, readFileSync(join(configDir, 'access-token'), 'utf8').trim());
  return {
    url,
    configDir,
    pid: child.pid,
    startedAt,
    async stop() {
      // A daemon that already died (the error that brought us here) would never emit 'exit' again.
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

export async function waitReady(url, names) {
  const status = url.replace(/\/mcp$/, '/status');
  for (;;) {
    const body = await (await fetch(status, { headers: auth(url) })).json();
    if (names.every((n) => body.upstreams.find((u) => u.name === n)?.state === 'ready')) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}
