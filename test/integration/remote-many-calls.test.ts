import { type ChildProcess, spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { FAKE_SERVER } from '../helpers/fake-server.js';
import { INITIALIZE, raw } from '../helpers/raw-http.js';
import { httpUpstream } from '../helpers/remote.js';
import { waitFor } from '../helpers/wait.js';

describe('a remote upstream under many calls', () => {
  let daemon: Daemon | undefined;
  let fixture: ChildProcess | undefined;
  let cleanup = () => {};

  afterEach(async () => {
    await daemon?.close();
    fixture?.kill();
    cleanup();
  });

  it('makes 2,000 calls without a MaxListenersExceededWarning in the daemon', {
    timeout: 60_000,
  }, async () => {
    fixture = spawn(process.execPath, [FAKE_SERVER], {
      env: { ...process.env, FAKE_HTTP: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const url = await new Promise<string>((resolve) =>
      fixture!.stdout!.once('data', (chunk) => resolve(String(chunk).trim())),
    );
    const temp = makeTempDir();
    cleanup = temp.cleanup;
    daemon = await startTestDaemon(temp.dir, [httpUpstream('remote', url)]);
    await waitFor(() => daemon!.registry.snapshots()[0]?.state === 'ready', 'the remote upstream');
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    try {
      // A raw client (a fetch per call, no shared signal): only the daemon's fetches can warn.
      const port = daemon.port;
      const opened = await raw(port, { headers: authHeaders(daemon), body: INITIALIZE });
      const headers = {
        ...authHeaders(daemon),
        'mcp-session-id': String(opened.headers['mcp-session-id']),
        'mcp-protocol-version': '2025-11-25',
      };
      for (let i = 0; i < 2000; i++) {
        const body = {
          jsonrpc: '2.0',
          id: i + 2,
          method: 'tools/call',
          params: { name: 'remote__echo', arguments: { text: 'x' } },
        };
        const answer = await raw(port, { headers, body: JSON.stringify(body) });
        expect(answer.status).toBe(200);
      }
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
  });
});
