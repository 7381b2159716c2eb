import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultActivityPath, listActivityFiles } from '../../src/activity/activity-files.js';
import type { ActivityEntry } from '../../src/activity/activity-log.js';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders, makeTempDir, startTestDaemon, testConfig } from '../helpers/bridge.js';
import { connectLikeChatGPT, startPublicDaemon } from '../helpers/connector.js';
import { fakeUpstream } from '../helpers/fake-server.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'sk-upstream-env-secret-value-0123456789';

async function client(url: string, era: '2025' | '2026-07-28', headers = authHeaders(url)) {
  const c = new Client(
    { name: `activity-${era}`, version: '3.1' },
    era === '2025' ? {} : { versionNegotiation: { mode: { pin: era } } },
  );
  await c.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return c;
}

describe('the activity log records every call', () => {
  const tmp = makeTempDir();
  let daemon: Daemon | undefined;
  afterEach(async () => {
    await daemon?.close();
    daemon = undefined;
  });

  it('tools (both eras, hot path and SDK path), prompts, resources, and calls that reached no upstream', async () => {
    daemon = await startTestDaemon(tmp.dir, [fakeUpstream('notes', { API_KEY: SECRET })]);
    await waitFor(() => daemon!.registry.get('notes')!.snapshot().state === 'ready', 'notes');
    const modern = await client(daemon.url, '2026-07-28');
    const legacy = await client(daemon.url, '2025');
    await legacy.callTool({ name: 'notes__echo', arguments: { text: `key ${SECRET}` } });
    await modern.callTool({ name: 'notes__echo', arguments: { text: 'modern' } });
    await legacy.callTool({ name: 'notes__fail', arguments: {} });
    await legacy.callTool({ name: 'notes__nope', arguments: {} }).catch(() => {});
    await legacy.getPrompt({ name: 'notes__greet', arguments: { who: 'you' } });
    await legacy.readResource({ uri: 'fake://readme' });
    await legacy.close();
    await modern.close();
    const entries = daemon.activity!.recent(10);
    expect(entries.map((e) => [e.kind, e.name, e.outcome, e.errorCode ?? null, e.client.era])).toEqual([
      ['tool', 'notes__echo', 'ok', null, '2025'],
      ['tool', 'notes__echo', 'ok', null, '2026-07-28'],
      ['tool', 'notes__fail', 'tool_error', null, '2025'],
      ['tool', 'notes__nope', 'error', 'UNKNOWN_TOOL', '2025'],
      ['prompt', 'notes__greet', 'ok', null, '2025'],
      ['resource', 'fake://readme', 'ok', null, '2025'],
    ]);
    const first = entries[0]!;
    expect(first).toMatchObject({
      upstream: 'notes',
      original: 'echo',
      client: { name: 'activity-2025', version: '3.1', listener: 'local' },
    });
    expect(first.client.session).toBeTruthy();
    expect(first.resultBytes).toBeGreaterThan(0);
    expect(entries[1]!.client.name).toBe('activity-2026-07-28');
    // Arguments and results are not recorded by default.
    expect(entries.every((e) => e.arguments === undefined && e.result === undefined)).toBe(true);
    await daemon.close();
    daemon = undefined;
    const files = await listActivityFiles(defaultActivityPath(testConfig(tmp.dir, []).logPath));
    const lines = files
      .flatMap((f) => readFileSync(f.file, 'utf8').trim().split('\n'))
      .map((l) => JSON.parse(l) as ActivityEntry);
    expect(lines.map((l) => l.name)).toEqual(entries.map((e) => e.name));
    expect(JSON.stringify(lines)).not.toContain(SECRET);
  });

  it('with activityLog.arguments, records them with the upstream secrets redacted', async () => {
    const dir = makeTempDir();
    try {
      daemon = await startTestDaemon(dir.dir, [fakeUpstream('notes', { API_KEY: SECRET })], {
        overrides: { activityLog: { arguments: true } },
      });
      await waitFor(() => daemon!.registry.get('notes')!.snapshot().state === 'ready', 'notes');
      const c = await client(daemon.url, '2025');
      await c.callTool({
        name: 'notes__echo',
        arguments: { text: `key ${SECRET} and Bearer abcdefghijklmnopqrstuvwxyz012345` },
      });
      await c.close();
      const [entry] = daemon.activity!.recent(1);
      const recorded = JSON.stringify(entry);
      expect(entry!.arguments).toBeDefined();
      expect(entry!.result).toBeDefined();
      expect(recorded).not.toContain(SECRET);
      expect(recorded).not.toContain('abcdefghijklmnopqrstuvwxyz012345');
      expect(recorded).toContain('key ');
    } finally {
      await daemon?.close();
      daemon = undefined;
      dir.cleanup();
    }
  });

  it('records calls on the public listener as such', async () => {
    const dir = makeTempDir();
    try {
      const pub = await startPublicDaemon(dir.dir, [fakeUpstream('notes')]);
      daemon = pub.daemon;
      await waitFor(() => daemon!.registry.get('notes')!.snapshot().state === 'ready', 'notes');
      const { tokens } = await connectLikeChatGPT(pub.resource);
      const c = await client(pub.resource, '2025', { authorization: `Bearer ${tokens.access_token}` });
      await c.callTool({ name: 'notes__echo', arguments: { text: 'public' } });
      await c.close();
      expect(daemon.activity!.recent(1)[0]).toMatchObject({
        name: 'notes__echo',
        outcome: 'ok',
        client: { listener: 'public' },
      });
    } finally {
      await daemon?.close();
      daemon = undefined;
      dir.cleanup();
    }
  });

  it('keeps no log and counts nothing with activityLog.enabled and metrics.enabled false', async () => {
    const dir = makeTempDir();
    try {
      daemon = await startTestDaemon(dir.dir, [fakeUpstream('notes')], {
        overrides: { activityLog: { enabled: false, arguments: true }, metrics: { enabled: false } },
      });
      await waitFor(() => daemon!.registry.get('notes')!.snapshot().state === 'ready', 'notes');
      const c = await client(daemon.url, '2025');
      expect(await c.callTool({ name: 'notes__echo', arguments: { text: 'off' } })).toMatchObject({
        content: [{ text: 'off' }],
      });
      await c.close();
      expect(daemon.activity).toBeUndefined();
      expect(daemon.metrics).toBeUndefined();
      const metrics = await fetch(new URL('/metrics', daemon.url), { headers: authHeaders(daemon.url) });
      expect(metrics.status).toBe(404);
      await daemon.close();
      daemon = undefined;
      expect(await listActivityFiles(defaultActivityPath(join(dir.dir, 'mcp-bridge.log')))).toEqual([]);
    } finally {
      await daemon?.close();
      daemon = undefined;
      dir.cleanup();
    }
  });
});
