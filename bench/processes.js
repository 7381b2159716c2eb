// The bench's one way out. Whatever ends it (the last row, an error, Ctrl-C, SIGTERM, a reader that
// stopped reading as in `npm run bench | head`) goes through exitBench, which ends every process the
// bench started and removes its temp dirs: a daemon left running keeps its upstreams running too.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Between SIGTERM and SIGKILL: a daemon stops its upstreams well within this. */
const GRACE_MS = 5000;
const dirs = new Set();
let exiting;

export function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-bridge-bench-'));
  dirs.add(dir);
  return dir;
}

/**
 * The bench's live children, from /proc rather than a list kept at each spawn: that also covers the
 * processes the SDK spawns (stdio transports, their version-probe siblings), and a pid since reused
 * by some other process has another parent.
 */
function children() {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // it ended meanwhile
    }
    // "pid (comm) state ppid ...", where comm may hold spaces and parentheses.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(ppid) === process.pid && state !== 'Z') pids.push(Number(entry));
  }
  return pids;
}

function signal(pid, name) {
  try {
    process.kill(pid, name);
  } catch {
    // It ended meanwhile.
  }
}

/** Ends the bench with `code` once its children are gone and its temp dirs removed; idempotent. */
export function exitBench(code) {
  exiting ??= (async () => {
    // Each child gets SIGTERM once (a second one makes a daemon skip its clean shutdown), including
    // any the still-running measurements spawn meanwhile.
    const termed = new Set();
    for (const deadline = Date.now() + GRACE_MS; Date.now() < deadline; ) {
      const pids = children();
      if (pids.length === 0) break;
      for (const pid of pids) {
        if (!termed.has(pid)) signal(pid, 'SIGTERM');
        termed.add(pid);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const pid of children()) signal(pid, 'SIGKILL');
    for (const dir of dirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // Left behind; nothing runs in it any more.
      }
    }
    process.exit(code);
  })();
  return exiting;
}

/** Runs the bench's main, routing every way it can end through exitBench. */
export function runBench(main) {
  // After a signal or EPIPE the measurements still running fail as their processes go: not news.
  const fail = (error) => {
    if (!exiting) console.error(error);
    exitBench(1);
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  for (const [name, number] of [
    ['SIGINT', 2],
    ['SIGTERM', 15],
    ['SIGHUP', 1],
  ])
    process.on(name, () => exitBench(128 + number));
  // EPIPE: the reader has all it wanted (`| head`), so nothing failed.
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (error) => exitBench(error.code === 'EPIPE' ? 0 : 1));
  main().then(() => exitBench(0), fail);
}
