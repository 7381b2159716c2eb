#!/usr/bin/env node
// Benchmarks (not tests): the bridge against a direct stdio connection to the same fixture server,
// measured in one run and interleaved, so machine noise hits both sides alike. Prints medians and
// ratios; asserts nothing. Usage: npm run bench [-- --quick]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { connectorToken, freePort } from './connector.js';

// The SDK client's transport adds an abort listener per fetch to one long-lived signal (undici
// drops them only when the Request is collected); thousands of calls trip Node's leak warning.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'MaxListenersExceededWarning') console.warn(warning);
});

const quick = process.argv.includes('--quick');
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'mcp-bridge.js');
const FAKE = join(ROOT, 'test', 'fixtures', 'fake-server.mjs');
const N_SMALL = quick ? 300 : 2000;
const N_BIG = quick ? 20 : 100;
const N_LIST = quick ? 20 : 100;
const THROUGHPUT_MS = quick ? 1500 : 5000;
const COLD_RUNS = quick ? 3 : 7;
const SHIM_RUNS = quick ? 5 : 15;

const now = () => performance.now();
const pct = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const median = (values) => pct(values, 50);
const ms = (v) => `${v.toFixed(3)} ms`;
const rows = [];
const report = (metric, direct, bridge, extra = '') => {
  rows.push({ metric, direct, bridge, extra });
  console.log(
    `${metric.padEnd(44)} direct ${direct.padStart(14)}   bridge ${bridge.padStart(14)}   ${extra}`,
  );
};

function tempDir() {
  return mkdtempSync(join(tmpdir(), 'mcp-bridge-bench-'));
}

async function directClient(env = {}) {
  const client = new Client({ name: 'bench-direct', version: '1' });
  await client.connect(
    new StdioClientTransport({ command: process.execPath, args: [FAKE], env: { ...process.env, ...env } }),
  );
  return client;
}

/** The fixture served over Streamable HTTP (one session) by its own process. */
async function httpFixture() {
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
async function directHttpClient() {
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

async function bridgeClient(url) {
  const client = new Client({ name: 'bench-bridge', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: auth(url) } }),
  );
  return client;
}

// Each daemon's local access token, by origin: every request to a daemon carries it, as a configured client's would.
const TOKENS = new Map();
const auth = (url) => {
  const token = TOKENS.get(new URL(url).origin);
  return token ? { authorization: `Bearer ${token}` } : {};
};

/** Starts the real daemon process; resolves with its URL and pid once it listens. */
async function startDaemon(dir, servers, extraEnv = {}) {
  const configDir = join(dir, 'config');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, 'config.json'), JSON.stringify({ mcpServers: servers, pingIntervalMs: 0 }));
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
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

async function waitReady(url, names) {
  const status = url.replace(/\/mcp$/, '/status');
  for (;;) {
    const body = await (await fetch(status, { headers: auth(url) })).json();
    if (names.every((n) => body.upstreams.find((u) => u.name === n)?.state === 'ready')) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

function rssMiB(pid) {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** User + system CPU of a process so far, from /proc (Linux). */
function daemonCpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function timed(fn) {
  const start = now();
  await fn();
  return now() - start;
}

const INITIALIZE_PARAMS = {
  protocolVersion: '2025-06-18',
  capabilities: {},
  clientInfo: { name: 'bench-raw', version: '1' },
};
const initializeLine = `${JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: INITIALIZE_PARAMS })}\n`;

/** Spawns `node <args>`; resolves with the time from spawn to its first stdout line (or to its exit). */
async function timeProcess(args, { untilExit = false, stdin } = {}) {
  const startedAt = now();
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  if (stdin) child.stdin.write(stdin);
  if (untilExit) {
    child.stdin.end();
    const [code] = await exited;
    if (code !== 0) throw new Error(`${args.join(' ')} exited with ${code}`);
    return { elapsed: now() - startedAt, child, line: '', exited };
  }
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    exited.then(([code]) => reject(new Error(`${args.join(' ')} exited (${code}) before answering`)));
  });
  return { elapsed: now() - startedAt, child, line, exited };
}

/** The shim with one initialized session: raw JSON lines on its stdin and stdout, no SDK. */
async function shimSession(url) {
  const child = spawn(process.execPath, [BIN, 'stdio', '--url', url], { stdio: ['pipe', 'pipe', 'inherit'] });
  const pending = new Map();
  createInterface({ input: child.stdout }).on('line', (line) => {
    const message = JSON.parse(line);
    const settle = pending.get(message.id);
    if (!settle) return;
    pending.delete(message.id);
    settle(message);
  });
  let nextId = 0;
  const request = (method, params) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, (m) => (m.error ? reject(new Error(m.error.message)) : resolve(m.result)));
      child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    });
  await request('initialize', INITIALIZE_PARAMS);
  child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
  return {
    pid: child.pid,
    call: (name, args) => request('tools/call', { name, arguments: args }),
    async close() {
      child.stdin.end();
      const [code] = await once(child, 'exit');
      if (code !== 0) throw new Error(`the shim exited with ${code}`);
    },
  };
}

