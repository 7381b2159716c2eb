// What the activity log and the metrics cost a small call: two daemons in one run, the same but
// for `activityLog.enabled` and `metrics.enabled`, calls in alternating blocks so machine noise
// hits both alike. The budget is 5 % of p50 and of daemon CPU.
import { join } from 'node:path';
import { tempDir } from './processes.js';
import { bridgeClient, FAKE, startDaemon, waitReady } from './servers.js';
import { daemonCpuMs, median, ms, report, timed } from './stats.js';

export async function benchObservability({ blocks, callsPerBlock }) {
  const servers = { fake: { command: process.execPath, args: [FAKE] } };
  const off = await startDaemon(
    join(tempDir(), 'off'),
    servers,
    {},
    {
      activityLog: { enabled: false },
      metrics: { enabled: false },
    },
  );
  const on = await startDaemon(join(tempDir(), 'on'), servers);
  const sides = [
    { name: 'off', daemon: off, latency: [], cpuMs: 0 },
    { name: 'on', daemon: on, latency: [], cpuMs: 0 },
  ];
  try {
    for (const side of sides) {
      await waitReady(side.daemon.url, ['fake']);
      side.client = await bridgeClient(side.daemon.url);
      for (let i = 0; i < 300; i++)
        await side.client.callTool({ name: 'fake__echo', arguments: { text: 'w' } });
    }
    for (let block = 0; block < blocks; block++) {
      for (const side of block % 2 ? sides : [...sides].reverse()) {
        const cpuBefore = daemonCpuMs(side.daemon.pid);
        for (let i = 0; i < callsPerBlock; i++) {
          side.latency.push(
            await timed(() => side.client.callTool({ name: 'fake__echo', arguments: { text: 'hi' } })),
          );
        }
        side.cpuMs += daemonCpuMs(side.daemon.pid) - cpuBefore;
      }
    }
  } finally {
    for (const side of sides) {
      await side.client?.close();
      await side.daemon.stop();
    }
  }
  const [o, n] = sides;
  const calls = blocks * callsPerBlock;
  report(
    'activity log + metrics: small call p50',
    ms(median(o.latency)),
    ms(median(n.latency)),
    `ratio ${(median(n.latency) / median(o.latency)).toFixed(3)} (direct column: both off; target <= 1.05)`,
  );
  report(
    'activity log + metrics: daemon CPU per call',
    ms(o.cpuMs / calls),
    ms(n.cpuMs / calls),
    `ratio ${(n.cpuMs / o.cpuMs).toFixed(3)} (direct column: both off; target <= 1.05)`,
  );
}
