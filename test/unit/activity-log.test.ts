import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultActivityPath, listActivityFiles } from '../../src/activity/activity-files.js';
import {
  type ActivityEntry,
  ActivityLog,
  type ActivityRecord,
  RECENT_LIMIT,
  REDACTION_FAILED,
} from '../../src/activity/activity-log.js';
import { makeTempDir } from '../helpers/bridge.js';
import { waitFor } from '../helpers/wait.js';

const GHP = `ghp_${'A1b2C3d4E5'.repeat(4)}`;

function call(overrides: Partial<ActivityRecord> = {}): ActivityRecord {
  return {
    kind: 'tool',
    client: { name: 'claude-ai', session: 's-1', requestId: 7, era: '2025', listener: 'local' },
    name: 'notes__search',
    original: 'search',
    upstream: 'notes',
    durationMs: 12,
    outcome: 'ok',
    resultBytes: 1234,
    ...overrides,
  };
}

describe('ActivityLog', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  function tempFile(): string {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    return defaultActivityPath(join(temp.dir, 'logs', 'mcp-bridge.log'));
  }

  async function written(file: string): Promise<ActivityEntry[]> {
    const files = await listActivityFiles(file);
    return files.flatMap((f) =>
      readFileSync(f.file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as ActivityEntry),
    );
  }

  it('sits beside the main log under a name of its own', () => {
    expect(defaultActivityPath('/var/log/mcp-bridge.log')).toBe('/var/log/mcp-bridge-activity.jsonl');
    expect(defaultActivityPath('/tmp/bridge')).toBe('/tmp/bridge-activity.jsonl');
  });

  it('writes one JSON line per entry, only the entry, into a 0600 file; no arguments unless asked', async () => {
    const file = tempFile();
    const log = ActivityLog.open({ file, recordArguments: false, knownSecrets: () => [] });
    log.record(call({ arguments: { q: 'x' }, result: { content: [] } }));
    log.record(call({ name: 'nope__x', upstream: undefined, outcome: 'error', errorCode: 'UNKNOWN_TOOL' }));
    await log.close();

    const files = await listActivityFiles(file);
    expect(files.map((f) => f.file)).toEqual([file.replace(/\.jsonl$/, '.1.jsonl')]);
    if (process.platform !== 'win32') expect(statSync(files[0]!.file).mode & 0o777).toBe(0o600);
    const entries = await written(file);
    expect(entries).toHaveLength(2);
    const [first, second] = entries;
    expect(Object.keys(first!).sort()).toEqual(
      [
        'client',
        'durationMs',
        'kind',
        'name',
        'original',
        'outcome',
        'resultBytes',
        'time',
        'upstream',
      ].sort(),
    );
    expect(first).toMatchObject({ ...call(), time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    expect(second).toMatchObject({ name: 'nope__x', outcome: 'error', errorCode: 'UNKNOWN_TOOL' });
    expect(second).not.toHaveProperty('upstream');
  });

  it('records redacted arguments and results when asked, with known secrets asked for each time', async () => {
    const file = tempFile();
    let known = ['first-secret'];
    const log = ActivityLog.open({ file, recordArguments: true, knownSecrets: () => known });
    log.record(
      call({
        arguments: { q: 'first-secret second-secret', password: 'hunter2' },
        result: { content: [{ type: 'text', text: `your token ${GHP}` }] },
      }),
    );
    known = ['second-secret'];
    log.record(call({ arguments: { q: 'first-secret second-secret' } }));
    log.record(call({ result: { big: true }, resultBytes: 10_000_000 }));
    await log.close();

    const [first, second, third] = await written(file);
    expect(first!.arguments).toEqual({ q: '[redacted] second-secret', password: '[redacted]' });
    expect(first!.result).toEqual({ content: [{ type: 'text', text: 'your token [redacted]' }] });
    expect(second!.arguments).toEqual({ q: 'first-secret [redacted]' });
    expect(third!.result).toBe('[not recorded: 10000000 bytes]');
    expect(readFileSync((await listActivityFiles(file))[0]!.file, 'utf8')).not.toContain('hunter2');
  });

  it('keeps the last entries in memory, newest last', async () => {
    const file = tempFile();
    const log = ActivityLog.open({ file, recordArguments: false, knownSecrets: () => [] });
    for (let i = 0; i < RECENT_LIMIT + 5; i++) log.record(call({ durationMs: i }));
    expect(log.recent()).toHaveLength(RECENT_LIMIT);
    expect(log.recent().at(0)!.durationMs).toBe(5);
    expect(log.recent(3).map((e) => e.durationMs)).toEqual([
      RECENT_LIMIT + 2,
      RECENT_LIMIT + 3,
      RECENT_LIMIT + 4,
    ]);
    expect(log.recent(0)).toEqual([]);
    await log.close();
    expect(await written(file)).toHaveLength(RECENT_LIMIT + 5);
  });

  it('never throws: a failed redaction leaves arguments out but keeps the call; records after close are ignored', async () => {
    const file = tempFile();
    const errors: Error[] = [];
    const log = ActivityLog.open({
      file,
      recordArguments: true,
      knownSecrets: () => {
        throw new Error('config gone');
      },
      onError: (error) => {
        errors.push(error);
        throw new Error('reporter broken too');
      },
    });
    expect(() => log.record(call({ arguments: { q: 'x' } }))).not.toThrow();
    expect(() => log.record(call({ resultBytes: 10n as unknown as number }))).not.toThrow();
    expect(log.recent().at(0)).toMatchObject({ name: 'notes__search', arguments: REDACTION_FAILED });
    // Lines are written in batches: the one JSON cannot write is reported then, and left out.
    await log.close();
    expect(errors.map((e) => e.message)).toEqual(['config gone', 'Do not know how to serialize a BigInt']);
    expect(() => log.record(call())).not.toThrow();
    await log.close();
    expect(await written(file)).toHaveLength(1);
  });

  it('survives a writer that cannot write: one report, entries kept in memory, close resolves', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    const blocker = join(temp.dir, 'not-a-dir');
    writeFileSync(blocker, '');
    const errors: Error[] = [];
    const log = ActivityLog.open({
      file: join(blocker, 'activity.jsonl'),
      recordArguments: false,
      knownSecrets: () => [],
      onError: (error) => errors.push(error),
    });
    log.record(call());
    await waitFor(() => errors.length > 0, 'the writer to fail');
    log.record(call());
    await new Promise((r) => setTimeout(r, 50));
    await log.close();
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/ENOTDIR|EEXIST|not a directory/);
    expect(log.recent()).toHaveLength(2);
  });

  it('rotates by size into numbered files that the reader lists oldest first', async () => {
    const file = tempFile();
    const log = ActivityLog.open({ file, recordArguments: false, knownSecrets: () => [], rotateSize: '1k' });
    for (let i = 0; i < 40; i++) {
      log.record(call({ durationMs: i }));
      // pino-roll checks the size after each write reaches the file: let the worker write.
      await new Promise((r) => setTimeout(r, 5));
    }
    await log.close();
    const files = await listActivityFiles(file);
    expect(files.length).toBeGreaterThan(1);
    expect(files.map((f) => f.number)).toEqual([...files.map((f) => f.number)].sort((a, b) => a - b));
    expect((await written(file)).map((e) => e.durationMs)).toEqual([...Array(40).keys()]);
  });
});