/** A bare Streamable HTTP client (fetch, no SDK) with one session: the shim's own way of talking. */
async function rawHttpSession(url) {
  let session;
  let protocol;
  const post = async (message) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...auth(url),
        ...(session ? { 'mcp-session-id': session } : {}),
        ...(protocol ? { 'mcp-protocol-version': protocol } : {}),
      },
      body: JSON.stringify(message),
    });
    const text = await response.text();
    if (message.id === undefined) return { response };
    const messages = (response.headers.get('content-type') ?? '').includes('text/event-stream')
      ? text
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => JSON.parse(l.slice(5)))
      : [JSON.parse(text)].flat();
    const reply = messages.find((m) => m.id === message.id);
    if (!reply?.result) throw new Error(`no result for ${message.method}: HTTP ${response.status} ${text}`);
    return { response, result: reply.result };
  };
  const init = await post({ jsonrpc: '2.0', id: 0, method: 'initialize', params: INITIALIZE_PARAMS });
  session = init.response.headers.get('mcp-session-id');
  protocol = init.result.protocolVersion;
  await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
  let nextId = 1;
  return {
    call: async (name, args) =>
      (await post({ jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name, arguments: args } }))
        .result,
    async close() {
      await fetch(url, { method: 'DELETE', headers: { ...auth(url), 'mcp-session-id': session } });
    },
  };
}

/** A fresh Node process that POSTs one initialize and prints the answer (then ends its session). */
const fetchInitializeScript = (url) => `(async () => {
  const r = await fetch(${JSON.stringify(url)}, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...${JSON.stringify(auth(url))} },
    body: ${JSON.stringify(initializeLine.trim())},
  });
  process.stdout.write(JSON.stringify((await r.text()).length) + '\\n');
  await fetch(${JSON.stringify(url)}, { method: 'DELETE', headers: { ...${JSON.stringify(auth(url))}, 'mcp-session-id': r.headers.get('mcp-session-id') } });
})();`;

