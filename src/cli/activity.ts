import { open, readFile } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { type ActivityFile, defaultActivityPath, listActivityFiles } from '../activity/activity-files.js';
import type { ActivityEntry } from '../activity/activity-log.js';
import { defaultLogPath } from '../config/paths.js';
import { BridgeError } from '../errors.js';
import { parseCommandArgs } from './args.js';

const DEFAULT_LIMIT = 100;
const POLL_MS = 250;

interface Shown {
  readonly upstream: string | undefined;
  readonly json: boolean;
}

/** `mcp-bridge activity`: the activity log for people (or as JSON lines), oldest first. */
export async function runActivity(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseCommandArgs('activity', argv, {
    follow: { type: 'boolean', short: 'f' },
    upstream: { type: 'string' },
    json: { type: 'boolean' },
    limit: { type: 'string', short: 'n' },
  });
  const limit = parseLimit(values.limit);
  // The same log path as the daemon's (src/config/load.ts), so no config needs to load.
  const path = defaultActivityPath(resolve(env.MCP_BRIDGE_LOG_PATH || defaultLogPath(env)));
  const shown: Shown = { upstream: values.upstream, json: values.json === true };
  const files = await listActivityFiles(path);
  if (files.length === 0) {
    const stem = basename(path, extname(path));
    process.stderr.write(
      `no activity yet: no ${stem}.<n>${extname(path)} files for ${path} (the daemon writes them as it handles calls)\n`,
    );
    if (!values.follow) return 0;
  }
  const { lines, offset } = await lastLines(files, limit, shown);
  for (const line of lines) process.stdout.write(`${line}\n`);
  if (lines.length === 0 && files.length > 0 && !shown.json) {
    process.stderr.write(
      `no activity${shown.upstream ? ` for upstream "${shown.upstream}"` : ''} in ${path}\n`,
    );
  }
  if (!values.follow) return 0;
  await follow(path, files.at(-1), offset, shown);
  return 0;
}

function parseLimit(text: string | undefined): number {
  if (text === undefined) return DEFAULT_LIMIT;
  if (!/^\d+$/.test(text)) {
    throw new BridgeError('USAGE', `activity: --limit takes a whole number (0 for all), not "${text}"`);
  }
  return Number(text);
}

/**
 * The last `limit` shown lines (0: all), reading files from the newest back until there are enough,
 * and how far the newest file was read (up to its last complete line: the daemon may be mid-line).
 */
async function lastLines(
  files: readonly ActivityFile[],
  limit: number,
  shown: Shown,
): Promise<{ lines: string[]; offset: number }> {
  let collected: string[] = [];
  let offset = 0;
  for (let i = files.length - 1; i >= 0; i--) {
    let data: Buffer;
    try {
      data = await readFile(files[i]!.file);
    } catch {
      continue; // removed by rotation since it was listed
    }
    const complete = data.lastIndexOf(0x0a) + 1;
    if (i === files.length - 1) offset = complete;
    const lines = showable(data.subarray(0, complete).toString('utf8').split('\n'), shown);
    collected = [...lines, ...collected];
    if (limit > 0 && collected.length >= limit) break;
  }
  return { lines: limit > 0 ? collected.slice(-limit) : collected, offset };
}

/** The output for each of `raw` lines that parses and passes the filter. */
function showable(raw: readonly string[], shown: Shown): string[] {
  const out: string[] = [];
  for (const line of raw) {
    if (line.trim() === '') continue;
    let entry: Partial<ActivityEntry>;
    try {
      entry = JSON.parse(line) as Partial<ActivityEntry>;
    } catch {
      continue; // a torn line from a crash: nothing to show
    }
    if (typeof entry !== 'object' || entry === null || typeof entry.name !== 'string') continue;
    if (shown.upstream !== undefined && entry.upstream !== shown.upstream) continue;
    out.push(shown.json ? line : formatEntry(entry));
  }
  return out;
}

