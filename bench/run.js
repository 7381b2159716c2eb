#!/usr/bin/env node
// Benchmarks (not tests): the bridge against a direct stdio connection to the same fixture server,
// measured in one run and interleaved, so machine noise hits both sides alike. Prints medians and
// ratios; asserts nothing. Usage: npm run bench [-- --quick]
import { connectorToken, freePort } from './connector.js';
import { benchObservability } from './observability.js';
import { runBench, tempDir } from './processes.js';
import {
  bridgeClient,
  directClient,
  directHttpClient,
  FAKE,
  httpFixture,
  startDaemon,
  TOKENS,
  waitReady,
} from './servers.js';
import { benchShim } from './shim.js';
import { daemonCpuMs, median, ms, now, pct, report, rssMiB, timed } from './stats.js';

// The SDK client's transport adds an abort listener per fetch to one long-lived signal (undici
// drops them only when the Request is collected); thousands of calls trip Node's leak warning.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name !== 'MaxListenersExceededWarning') console.warn(warning);
});

const quick = process.argv.includes('--quick');
const N_SMALL = quick ? 300 : 2000;
const N_BIG = quick ? 20 : 100;
const N_LIST = quick ? 20 : 100;
const THROUGHPUT_MS = quick ? 1500 : 5000;
const COLD_RUNS = quick ? 3 : 7;
const SHIM_RUNS = quick ? 5 : 15;

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

    await benchShim(daemon.url, { runs: SHIM_RUNS, calls: N_SMALL });
  } finally {
    await manyDirect.close();
    await daemon.stop();
    remote.child.kill();
  }

  // 4b. What the activity log and the metrics add to a small call (two daemons, one with both off).
  await benchObservability({ blocks: quick ? 4 : 16, callsPerBlock: quick ? 200 : 400 });

  // 5. Cold start to the first answered tools/list, from cache, with the upstream hanging.
  let oneUpstreamRss = 0;
  const coldBridge = [];
  const coldDirect = [];
  // Both temp dirs go when the bench exits (processes.js).
  const coldDir = tempDir();
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
  report(
    'cold start → first tools/list p50',
    ms(median(coldDirect)),
    ms(median(coldBridge)),
    '(bridge: process start to answer from cache, upstream hanging; direct: spawn+handshake+list; target < 500 ms)',
  );
  report('daemon RSS idle, one upstream', '', `${oneUpstreamRss.toFixed(1)} MiB`, '(target <= 70 MB)');
}

runBench(main);