async function main() {
  console.log(
    `mcp-bridge bench (${quick ? 'quick' : 'full'}), node ${process.version}, ${new Date().toISOString()}\n`,
  );
  const dir = tempDir();
  // A remote (Streamable HTTP) upstream too, served by its own fixture process.
  const remote = await httpFixture();
  const publicPort = await freePort();
  const issuer = `http://127.0.0.1:${publicPort}`;
  const ownerPassword = 'bench owner password';
  const daemon = await startDaemon(
    dir,
    {
      fake: { command: process.execPath, args: [FAKE] },
      many: { command: process.execPath, args: [FAKE], env: { FAKE_TOOLS: '1992' } },
      remote: { url: remote.url },
    },
    {
      MCP_BRIDGE_PUBLIC_URL: issuer,
      MCP_BRIDGE_PUBLIC_PORT: String(publicPort),
      MCP_BRIDGE_OWNER_PASSWORD: ownerPassword,
    },
  );
  // The shims this bench spawns read the daemon's token from its config dir, as under Claude Desktop.
  process.env.MCP_BRIDGE_CONFIG_DIR = daemon.configDir;
  const manyDirect = await directClient({ FAKE_TOOLS: '1992' });
  try {
    await waitReady(daemon.url, ['fake', 'many', 'remote']);
    const direct = await directClient();
    const bridge = await bridgeClient(daemon.url);
    const idleRss = rssMiB(daemon.pid);

    // Warm up both paths (JIT, connection pools).
    for (let i = 0; i < 100; i++) {
      await direct.callTool({ name: 'echo', arguments: { text: 'w' } });
      await bridge.callTool({ name: 'fake__echo', arguments: { text: 'w' } });
    }

    // 1. Small call latency, interleaved.
    const d = [];
    const b = [];
    for (let i = 0; i < N_SMALL; i++) {
      d.push(await timed(() => direct.callTool({ name: 'echo', arguments: { text: 'hi' } })));
      b.push(await timed(() => bridge.callTool({ name: 'fake__echo', arguments: { text: 'hi' } })));
    }
    report(
      'small tools/call p50',
      ms(median(d)),
      ms(median(b)),
      `added ${ms(median(b) - median(d))} (target < 1 ms)`,
    );
    report('small tools/call p99', ms(pct(d, 99)), ms(pct(b, 99)), `added ${ms(pct(b, 99) - pct(d, 99))}`);

    // 1b. The same against the fixture served over HTTP directly: how much is the HTTP hop itself.
    //     CPU per call of each server process (the daemon without its child, the fixture).
    const viaHttp = await directHttpClient();
    const h = [];
    const b2 = [];
    for (let i = 0; i < 100; i++) await viaHttp.client.callTool({ name: 'echo', arguments: { text: 'w' } });
    const smallCpu = { daemon: daemonCpuMs(daemon.pid), fixture: daemonCpuMs(viaHttp.pid) };
    for (let i = 0; i < N_SMALL; i++) {
      h.push(await timed(() => viaHttp.client.callTool({ name: 'echo', arguments: { text: 'hi' } })));
      b2.push(await timed(() => bridge.callTool({ name: 'fake__echo', arguments: { text: 'hi' } })));
    }
    const daemonSmall = (daemonCpuMs(daemon.pid) - smallCpu.daemon) / N_SMALL;
    const fixtureSmall = (daemonCpuMs(viaHttp.pid) - smallCpu.fixture) / N_SMALL;
    report(
      'small tools/call p50 vs direct HTTP',
      ms(median(h)),
      ms(median(b2)),
      `ratio ${(median(b2) / median(h)).toFixed(2)} (the bridge hop alone: HTTP in, stdio out; target <= 1.00)`,
    );
    report(
      'server CPU per small call vs direct HTTP',
      ms(fixtureSmall),
      ms(daemonSmall),
      `ratio ${(daemonSmall / fixtureSmall).toFixed(2)} (daemon without its child vs the fixture's HTTP server; target <= 0.5 ms)`,
    );

    // 1c. The public listener (bearer token from the bridge's own AS) against the loopback one.
    const publicUrl = `${issuer}/mcp`;
    TOKENS.set(issuer, await connectorToken(issuer, publicUrl, ownerPassword));
    const viaPublic = await bridgeClient(publicUrl);
    for (let i = 0; i < 100; i++) await viaPublic.callTool({ name: 'fake__echo', arguments: { text: 'w' } });
    const local = [];
    const pub = [];
    for (let i = 0; i < N_SMALL; i++) {
      local.push(await timed(() => bridge.callTool({ name: 'fake__echo', arguments: { text: 'hi' } })));
      pub.push(await timed(() => viaPublic.callTool({ name: 'fake__echo', arguments: { text: 'hi' } })));
    }
    await viaPublic.close();
    report(
      'public listener call p50 (loopback | public)',
      ms(median(local)),
      ms(median(pub)),
      `added ${ms(median(pub) - median(local))} (bearer check, the public session; target <= 0.2 ms)`,
    );

    // 1d. 1 MiB results against the direct HTTP fixture: latency and server CPU per call.
    const hBig = [];
    const bBig2 = [];
    const bigCpu = { daemon: daemonCpuMs(daemon.pid), fixture: daemonCpuMs(viaHttp.pid) };
    for (let i = 0; i < N_BIG; i++) {
      hBig.push(
        await timed(() => viaHttp.client.callTool({ name: 'big', arguments: { bytes: 1024 * 1024 } })),
      );
      bBig2.push(
        await timed(() => bridge.callTool({ name: 'fake__big', arguments: { bytes: 1024 * 1024 } })),
      );
    }
    const daemonBig = (daemonCpuMs(daemon.pid) - bigCpu.daemon) / N_BIG;
    const fixtureBig = (daemonCpuMs(viaHttp.pid) - bigCpu.fixture) / N_BIG;
    report(
      '1 MiB result: server CPU vs direct HTTP',
      ms(fixtureBig),
      ms(daemonBig),
      `ratio ${(daemonBig / fixtureBig).toFixed(2)} (target <= 1.5); p50 ${ms(median(hBig))} vs ${ms(median(bBig2))}`,
    );
    const huge = await bridge.callTool({ name: 'fake__big', arguments: { bytes: 12_000_000 } });
    if (huge.content?.[0]?.text?.length !== 12_000_000)
      throw new Error('the 12 MB result did not arrive whole');
    report('12 MB result through the bridge', '', 'ok', '');

    // 1c. A remote upstream: direct HTTP to a fixture vs the bridge in front of another one.
    const h2 = [];
    const r = [];
    for (let i = 0; i < 100; i++) await bridge.callTool({ name: 'remote__echo', arguments: { text: 'w' } });
    for (let i = 0; i < N_SMALL; i++) {
      h2.push(await timed(() => viaHttp.client.callTool({ name: 'echo', arguments: { text: 'hi' } })));
      r.push(await timed(() => bridge.callTool({ name: 'remote__echo', arguments: { text: 'hi' } })));
    }
    report(
      'remote HTTP upstream tools/call p50',
      ms(median(h2)),
      ms(median(r)),
      `added ${ms(median(r) - median(h2))} (HTTP in, HTTP out)`,
    );

    // 2. Throughput with 8 concurrent sessions (direct: 8 concurrent callers on one connection).
    const sessions = await Promise.all(Array.from({ length: 8 }, () => bridgeClient(daemon.url)));
    const loop = async (fn) => {
      let count = 0;
      const end = now() + THROUGHPUT_MS;
      while (now() < end) {
        await fn();
        count++;
      }
      return count;
    };
    let loadRss = 0;
    const sampler = setInterval(() => {
      loadRss = Math.max(loadRss, rssMiB(daemon.pid));
    }, 100);
    const directCount = (
      await Promise.all(
        Array.from({ length: 8 }, () =>
          loop(() => direct.callTool({ name: 'echo', arguments: { text: 'x' } })),
        ),
      )
    ).reduce((a, c) => a + c, 0);
    const cpuBefore = daemonCpuMs(daemon.pid);
    const bridgeCount = (
      await Promise.all(
        sessions.map((s) => loop(() => s.callTool({ name: 'fake__echo', arguments: { text: 'x' } }))),
      )
    ).reduce((a, c) => a + c, 0);
    const daemonCpuPerCall = (daemonCpuMs(daemon.pid) - cpuBefore) / bridgeCount;
    clearInterval(sampler);
    // The fixture serves one HTTP session: 8 calls in flight on one client, on both sides.
    const eightInFlight = async (fn) =>
      (await Promise.all(Array.from({ length: 8 }, () => loop(fn)))).reduce((a, c) => a + c, 0);
    const httpCount = await eightInFlight(() =>
      viaHttp.client.callTool({ name: 'echo', arguments: { text: 'x' } }),
    );
    const oneClientCount = await eightInFlight(() =>
      bridge.callTool({ name: 'fake__echo', arguments: { text: 'x' } }),
    );
    await viaHttp.close();
    const dRate = directCount / (THROUGHPUT_MS / 1000);
    const bRate = bridgeCount / (THROUGHPUT_MS / 1000);
    report(
      'throughput, 8 concurrent',
      `${dRate.toFixed(0)} calls/s`,
      `${bRate.toFixed(0)} calls/s`,
      `ratio ${(bRate / dRate).toFixed(2)}; daemon CPU ${daemonCpuPerCall.toFixed(2)} ms/call`,
    );
    const hRate = httpCount / (THROUGHPUT_MS / 1000);
    const oRate = oneClientCount / (THROUGHPUT_MS / 1000);
    report(
      'throughput, 8 in flight vs direct HTTP',
      `${hRate.toFixed(0)} calls/s`,
      `${oRate.toFixed(0)} calls/s`,
      `ratio ${(oRate / hRate).toFixed(2)} (one client each; target >= 1.00)`,
    );
    await Promise.all(sessions.map((s) => s.close()));

    // 3. 1 MB result, interleaved.
    const dBig = [];
    const bBig = [];
    for (let i = 0; i < N_BIG; i++) {
      dBig.push(await timed(() => direct.callTool({ name: 'big', arguments: { bytes: 1024 * 1024 } })));
      bBig.push(await timed(() => bridge.callTool({ name: 'fake__big', arguments: { bytes: 1024 * 1024 } })));
    }
    report(
      '1 MB result p50',
      ms(median(dBig)),
      ms(median(bBig)),
      `ratio ${(median(bBig) / median(dBig)).toFixed(2)}`,
    );

    // 4. tools/list with 2,000 merged tools (1,992 + 8 from "many", 8 from "fake" → 2,008).
    const dList = [];
    const bList = [];
    let merged = 0;
    for (let i = 0; i < N_LIST; i++) {
      dList.push(await timed(() => manyDirect.listTools()));
      bList.push(
        await timed(async () => {
          merged = (await bridge.listTools()).tools.length;
        }),
      );
    }
    report(
      `tools/list, ${merged} merged tools p50`,
      ms(median(dList)),
      ms(median(bList)),
      '(target < 20 ms)',
    );

    await direct.close();
    await bridge.close();
    report(
      'daemon RSS idle / peak under load',
      '',
      `${idleRss.toFixed(1)} MiB`,
      `peak ${loadRss.toFixed(1)} MiB`,
    );

    // 6. The stdio shim (what Claude Desktop spawns): process start to the answer to initialize, against
    //    a bare `node -e ""` (start to exit) and a fresh Node doing the same initialize with fetch.
    const bare = [];
    const fetched = [];
    const shimmed = [];
    const shimRss = [];
    const fetchScript = fetchInitializeScript(daemon.url);
    for (let i = -1; i < SHIM_RUNS; i++) {
      const b0 = (await timeProcess(['-e', ''], { untilExit: true })).elapsed;
      const f = await timeProcess(['-e', fetchScript]);
      await f.exited;
      const s = await timeProcess([BIN, 'stdio', '--url', daemon.url], { stdin: initializeLine });
      const rss = rssMiB(s.child.pid);
      if (!JSON.parse(s.line).result) throw new Error(`the shim did not initialize: ${s.line}`);
      s.child.stdin.end();
      const [code] = await s.exited;
      if (code !== 0) throw new Error(`the shim exited with ${code}`);
      if (i < 0) continue; // warm-up (disk cache)
      bare.push(b0);
      fetched.push(f.elapsed);
      shimmed.push(s.elapsed);
      shimRss.push(rss);
    }
    report(
      'shim start → initialize answered p50',
      ms(median(bare)),
      ms(median(shimmed)),
      `ratio ${(median(shimmed) / median(bare)).toFixed(2)} vs bare \`node -e ""\` (start→exit); fresh node + fetch initialize ${ms(median(fetched))}`,
    );
    // A bare Node process, idle, for the RSS baseline.
    const idle = await timeProcess(['-e', 'console.log(1); setInterval(() => {}, 1000)']);
    const bareRss = rssMiB(idle.child.pid);
    idle.child.kill();
    await idle.exited;

    // 7. Added latency of the shim hop: the same small call as raw JSON lines through one long-lived
    //    shim vs a bare fetch client straight to the daemon, interleaved.
    const shim = await shimSession(daemon.url);
    const raw = await rawHttpSession(daemon.url);
    for (let i = 0; i < 100; i++) {
      await raw.call('fake__echo', { text: 'w' });
      await shim.call('fake__echo', { text: 'w' });
    }
    const viaRaw = [];
    const viaShim = [];
    const shimCpuBefore = daemonCpuMs(shim.pid);
    for (let i = 0; i < N_SMALL; i++) {
      viaRaw.push(await timed(() => raw.call('fake__echo', { text: 'hi' })));
      viaShim.push(
        await timed(async () => {
          const result = await shim.call('fake__echo', { text: 'hi' });
          if (result.content?.[0]?.text !== 'hi')
            throw new Error(`unexpected answer ${JSON.stringify(result)}`);
        }),
      );
    }
    const shimCpuPerCall = (daemonCpuMs(shim.pid) - shimCpuBefore) / N_SMALL;
    const shimRssAfter = rssMiB(shim.pid);
    await shim.close();
    await raw.close();
    report(
      'shim RSS after initialize (median)',
      `${bareRss.toFixed(1)} MiB`,
      `${median(shimRss).toFixed(1)} MiB`,
      `direct: idle bare node; shim after ${N_SMALL + 100} calls ${shimRssAfter.toFixed(1)} MiB`,
    );
    report(
      'shim tools/call p50 vs direct HTTP',
      ms(median(viaRaw)),
      ms(median(viaShim)),
      `added ${ms(median(viaShim) - median(viaRaw))} (stdio hop; both raw JSON, no SDK); shim CPU ${shimCpuPerCall.toFixed(2)} ms/call`,
    );
    report(
      'shim tools/call p99 vs direct HTTP',
      ms(pct(viaRaw, 99)),
      ms(pct(viaShim, 99)),
      `added ${ms(pct(viaShim, 99) - pct(viaRaw, 99))}`,
    );
  } finally {
    await manyDirect.close();
    await daemon.stop();
    remote.child.kill();
  }

  // 5. Cold start to the first answered tools/list, from cache, with the upstream hanging.
  let oneUpstreamRss = 0;
  const coldBridge = [];
  const coldDirect = [];
  const coldDir = tempDir();
  try {
    const warm = await startDaemon(coldDir, { fake: { command: process.execPath, args: [FAKE] } });
    await waitReady(warm.url, ['fake']);
    await new Promise((r) => setTimeout(r, 1000));
    oneUpstreamRss = rssMiB(warm.pid);
    await warm.stop();
    for (let i = 0; i < COLD_RUNS; i++) {
      coldDirect.push(
        await timed(async () => {
          const c = await directClient();
          await c.listTools();
          await c.close();
        }),
      );
      const hanging = await startDaemon(coldDir, {
        fake: { command: process.execPath, args: [FAKE], env: { FAKE_HANG: '1' } },
      });
      const c = await bridgeClient(hanging.url);
      const { tools } = await c.listTools();
      coldBridge.push(now() - hanging.startedAt);
      if (tools.length === 0) throw new Error('cold start answered without the cached tools');
      await c.close();
      await hanging.stop();
    }
  } finally {
    rmSync(coldDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
  report(
    'cold start → first tools/list p50',
    ms(median(coldDirect)),
    ms(median(coldBridge)),
    '(bridge: process start to answer from cache, upstream hanging; direct: spawn+handshake+list; target < 500 ms)',
  );
  report('daemon RSS idle, one upstream', '', `${oneUpstreamRss.toFixed(1)} MiB`, '(target <= 70 MB)');
}

await main();
