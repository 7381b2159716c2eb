import { readFileSync, unlinkSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { BridgeError, errorMessage } from './errors.js';
import { ensureDir } from './store/file-safety.js';
import { writeFileAtomic } from './store/write-file-atomic.js';
import { processStartTime } from './upstream/process-start-time.js';
import { VERSION } from './version.js';

/** `<configDir>/daemon.json`: who runs with this config dir (children/ is per daemon pid, this is one file). */
export const DAEMON_FILE = 'daemon.json';

export interface DaemonRecord {
  readonly pid: number;
  /** Opaque (process-start-time.ts): tells a live daemon from a process that reused its pid. */
  readonly startTime: string | null;
  readonly host: string;
  /** null until the daemon listens. */
  readonly port: number | null;
  readonly startedAt: string;
  readonly version: string;
}

const LOCK_OPTIONS = {
  realpath: false,
  // Held for a read and a write; a holder killed in between leaves it for this long.
  stale: 10_000,
  retries: { retries: 40, factor: 1.2, minTimeout: 20, maxTimeout: 500 },
};

/**
 * One daemon per config dir: two would spawn every upstream twice and race on the caches and the
 * token file. The record is checked and written under a short proper-lockfile lock, so two starts
 * at the same moment cannot both win; a record whose pid is gone, or now belongs to a process that
 * started at another time, is taken over.
 */
export class DaemonLock {
  private record: DaemonRecord;

  private constructor(
    readonly file: string,
    record: DaemonRecord,
  ) {
    this.record = record;
  }

  /** Claims the config dir or throws DAEMON_ALREADY_RUNNING naming the running daemon's pid and port. */
  static async acquire(configDir: string, host: string): Promise<DaemonLock> {
    const file = join(configDir, DAEMON_FILE);
    const record: DaemonRecord = {
      pid: process.pid,
      startTime: (await processStartTime(process.pid)) ?? null,
      host,
      port: null,
      startedAt: new Date().toISOString(),
      version: VERSION,
    };
    const release = await lockRecord(configDir, file);
    try {
      const other = await readRecord(file);
      if (other && (await isRunning(other))) {
        const where = other.port === null ? 'still starting' : `listening on ${other.host}:${other.port}`;
        throw new BridgeError(
          'DAEMON_ALREADY_RUNNING',
          `another mcp-bridge is already running with the config dir ${configDir}: pid ${other.pid}, ${where}; stop it first (or use \`mcp-bridge status\`), or give this one its own MCP_BRIDGE_CONFIG_DIR`,
          { details: { pid: other.pid, port: other.port, file } },
        );
      }
      await writeFileAtomic(file, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600, durable: false });
    } finally {
      await release().catch(() => {});
    }
    return new DaemonLock(file, record);
  }

  /** Records the port once the daemon listens (port 0 resolves to a real one only then). */
  async listening(port: number): Promise<void> {
    this.record = { ...this.record, port };
    await writeFileAtomic(this.file, `${JSON.stringify(this.record, null, 2)}\n`, {
      mode: 0o600,
      durable: false,
    });
  }

  /** Removes the record if it is still ours. Never throws. */
  async release(): Promise<void> {
    const current = await readRecord(this.file).catch(() => undefined);
    if (current && this.isOurs(current)) await unlink(this.file).catch(() => {});
  }

  /** The same from a process 'exit' handler. */
  releaseSync(): void {
    try {
      const current = parseRecord(readFileSync(this.file, 'utf8'));
      if (current && this.isOurs(current)) unlinkSync(this.file);
    } catch {
      // Gone already, or unreadable: a later start treats it as stale.
    }
  }

  private isOurs(record: DaemonRecord): boolean {
    return record.pid === this.record.pid && record.startTime === this.record.startTime;
  }
}

/** The daemon running with `configDir`, as its record says; undefined when none runs. */
export async function runningDaemon(configDir: string): Promise<DaemonRecord | undefined> {
  const record = await readRecord(join(configDir, DAEMON_FILE)).catch(() => undefined);
  return record && (await isRunning(record)) ? record : undefined;
}

/**
 * For commands that change the daemon's files while it is stopped: runs `change` under the lock a
 * starting daemon takes, if no daemon runs with `configDir` (one starting meanwhile waits, then
 * reads what `change` wrote). Otherwise runs nothing and returns the running daemon's record.
 */
export async function whileNoDaemon<T>(
  configDir: string,
  change: () => Promise<T>,
): Promise<{ ran: true; value: T } | { ran: false; running: DaemonRecord }> {
  const file = join(configDir, DAEMON_FILE);
  const release = await lockRecord(configDir, file);
  try {
    const other = await readRecord(file);
    if (other && (await isRunning(other))) return { ran: false, running: other };
    return { ran: true, value: await change() };
  } finally {
    await release().catch(() => {});
  }
}

/** The lock a starting daemon takes on its record; DAEMON_ALREADY_RUNNING while another holds it. */
async function lockRecord(configDir: string, file: string): Promise<() => Promise<void>> {
  // The lock's own directory sits beside the file: the config dir must exist first.
  await ensureDir(configDir, 0o700);
  try {
    return await lockfile.lock(file, LOCK_OPTIONS);
  } catch (error) {
    throw new BridgeError(
      'DAEMON_ALREADY_RUNNING',
      `could not lock ${file} (${errorMessage(error)}); another mcp-bridge is starting with the config dir ${configDir}`,
      { cause: error, details: { file } },
    );
  }
}

async function readRecord(file: string): Promise<DaemonRecord | undefined> {
  try {
    return parseRecord(await readFile(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** A file that is not a record (truncated, edited) counts as no daemon. */
function parseRecord(text: string): DaemonRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<DaemonRecord>;
    if (!Number.isInteger(value.pid) || (value.pid as number) <= 0) return undefined;
    return {
      pid: value.pid as number,
      startTime: typeof value.startTime === 'string' ? value.startTime : null,
      host: typeof value.host === 'string' ? value.host : '127.0.0.1',
      port: Number.isInteger(value.port) ? (value.port as number) : null,
      startedAt: String(value.startedAt ?? ''),
      version: String(value.version ?? ''),
    };
  } catch {
    return undefined;
  }
}

async function isRunning(record: DaemonRecord): Promise<boolean> {
  // Our own pid in the file is a previous process that had it: this one has not written yet.
  if (record.pid === process.pid) return false;
  try {
    process.kill(record.pid, 0);
  } catch (error) {
    // EPERM: the pid is alive, under another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (record.startTime === null) return true;
  const now = await processStartTime(record.pid);
  // Unreadable start time: assume it is the daemon rather than run a second one.
  return now === undefined || now === record.startTime;
}
