import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ActivityEntry } from '../../src/activity/activity-log.js';
import { makeTempDir } from '../helpers/bridge.js';
import { BIN, cliEnv, runCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

const T0 = new Date();
T0.setHours(12, 3, 4, 0);

function entry(overrides: Partial<ActivityEntry> = {}): ActivityEntry {
  return {
    time: T0.toISOString(),
    kind: 'tool',
    client: { name: 'claude-ai', session: 's-1', era: '2025', listener: 'local' },
    name: 'notes__search',
    original: 'search',
    upstream: 'notes',
    durationMs: 12,
    outcome: 'ok',
    resultBytes: 1234,
    ...overrides,
  };
}

/** cliEnv, keeping the time zone: the human lines are in local time. */
function env(dir: string): NodeJS.ProcessEnv {
  return { ...cliEnv(dir), ...(process.env.TZ !== undefined && { TZ: process.env.TZ }) };
}

function lines(entries: ActivityEntry[]): string {
  return entries.map((e) => `${JSON.stringify(e)}\n`).join('');
}

// Runs bin/ (dist/): `npm test` builds first (pretest); a direct `npx vitest run` needs `npm run build`.
describe('mcp-bridge activity', () => {
  const cleanups: (() => void)[] = [];
  let dir: string;
  let logs: string;

  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  function setUp(): void {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    dir = temp.dir;
    logs = join(dir, 'logs');
    mkdirSync(logs, { recursive: true });
    // Rotated and current files, and a main-log file that must not be read.
    writeFileSync(
      join(logs, 'mcp-bridge-activity.1.jsonl'),
      lines([
        entry({ name: 'old__one', upstream: 'old', durationMs: 1500 }),
        entry({
          kind: 'resource',
          upstream: 'files',
          name: 'file:///a\u001b[31m',
          outcome: 'tool_error',
          resultBytes: 2_500_000,
        }),
      ]),
    );
    writeFileSync(
      join(logs, 'mcp-bridge-activity.2.jsonl'),
      `${lines([
        entry(),
        entry({
          name: 'nope__x',
          upstream: undefined,
          original: undefined,
          outcome: 'error',
          errorCode: 'UNKNOWN_TOOL',
          resultBytes: undefined,
          client: { name: 'chatgpt', era: '2026-07-28', listener: 'public', requestId: 3 },
        }),
      ])}{"torn`,
    );
    writeFileSync(join(logs, 'mcp-bridge.1.log'), '{"msg":"main log"}\n');
  }

  it('prints the entries of all files, oldest first, for people', async () => {
    setUp();
    const result = await runCli(['activity'], env(dir));
    expect(result.code).toBe(0);
    expect(result.stdout.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^12:03:04 {2}claude-ai +old__one +ok +1\.5 s {2}1\.2 kB$/),
      // Kind named when not a tool; a terminal escape from a client is shown, not obeyed.
      expect.stringMatching(
        /^12:03:04 {2}claude-ai +resource file:\/\/\/a\\x1b\[31m +tool error +12 ms {2}2\.5 MB$/,
      ),
      expect.stringMatching(/^12:03:04 {2}claude-ai +notes__search +ok +12 ms {2}1\.2 kB$/),
      expect.stringMatching(/^12:03:04 {2}chatgpt \(public\) +nope__x +error UNKNOWN_TOOL +\d+ ms$/),
    ]);
  });

  it('prints raw JSON lines with --json, filters by --upstream, limits with --limit', async () => {
    setUp();
    const json = await runCli(['activity', '--json'], env(dir));
    expect(json.code).toBe(0);
    const parsed = json.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as ActivityEntry);
    expect(parsed.map((e) => e.name)).toEqual([
      'old__one',
      'file:///a\u001b[31m',
      'notes__search',
      'nope__x',
    ]);

    const notes = await runCli(['activity', '--json', '--upstream', 'notes'], env(dir));
    expect(
      notes.stdout
        .trimEnd()
        .split('\n')
        .map((l) => (JSON.parse(l) as ActivityEntry).name),
    ).toEqual(['notes__search']);
    const last = await runCli(['activity', '--limit', '1'], env(dir));
    expect(last.stdout).toContain('nope__x');
    expect(last.stdout.trimEnd().split('\n')).toHaveLength(1);

    const none = await runCli(['activity', '--upstream', 'ghost'], env(dir));
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('no activity for upstream "ghost"');

    const bad = await runCli(['activity', '--limit', 'lots'], env(dir));
    expect(bad.code).toBe(2);
  });

  it('says so when there is no activity yet, and exits 0', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    const result = await runCli(['activity'], env(temp.dir));
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`no activity yet: no mcp-bridge-activity.<n>.jsonl files for`);
    expect(result.stderr).toContain(join(temp.dir, 'logs', 'mcp-bridge-activity.jsonl'));
  });

  it('--follow waits for the first file when there is none yet', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    const child = spawn(process.execPath, [BIN, 'activity', '-f'], { env: env(temp.dir), stdio: 'pipe' });
    const exited = once(child, 'exit');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    try {
      await waitFor(() => stderr.includes('no activity yet'), 'the message');
      mkdirSync(join(temp.dir, 'logs'));
      writeFileSync(
        join(temp.dir, 'logs', 'mcp-bridge-activity.1.jsonl'),
        lines([entry({ name: 'first__call' })]),
      );
      await waitFor(() => stdout.includes('first__call'), 'the first line');
    } finally {
      process.kill(child.pid!, 'SIGINT');
    }
    expect((await exited)[0]).toBe(0);
  });

  it('--follow prints appended lines, the rest of a torn line, and a rotated file', async () => {
    setUp();
    const child = spawn(process.execPath, [BIN, 'activity', '--follow', '--json'], {
      env: env(dir),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = once(child, 'exit');
    let stdout = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    try {
      await waitFor(() => stdout.includes('nope__x'), 'the existing lines');
      const current = join(logs, 'mcp-bridge-activity.2.jsonl');
      // Completes the torn line; a broken line is skipped, the next one shown.
      appendFileSync(current, `"}\n${lines([entry({ name: 'notes__appended' })])}`);
      await waitFor(() => stdout.includes('notes__appended'), 'the appended line');
      appendFileSync(current, lines([entry({ name: 'notes__before_rotation' })]));
      writeFileSync(join(logs, 'mcp-bridge-activity.3.jsonl'), lines([entry({ name: 'notes__rotated' })]));
      await waitFor(() => stdout.includes('notes__rotated'), 'the rotated file');
      const names = stdout
        .trimEnd()
        .split('\n')
        .map((l) => (JSON.parse(l) as ActivityEntry).name);
      expect(names).toEqual([
        'old__one',
        'file:///a\u001b[31m',
        'notes__search',
        'nope__x',
        'notes__appended',
        'notes__before_rotation',
        'notes__rotated',
      ]);
    } finally {
      process.kill(child.pid!, 'SIGINT');
    }
    const [code] = await exited;
    expect(code).toBe(0);
  });
});
