import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * The watchdog, in POSIX sh. The daemon writes "+PGID" when it starts a child group and "-PGID"
 * when the group is gone. stdin reaches EOF only when the daemon has died (or closed it on a clean
 * shutdown): then every group still listed gets SIGTERM, and SIGKILL once $1 tenths of a second
 * have passed. Ids are digits only and never 0 or 1 (`kill -TERM -1` would hit every process).
 */
const SCRIPT = `trap '' INT TERM HUP
groups=
while IFS= read -r line; do
  id=\${line#?}
  case $id in ''|*[!0-9]*) continue ;; esac
  [ "$id" -gt 1 ] || continue
  case $line in
    +*) groups="$groups $id" ;;
    -*) rest=; for g in $groups; do [ "$g" = "$id" ] || rest="$rest $g"; done; groups=$rest ;;
  esac
done
[ -n "$groups" ] || exit 0
for g in $groups; do kill -TERM -"$g" 2>/dev/null; done
i=0
while [ "$i" -lt "$1" ]; do
  alive=
  for g in $groups; do kill -0 -"$g" 2>/dev/null && alive=1; done
  [ -n "$alive" ] || exit 0
  sleep 0.1 2>/dev/null || sleep 1
  i=$((i + 1))
done
for g in $groups; do kill -KILL -"$g" 2>/dev/null; done
`;

/** How long the watchdog is restarted after, when it died while the daemon runs. */
const RESPAWN_MS = 1000;

export interface ReaperOptions {
  readonly log: Logger;
  /** Between SIGTERM and SIGKILL. */
  readonly graceMs?: number;
  /** The watchdog process (re)started. */
  readonly onStart?: (pid: number) => void;
}

/**
 * Kills the daemon's child groups when the daemon dies without cleaning up (SIGKILL, OOM killer,
 * a crash in native code): one small `/bin/sh` per daemon that waits for its stdin to close. It
 * leads its own session, so a signal to the daemon's process group or terminal does not reach it,
 * and it ignores INT/TERM/HUP besides. The pipe's write end is close-on-exec, so children never
 * hold it open. A watchdog that dies is started again with the current list.
 */
export class Reaper {
  private child: ChildProcessByStdio<Writable, null, null> | undefined;
  private readonly groups = new Set<number>();
  private closed = false;
  private retryAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ReaperOptions) {}

  /** The watchdog's pid while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  add(pgid: number): void {
    this.groups.add(pgid);
    if (!this.child) this.start();
    else this.write(`+${pgid}\n`);
  }

  remove(pgid: number): void {
    if (!this.groups.delete(pgid)) return;
    this.write(`-${pgid}\n`);
  }

  /** A clean shutdown: the watchdog kills whatever is still listed (normally nothing) and exits. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.child?.stdin.end();
  }

  private write(line: string): void {
    const stdin = this.child?.stdin;
    if (stdin?.writable) stdin.write(line);
  }

  private start(): void {
    if (this.closed || this.child || Date.now() < this.retryAt) return;
    const grace = Math.max(1, Math.round((this.options.graceMs ?? 2000) / 100));
    let child: ChildProcessByStdio<Writable, null, null>;
    try {
      child = spawn('/bin/sh', ['-c', SCRIPT, 'mcp-bridge-reaper', String(grace)], {
        stdio: ['pipe', 'ignore', 'ignore'],
        detached: true,
      });
    } catch (error) {
      this.failed(error);
      return;
    }
    child.on('error', (error) => {
      if (this.child === child) this.child = undefined;
      this.failed(error);
    });
    child.stdin.on('error', () => {});
    child.once('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (this.closed) return;
      this.options.log.warn({ code, signal }, 'the child watchdog exited; starting it again');
      this.retryAt = Date.now() + RESPAWN_MS;
      this.scheduleRetry();
    });
    if (child.pid === undefined) return; // spawn failed; 'error' follows
    this.child = child;
    // Neither the watchdog nor its pipe keeps the daemon's event loop alive.
    child.unref();
    (child.stdin as Writable & Partial<Pick<Socket, 'unref'>>).unref?.();
    if (this.groups.size > 0) child.stdin.write([...this.groups].map((g) => `+${g}\n`).join(''));
    this.options.onStart?.(child.pid);
  }

  private failed(error: unknown): void {
    this.options.log.warn(
      { err: errorMessage(error) },
      'cannot start the child watchdog; children may outlive a killed daemon',
    );
    this.retryAt = Date.now() + RESPAWN_MS;
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed || this.groups.size === 0 || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.start();
    }, RESPAWN_MS);
    this.retryTimer.unref();
  }
}
