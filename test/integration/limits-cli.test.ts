import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config/schema.js';
import { authHeaders, makeTempDir } from '../helpers/bridge.js';
import { cliEnv, type RunningBridge, startCli } from '../helpers/cli.js';
import { fakeServerEntry } from '../helpers/fake-server.js';
import { INITIALIZE, raw } from '../helpers/raw-http.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Peak resident memory the daemon may reach while 100 clients send 4 MB bodies at once (with the
 * default maxBodyBytesInFlight of 64 MiB). Measured: 450-555 MB; without the limit: 1,770-2,180 MB.
 */
const PEAK_RSS_BOUND_MB = 800;

/** The daemon's memory as Linux reports it (kB in /proc/<pid>/status), in MB. */
function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)![1]) / 1024;
  return { rssMb: field('VmRSS'), peakMb: field('VmHWM') };
}

// Memory is read from /proc; the limits themselves are covered on every platform by limits.test.ts.
describe.skipIf(!existsSync('/proc/self/status'))(
  'the limits of a real daemon process (mcp-bridge start)',
  () => {
    let bridge: RunningBridge;
    let cleanup: () => void;

    beforeAll(async () => {
      const temp = makeTempDir();
      cleanup = temp.cleanup;
      mkdirSync(join(temp.dir, 'config'));
      writeFileSync(
        join(temp.dir, 'config', 'config.json'),
        JSON.stringify({ mcpServers: { fake: fakeServerEntry() } }),
      );
      bridge = await startCli(cliEnv(temp.dir, { MCP_BRIDGE_LOG_LEVEL: 'warn' }));
      await waitFor(async () => {
        const status = await raw(bridge.port, {
          method: 'GET',
          path: '/status',
          headers: authHeaders(bridge),
        });
        return JSON.parse(status.body).upstreams?.[0]?.state === 'ready';
      }, 'the upstream to be ready');
    });

    afterAll(async () => {
      await bridge?.stop();
      cleanup?.();
    });

    it(`stays under ${PEAK_RSS_BOUND_MB} MB peak RSS through 100 concurrent 4 MB bodies, refusing what does not fit with 503`, {
      timeout: 60_000,
    }, async () => {
      const opened = await raw(bridge.port, { headers: authHeaders(bridge), body: INITIALIZE });
      const headers = {
        ...authHeaders(bridge),
        'mcp-session-id': opened.headers['mcp-session-id'] as string,
        'mcp-protocol-version': '2025-11-25',
      };
      // The 4 MB of each body are one shared buffer: the test process itself stays small.
      const text = Buffer.from('x'.repeat(4 * 1024 * 1024 - 200));
      const tail = Buffer.from('"}}}');
      const responses = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          raw(bridge.port, {
            headers,
            body: [
              Buffer.from(
                `{"jsonrpc":"2.0","id":${i + 2},"method":"tools/call","params":{"name":"fake__echo","arguments":{"text":"`,
              ),
              text,
              tail,
            ],
          }),
        ),
      );
      const peakMb = memoryOf(bridge.child.pid!).peakMb;
      expect(peakMb).toBeLessThan(PEAK_RSS_BOUND_MB);

      const served = responses.filter((r) => r.status === 200);
      const refused503 = responses.filter((r) => r.status === 503);
      expect(served.length + refused503.length).toBe(responses.length);
      expect(served.length).toBeGreaterThan(0);
      expect(refused503.length).toBeGreaterThan(0);
      expect(served[0]!.body).toContain('"echoed"');
      for (const refused of refused503) {
        expect(refused.headers['retry-after']).toBe('1');
        expect(JSON.parse(refused.body).error.data.code).toBe('BODY_BYTES_IN_FLIGHT');
      }
    });

    it(`keeps at most maxSessions (${DEFAULTS.maxSessions}) sessions through 5,000 initialize calls`, {
      timeout: 60_000,
    }, async () => {
      const status = async () =>
        JSON.parse(
          (await raw(bridge.port, { method: 'GET', path: '/status', headers: authHeaders(bridge) })).body,
        ) as { sessions: number };
      const already = (await status()).sessions;
      const before = memoryOf(bridge.child.pid!).rssMb;
      const counts = new Map<number, number>();
      for (let sent = 0; sent < 5000; sent += 50) {
        const batch = await Promise.all(
          Array.from({ length: 50 }, () =>
            raw(bridge.port, { headers: authHeaders(bridge), body: INITIALIZE }),
          ),
        );
        for (const response of batch) {
          counts.set(response.status, (counts.get(response.status) ?? 0) + 1);
          if (response.status === 503) expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
        }
      }
      expect(counts.get(200)).toBe(DEFAULTS.maxSessions - already);
      expect(counts.get(503)).toBe(5000 - (DEFAULTS.maxSessions - already));
      expect((await status()).sessions).toBe(DEFAULTS.maxSessions);
      // About 23 KB of heap per session (measured in-process after GC); RSS also keeps garbage.
      expect(memoryOf(bridge.child.pid!).rssMb - before).toBeLessThan(200);
    });
  },
);
