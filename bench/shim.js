// The stdio shim's rows (what Claude Desktop spawns): its start-up, its memory, and the latency its
// hop adds per call, each against a bare Node process or a bare fetch client doing the same.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { auth, BIN } from './servers.js';
import { daemonCpuMs, median, ms, now, pct, report, rssMiB, timed } from './stats.js';

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

/** The shim rows against the daemon at `url`: `runs` shim start-ups, `calls` calls through one shim. */
export async function benchShim(url, { runs, calls }) {
  // 6. The stdio shim (what Claude Desktop spawns): process start to the answer to initialize, against
  //    a bare `node -e ""` (start to exit) and a fresh Node doing the same initialize with fetch.
  const bare = [];
  const fetched = [];
  const shimmed = [];
  const shimRss = [];
  const fetchScript = fetchInitializeScript(url);
  for (let i = -1; i < runs; i++) {
    const b0 = (await timeProcess(['-e', ''], { untilExit: true })).elapsed;
    const f = await timeProcess(['-e', fetchScript]);
    await f.exited;
    const s = await timeProcess([BIN, 'stdio', '--url', url], { stdin: initializeLine });
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
  const shim = await shimSession(url);
  const raw = await rawHttpSession(url);
  for (let i = 0; i < 100; i++) {
    await raw.call('fake__echo', { text: 'w' });
    await shim.call('fake__echo', { text: 'w' });
  }
  const viaRaw = [];
  const viaShim = [];
  const shimCpuBefore = daemonCpuMs(shim.pid);
  for (let i = 0; i < calls; i++) {
    viaRaw.push(await timed(() => raw.call('fake__echo', { text: 'hi' })));
    viaShim.push(
      await timed(async () => {
        const result = await shim.call('fake__echo', { text: 'hi' });
        if (result.content?.[0]?.text !== 'hi')
          throw new Error(`unexpected answer ${JSON.stringify(result)}`);
      }),
    );
  }
  const shimCpuPerCall = (daemonCpuMs(shim.pid) - shimCpuBefore) / calls;
  const shimRssAfter = rssMiB(shim.pid);
  await shim.close();
  await raw.close();
  report(
    'shim RSS after initialize (median)',
    `${bareRss.toFixed(1)} MiB`,
    `${median(shimRss).toFixed(1)} MiB`,
    `direct: idle bare node; shim after ${calls + 100} calls ${shimRssAfter.toFixed(1)} MiB`,
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
}