/**
 * Prints lines as they are appended, until SIGINT. Polls rather than fs.watch (which misses
 * events on some file systems); a rotation shows as a higher-numbered file, read after the rest
 * of the current one.
 */
async function follow(
  path: string,
  start: ActivityFile | undefined,
  startOffset: number,
  shown: Shown,
): Promise<void> {
  let current = start;
  let offset = startOffset;
  let pending = Buffer.alloc(0);
  let stopped = false;
  const stop = () => {
    stopped = true;
  };
  process.once('SIGINT', stop);
  // `activity -f | head`: the reader went away, so should we.
  process.stdout.on('error', stop);
  const drain = async (file: ActivityFile) => {
    const read = await readFrom(file.file, offset);
    if (read.restart) {
      offset = 0;
      pending = Buffer.alloc(0);
    }
    offset += read.data.length;
    const data = Buffer.concat([pending, read.data]);
    const complete = data.lastIndexOf(0x0a) + 1;
    pending = data.subarray(complete);
    for (const line of showable(data.subarray(0, complete).toString('utf8').split('\n'), shown)) {
      process.stdout.write(`${line}\n`);
    }
  };
  while (!stopped) {
    const files = await listActivityFiles(path);
    for (const file of files) {
      if (current && file.number < current.number) continue;
      if (current && file.number > current.number) {
        await drain(current);
        offset = 0;
        pending = Buffer.alloc(0);
      }
      current = file;
    }
    if (current) await drain(current);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  process.off('SIGINT', stop);
}

/** The bytes of `file` past `offset`; `restart` when the file is shorter (replaced): then all of it. */
async function readFrom(file: string, offset: number): Promise<{ data: Buffer; restart: boolean }> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(file, 'r');
    const { size } = await handle.stat();
    const restart = size < offset;
    const from = restart ? 0 : offset;
    const data = Buffer.alloc(size - from);
    const { bytesRead } = await handle.read(data, 0, data.length, from);
    return { data: data.subarray(0, bytesRead), restart };
  } catch {
    return { data: Buffer.alloc(0), restart: false }; // gone: removed after a rotation
  } finally {
    await handle?.close();
  }
}

/** `12:03:04  claude-ai  notes__search  ok  12 ms  1.2 kB`; the date too when not today. */
export function formatEntry(entry: Partial<ActivityEntry>, now: Date = new Date()): string {
  const at = new Date(entry.time ?? '');
  const time = Number.isNaN(at.getTime())
    ? '?'
    : at.toDateString() === now.toDateString()
      ? clock(at)
      : `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())} ${clock(at)}`;
  const client = `${entry.client?.name ?? '-'}${entry.client?.listener === 'public' ? ' (public)' : ''}`;
  const name = entry.kind === 'tool' || entry.kind === undefined ? entry.name : `${entry.kind} ${entry.name}`;
  const outcome =
    entry.outcome === 'ok'
      ? 'ok'
      : entry.outcome === 'tool_error'
        ? 'tool error'
        : `error${entry.errorCode ? ` ${entry.errorCode}` : ''}`;
  const parts = [
    time,
    client.padEnd(12),
    (name ?? '').padEnd(24),
    outcome.padEnd(10),
    duration(entry.durationMs),
  ];
  if (typeof entry.resultBytes === 'number') parts.push(bytes(entry.resultBytes));
  // Names and codes come from clients and upstreams: no terminal escapes reach the screen.
  return parts
    .join('  ')
    .trimEnd()
    .replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters to neutralize
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

function clock(at: Date): string {
  return `${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}`;
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

function duration(ms: number | undefined): string {
  if (typeof ms !== 'number') return '?'.padStart(7);
  return (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`).padStart(7);
}

function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1_000_000) return `${(n / 1000).toFixed(1)} kB`;
  return `${(n / 1_000_000).toFixed(1)} MB`;
}
