import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../store/write-file-atomic.js';
import { groupAlive } from './child-process.js';
import { processStartTime } from './process-start-time.js';
import { Reaper } from './reaper.js';

/** What a transport tells about the process groups it starts. */
export interface ChildGroupTracker {
  /** A child was spawned as the leader of process group `pid`. */
  spawned(pid: number, upstream: string): void;
  /** No process of group `pid` is left. */
  gone(pid: number): void;
}

interface ProcessRecord {
  readonly pid: number;
  /** `processStartTime(pid)` when recorded; a pid whose start time differs is another process. */
  readonly startTime: string | null;
}

interface ChildRecord extends ProcessRecord {
  readonly upstream: string;
  readonly pgid: number;
}

/** One file per daemon: `<configDir>/children/<daemon pid>.json`. */
interface StateFile {
  readonly daemon: ProcessRecord;
  readonly reaper: { readonly pid: number } | null;
  readonly children: readonly ChildRecord[];
}

export const CHILDREN_DIR = 'children';

/**
 * Records the process group of every child this daemon starts, in a file of its own (mode 0600,
 * written atomically, one write at a time), and tells the watchdog (`Reaper`) about each one. A
 * daemon that was killed leaves its file behind; the next one, at start, kills the groups listed
 * in it (`reapLeftovers`). One file per daemon, not a shared one: two daemons on different ports
 * may share a config dir, and neither may lose the other's records or kill its children.
 */
export class ChildGroups implements ChildGroupTracker {
  private readonly file: string;
  private readonly children = new Map<number, { upstream: string; startTime: Promise<string | undefined> }>();
  private readonly reaper: Reaper | undefined;
  private readonly ownStart = processStartTime(process.pid);
  private reaperPid: number | undefined;
  private dirty = false;
  private writing: Promise<void> | undefined;
  private warned = false;

  constructor(
    private readonly options: { configDir: string; log: Logger; watchdog?: boolean; graceMs?: number },
  ) {
    this.file = join(options.configDir, CHILDREN_DIR, `${process.pid}.json`);
    if (options.watchdog !== false) {
      this.reaper = new Reaper({
        log: options.log,
        graceMs: options.graceMs,
        onStart: (pid) => {
          this.reaperPid = pid;
          this.save();
        },
      });
    }
  }

  spawned(pid: number, upstream: string): void {
    // The watchdog first: it is told synchronously, the file needs a start time and a disk write.
    this.reaper?.add(pid);
    this.children.set(pid, { upstream, startTime: processStartTime(pid) });
    this.save();
  }

  gone(pid: number): void {
    this.reaper?.remove(pid);
    if (this.children.delete(pid)) this.save();
  }

  /** After every child was stopped: the file goes (unless a group survived) and so does the watchdog. */
  async close(): Promise<void> {
    this.reaper?.close();
    this.reaperPid = undefined;
    while (this.writing) await this.writing;
    if (this.children.size > 0) await this.write();
    else await rm(this.file, { force: true }).catch(() => {});
  }

  private save(): void {
    this.dirty = true;
    this.writing ??= this.flush();
  }

  private async flush(): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        await this.write();
      }
    } finally {
      this.writing = undefined;
    }
  }

  private async write(): Promise<void> {
    const children = await Promise.all(
      [...this.children].map(async ([pid, child]) => ({
        upstream: child.upstream,
        pid,
        pgid: pid,
        startTime: (await child.startTime) ?? null,
      })),
    );
    const state: StateFile = {
      daemon: { pid: process.pid, startTime: (await this.ownStart) ?? null },
      reaper: this.reaperPid === undefined ? null : { pid: this.reaperPid },
      children,
    };
    try {
      await writeFileAtomic(this.file, `${JSON.stringify(state, null, 2)}\n`, {
        mode: 0o600,
        durable: false,
      });
      this.warned = false;
    } catch (error) {
      // Out of file descriptors, or a full disk: the watchdog still knows every group.
      const level = this.warned ? 'debug' : 'warn';
      this.warned = true;
      this.options.log[level]({ file: this.file, err: errorMessage(error) }, 'cannot write the child list');
    }
  }
}

/**
 * At daemon start, before any child is spawned: kills the process groups that daemons which are
 * no longer running left behind (SIGTERM, then SIGKILL after `graceMs`), and removes their files.
 * A group is only signalled when its leader still has the start time recorded for it, so a
 * process that merely reused the pid is never touched; a start time that cannot be read means no
 * kill. A file whose daemon is still running is left alone.
 */
export async function reapLeftovers(options: {
  configDir: string;
  log: Logger;
  graceMs?: number;
}): Promise<{ killed: number[]; skipped: number[] }> {
  const dir = join(options.configDir, CHILDREN_DIR);
  const names = await readdir(dir).catch(() => [] as string[]);
  const killed: number[] = [];
  const skipped: number[] = [];
  for (const name of names.filter((n) => /^\d+\.json$/.test(n))) {
    const file = join(dir, name);
    const state = await readState(file);
    if (state && (await daemonRunning(state.daemon))) {
      options.log.info(
        { daemonPid: state.daemon.pid },
        'another mcp-bridge daemon uses this config dir; leaving its children alone',
      );
      continue;
    }
    for (const child of state?.children ?? []) {
      if (await isRunning(child)) killed.push(child.pgid);
      else skipped.push(child.pid);
    }
    await rm(file, { force: true }).catch(() => {});
  }
  if (killed.length > 0) {
    options.log.warn({ groups: killed }, 'killing child process groups left by a daemon that was killed');
    await killGroups(killed, options.graceMs ?? 2000);
  }
  return { killed, skipped };
}

async function readState(file: string): Promise<StateFile | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as StateFile;
    const daemon = parsed.daemon;
    if (typeof daemon?.pid !== 'number' || !Number.isInteger(daemon.pid) || daemon.pid <= 0) return undefined;
    const children = Array.isArray(parsed.children)
      ? parsed.children.filter(
          (c): c is ChildRecord => isChildId(c?.pid) && c.pgid === c.pid && typeof c.startTime === 'string',
        )
      : [];
    return { daemon: { pid: daemon.pid, startTime: daemon.startTime ?? null }, reaper: null, children };
  } catch {
    return undefined;
  }
}

/** Never 0, 1 or ourselves: `kill(-1)` would signal every process we may signal. */
function isChildId(value: unknown): value is number {
  return (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value > 1 &&
    value !== process.pid &&
    value !== process.ppid
  );
}

/** A daemon whose start time was never read counts as running while its pid exists. */
async function daemonRunning(record: ProcessRecord): Promise<boolean> {
  if (record.startTime !== null) return isRunning(record);
  try {
    process.kill(record.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function isRunning(record: ProcessRecord): Promise<boolean> {
  if (record.startTime === null) return false;
  return (await processStartTime(record.pid)) === record.startTime;
}

async function killGroups(groups: readonly number[], graceMs: number): Promise<void> {
  const signal = (pgid: number, name: NodeJS.Signals) => {
    try {
      process.kill(-pgid, name);
    } catch {
      // gone already
    }
  };
  for (const pgid of groups) signal(pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (groups.some(groupAlive) && Date.now() < deadline) await delay(25);
  for (const pgid of groups) if (groupAlive(pgid)) signal(pgid, 'SIGKILL');
}
