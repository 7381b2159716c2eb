import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSilentLogger } from '../../src/log.js';
import { reapLeftovers } from '../../src/upstream/child-groups.js';
import { processStartTime } from '../../src/upstream/process-start-time.js';
import { authHeaders, makeTempDir } from '../helpers/bridge.js';
import { cliEnv, type RunningBridge, startCli } from '../helpers/cli.js';
import { FAKE_SERVER } from '../helpers/fake-server.js';
import { isAlive, waitFor } from '../helpers/wait.js';

/** Pids of the processes whose command line holds `tag` (ps works on Linux and macOS alike). */
function tagged(tag: string): number[] {
  return execFileSync('ps', ['-A', '-o', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(tag))
    .map((line) => Number.parseInt(line.trim(), 10));
}

function childrenOf(pid: number, marker: string): number[] {
  return execFileSync('ps', ['-A', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([, ppid, ...args]) => Number(ppid) === pid && args.join(' ').includes(marker))
    .map(([p]) => Number(p));
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone
  }
}

describe.skipIf(process.platform === 'win32')('children of a daemon that is killed', () => {
  const cleanups: (() => void)[] = [];
  let bridges: RunningBridge[] = [];
  /** Every process group this file caused to exist, killed after each test. */
  const groups = new Set<number>();

  afterEach(async () => {
    for (const bridge of bridges) await bridge.stop('SIGKILL');
    bridges = [];
    for (const pid of groups) killGroup(pid);
    groups.clear();
    for (const c of cleanups.splice(0)) c();
  });

  /** A config dir with one upstream that ignores SIGTERM and stdin EOF, tagged to be counted. */
  function setup() {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    const tag = `reap-${randomUUID()}`;
    const pidFile = join(temp.dir, 'child.pid');
    mkdirSync(join(temp.dir, 'config'), { recursive: true });
    const upstream = {
      command: process.execPath,
      args: [FAKE_SERVER, tag],
      env: { FAKE_IGNORE_SIGTERM: '1', FAKE_PIDFILE: pidFile },
    };
    writeFileSync(
      join(temp.dir, 'config', 'config.json'),
      JSON.stringify({ mcpServers: { stubborn: upstream } }),
    );
    return { dir: temp.dir, tag, env: cliEnv(temp.dir), pidFile };
  }

  async function startBridge(env: NodeJS.ProcessEnv): Promise<RunningBridge> {
    const bridge = await startCli(env);
    bridges.push(bridge);
    return bridge;
  }

  async function readyChild(bridge: RunningBridge, pidFile: string, notPid?: number): Promise<number> {
    await waitFor(async () => {
      const response = await fetch(bridge.url.replace(/\/mcp$/, '/status'), {
        headers: authHeaders(bridge.url),
      });
      const status = (await response.json()) as { upstreams: { state: string }[] };
      return status.upstreams[0]?.state === 'ready';
    }, 'the upstream to be ready');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(pid).not.toBe(notPid);
    groups.add(pid);
    return pid;
  }

  /** The pids recorded in the daemon's child list, and its watchdog's pid. */
  function recorded(dir: string, daemonPid: number): { children: number[]; reaper: number | undefined } {
    const file = join(dir, 'config', 'children', `${daemonPid}.json`);
    if (!existsSync(file)) return { children: [], reaper: undefined };
    const state = JSON.parse(readFileSync(file, 'utf8')) as {
      children: { pid: number }[];
      reaper: { pid: number } | null;
    };
    return { children: state.children.map((c) => c.pid), reaper: state.reaper?.pid };
  }

  it('kills a child that ignores SIGTERM and stdin EOF shortly after the daemon gets SIGKILL', async () => {
    const { env, pidFile, tag } = setup();
    const bridge = await startBridge(env);
    const child = await readyChild(bridge, pidFile);
    const [watchdog] = childrenOf(bridge.child.pid!, 'mcp-bridge-reaper');
    await bridge.stop('SIGKILL');
    await waitFor(
      () => !isAlive(child),
      `the child (pid ${child}) to be killed after the daemon died`,
      10_000,
    );
    expect(tagged(tag)).toEqual([]);
    // The watchdog is done too: nothing of this daemon is left.
    expect(watchdog).toBeDefined();
    await waitFor(() => !isAlive(watchdog!), 'the watchdog to exit');
  }, 60_000);

  it('kills the leftover of a daemon whose watchdog died with it when the next daemon starts, leaving one copy', async () => {
    const { dir, env, pidFile, tag } = setup();
    const first = await startBridge(env);
    const old = await readyChild(first, pidFile);
    const daemonPid = first.child.pid!;
    await waitFor(() => {
      const state = recorded(dir, daemonPid);
      return state.children.includes(old) && state.reaper !== undefined;
    }, 'the child and the watchdog to be recorded');
    const { reaper } = recorded(dir, daemonPid);
    // Frozen, the daemon cannot start a new watchdog before it dies too.
    process.kill(daemonPid, 'SIGSTOP');
    process.kill(reaper!, 'SIGKILL');
    await first.stop('SIGKILL');
    await waitFor(() => !isAlive(reaper!), 'the watchdog to be gone');
    expect(isAlive(old)).toBe(true);

    const second = await startBridge(env);
    const fresh = await readyChild(second, pidFile, old);
    await waitFor(() => !isAlive(old), `the leftover child (pid ${old}) to be killed`);
    expect(tagged(tag)).toEqual([fresh]);
    // The dead daemon's list is gone; the new one lists its own child.
    expect(readdirSync(join(dir, 'config', 'children'))).toEqual([`${second.child.pid}.json`]);
  }, 60_000);
});

describe.skipIf(process.platform === 'win32')('reapLeftovers', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  /** A process in a group of its own, as the daemon starts its children. */
  async function groupLeader(): Promise<number> {
    const child = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    await once(child, 'spawn');
    child.unref();
    cleanups.push(() => killGroup(child.pid!));
    return child.pid!;
  }

  /** The pid of a process that has exited (a daemon that was killed). */
  async function deadPid(): Promise<number> {
    const child = spawn('true', { stdio: 'ignore' });
    await once(child, 'exit');
    return child.pid!;
  }

  it('kills a recorded group only when its leader still has the recorded start time', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    const same = await groupLeader();
    const reused = await groupLeader();
    const startTime = await processStartTime(same);
    expect(startTime).toBeDefined();
    const dir = join(temp.dir, 'children');
    mkdirSync(dir);
    const daemon = await deadPid();
    const children = [
      { upstream: 'a', pid: same, pgid: same, startTime },
      // This pid now belongs to a process that started at another time: not ours.
      { upstream: 'b', pid: reused, pgid: reused, startTime: `${startTime}0` },
    ];
    writeFileSync(
      join(dir, `${daemon}.json`),
      JSON.stringify({ daemon: { pid: daemon, startTime: 'gone' }, reaper: null, children }),
    );

    const result = await reapLeftovers({ configDir: temp.dir, log: createSilentLogger(), graceMs: 500 });
    expect(result).toEqual({ killed: [same], skipped: [reused] });
    await waitFor(() => !isAlive(same), 'the recorded group to be killed');
    expect(isAlive(reused)).toBe(true);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('leaves alone the children of a daemon that is still running', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    const child = await groupLeader();
    const dir = join(temp.dir, 'children');
    mkdirSync(dir);
    // This test process plays the running daemon.
    const state = {
      daemon: { pid: process.pid, startTime: await processStartTime(process.pid) },
      reaper: null,
      children: [{ upstream: 'a', pid: child, pgid: child, startTime: await processStartTime(child) }],
    };
    writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify(state));
    const result = await reapLeftovers({ configDir: temp.dir, log: createSilentLogger(), graceMs: 500 });
    expect(result).toEqual({ killed: [], skipped: [] });
    expect(isAlive(child)).toBe(true);
    expect(readdirSync(dir)).toEqual([`${process.pid}.json`]);
  });
});
