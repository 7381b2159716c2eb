#!/usr/bin/env node
// Runs the server scenarios of the official MCP conformance suite (@modelcontextprotocol/conformance)
// against mcp-bridge in pass-through mode: the bridge is started with one stdio upstream, the
// fixture test/fixtures/conformance-server.mjs (exposed under its own names, "prefix": false), and
// every scenario talks to the bridge's /mcp endpoint. Prints a per-scenario pass/fail table.
//
//   node scripts/conformance/run-server.mjs [--scenario NAME ...] [--group LIST] [--target fixture]
//
// Run with --help for all options. Nothing is installed into the project (see common.mjs).

import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  HERE,
  installSuite,
  listScenarios,
  log,
  NODE22_VERSION,
  parseRunnerArgs,
  printFailures,
  runMain,
  runPool,
  runSuite,
  SUITE_VERSION,
  suiteRuntime,
  table,
  truncate,
  UsageError,
} from './common.mjs';

const ROOT = path.resolve(HERE, '..', '..');
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'conformance-server.mjs');
const BRIDGE_BIN = path.join(ROOT, 'bin', 'mcp-bridge.js');
const UPSTREAM = 'conformance';

const MODERN = '2026-07-28';
/** The suite's default wire for scenarios of the dated (2025) revisions. */
const DATED_DEFAULT = '2025-11-25';
const ALL_GROUPS = ['active', '2026', 'pending', 'extension'];
const DEFAULT_GROUPS = ['active', '2026'];
/**
 * Scenarios whose tool calls make the upstream ask the client something (sampling, elicitation,
 * roots) mid-call. On the 2025-11-25 wire the bridge relays such a request only while exactly one
 * call of that upstream is running (it cannot tell which client to ask otherwise), so these runs
 * go one at a time after the others. (On the 2026-07-28 wire the fixture's input_required rounds
 * pass through untouched, but they stay exclusive too: it costs a few seconds and keeps runs
 * comparable.)
 */
const EXCLUSIVE = new Set([
  'tools-call-sampling',
  'tools-call-elicitation',
  'elicitation-sep1034-defaults',
  'elicitation-sep1330-enums',
  'server-stateless',
]);
const isExclusive = (name) => EXCLUSIVE.has(name) || name.startsWith('input-required-result-');
/** Server scenarios the suite marks pending, for suite versions without requirement sets. */
const KNOWN_PENDING = [
  'json-schema-2020-12',
  'server-sse-polling',
  'http-header-validation',
  'http-custom-header-server-validation',
];

const USAGE = `Usage: node scripts/conformance/run-server.mjs [options]

Runs the MCP conformance suite's server scenarios against mcp-bridge, started in pass-through
mode in front of the fixture upstream test/fixtures/conformance-server.mjs.

Runs ("scenario@wire"): a scenario of the dated revisions runs on the 2025-11-25 wire (stateful,
initialize handshake); one that applies to ${MODERN} also runs on that wire (stateless,
per-request _meta). Groups:
  active      scenarios of the suite's active set, on the 2025-11-25 wire
  2026        scenarios that apply to ${MODERN}, on that wire (the suite's newest revision)
  pending     scenarios the suite itself marks pending (its reference server cannot pass them)
  extension   extension scenarios (tasks, skills)

Options:
  --target T            bridge (default): start the bridge with the fixture behind it;
                        fixture: start the fixture alone over Streamable HTTP (--http) and test it
                        directly, to check the fixture itself.
  --url URL             Test an MCP endpoint that is already running instead (nothing is started).
  --scenario NAME       Run only this scenario (repeatable). NAME runs it on every wire it applies
                        to; NAME@${MODERN} or NAME@${DATED_DEFAULT} picks one run. Named scenarios run
                        even if their group is not selected.
  --group LIST          Comma-separated groups (default: ${DEFAULT_GROUPS.join(',')}).
  --all                 Same as --group ${ALL_GROUPS.join(',')}.
  --list                List the runs with group and selection, then exit.
  --suite-version V     @modelcontextprotocol/conformance version (default ${SUITE_VERSION};
                        env MCP_CONFORMANCE_VERSION). 0.1.16 (stable) has no ${MODERN} scenarios.
  --shim                On Node < 22, run the suite on the current Node with an fs.globSync shim
                        instead of downloading Node ${NODE22_VERSION}.
  --node PATH           Node >= 22 binary to run the suite with (env MCP_CONFORMANCE_NODE).
  --jobs N              Scenarios to run in parallel (default 4). Against a bridge (or --url),
                        scenarios whose tools ask the client something mid-call (sampling,
                        elicitation, input_required) run one at a time afterwards.
  --all-parallel        Run those in the parallel pool too (shows the bridge refusing to relay
                        a request while several calls of the upstream are running).
  --timeout MS          Per-scenario timeout passed to the suite, when it supports one (default 30000).
  --out DIR             Directory for per-scenario results and the bridge log (default: a new temp
                        directory).
  --verbose             Print the suite's full output for failing scenarios.
  --json                Print the summary as JSON instead of a table.
  -h, --help            Show this help.

Exit status: 0 if every selected run passed, 1 if any failed, 2 on a usage or setup error.
Environment: MCP_BRIDGE_CACHE_DIR (cache root, default ~/.cache/mcp-bridge).`;

function parseCli(argv) {
  const { values, shared } = parseRunnerArgs(
    argv,
    { target: { type: 'string' }, url: { type: 'string' }, 'all-parallel': { type: 'boolean' } },
    { allGroups: ALL_GROUPS, defaultGroups: DEFAULT_GROUPS },
  );
  const target = values.url ? 'url' : (values.target ?? 'bridge');
  if (!['bridge', 'fixture', 'url'].includes(target)) {
    throw new UsageError(`unknown --target "${values.target}" (expected bridge or fixture)`);
  }
  if (values.url && values.target) throw new UsageError('--url and --target exclude each other');
  if (values.url && !URL.canParse(values.url)) throw new UsageError(`--url ${values.url} is not a URL`);
  return {
    ...shared,
    target,
    url: values.url,
    scenarios: values.scenario ?? [],
    allParallel: values['all-parallel'] ?? false,
  };
}

// ---------------------------------------------------------------------------------------------
// Which runs exist

/** Server scenarios the suite's requirement sets mark pending (its reference server fails them). */
function pendingFromRequirements(packageDir) {
  const dir = path.join(packageDir, 'requirements');
  if (!existsSync(dir)) return undefined;
  const names = new Set();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    const text = readFileSync(path.join(dir, file), 'utf8');
    // not_scored entries: "- scenario: X" followed by "leg: server" and "reason: pending".
    for (const m of text.matchAll(/-\s*scenario:\s*(\S+)\s*\n\s*leg:\s*(\S+)\s*\n\s*reason:\s*(\S+)/g)) {
      if (m[2] === 'server' && m[3] === 'pending') names.add(m[1]);
    }
  }
  return names;
}

/**
 * Every run of every server scenario: `{ id, name, wire, specArg, group, tags }`. A scenario of a
 * dated revision runs on the suite's default wire; one tagged ${MODERN} (also) runs on that wire.
 */
function planRuns(scenarios, pending) {
  const runs = [];
  const add = (s, wire, group, specArg) =>
    runs.push({
      id: wire === 'extension' ? s.name : `${s.name}@${wire}`,
      name: s.name,
      wire,
      specArg,
      group,
      tags: s.tags,
    });
  for (const s of scenarios) {
    const isPending = pending.has(s.name);
    if (s.tags.includes('extension')) add(s, 'extension', 'extension', undefined);
    else {
      if (s.tags.some((t) => t !== MODERN))
        add(s, DATED_DEFAULT, isPending ? 'pending' : 'active', undefined);
      if (s.tags.includes(MODERN)) add(s, MODERN, isPending ? 'pending' : '2026', MODERN);
    }
  }
  return runs;
}

function selectRuns(runs, opts) {
  if (opts.scenarios.length === 0)
    return new Set(runs.filter((r) => opts.groups.includes(r.group)).map((r) => r.id));
  const selected = new Set();
  for (const wanted of opts.scenarios) {
    const matches = runs.filter((r) => r.id === wanted || r.name === wanted);
    if (matches.length === 0) {
      const names = [...new Set(runs.map((r) => r.name))];
      throw new UsageError(`unknown scenario ${wanted}; available:\n  ${names.join('\n  ')}`);
    }
    for (const r of matches) selected.add(r.id);
  }
  return selected;
}

// ---------------------------------------------------------------------------------------------
// Processes under test

/** Resolves with the first stdout line matching "listening on <url>", rejects on exit or timeout. */
function waitForListening(child, what, timeoutMs, logTail) {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what} did not print "listening on <url>" within ${timeoutMs}ms${logTail()}`));
    }, timeoutMs);
    const onData = (chunk) => {
      out += chunk;
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        cleanup();
        resolve(m[1]);
      }
    };
    const onExit = (code, signal) => {
      cleanup();
      reject(new Error(`${what} exited (${signal ?? `code ${code}`}) before listening${logTail()}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
}

async function stopChild(child, what) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    log(`${what} did not stop within 8s; killing it`);
    child.kill('SIGKILL');
  }, 8000);
  await exited;
  clearTimeout(timer);
}

function distIsStale() {
  const dist = path.join(ROOT, 'dist', 'cli', 'main.js');
  if (!existsSync(dist)) return 'dist/ is missing: run npm run build (npm run conformance does)';
  const built = statSync(dist).mtimeMs;
  const src = path.join(ROOT, 'src');
  const newer = readdirSync(src, { recursive: true })
    .map(String)
    .filter((p) => p.endsWith('.ts') && statSync(path.join(src, p)).mtimeMs > built);
  return newer.length > 0
    ? `dist/ is older than ${newer.length} file(s) in src/ (e.g. src/${newer[0]}); results are for the last build`
    : undefined;
}

/** Starts the bridge with the fixture as its only upstream; returns `{ url, stop, info }`. */
async function startBridge(out) {
  const stale = distIsStale();
  if (stale) log(`warning: ${stale}`);
  const configDir = mkdtempSync(path.join(os.tmpdir(), 'mcp-bridge-conformance-config-'));
  const logPath = path.join(out, 'bridge.log');
  const config = {
    mcpServers: {
      [UPSTREAM]: { command: process.execPath, args: [FIXTURE], prefix: false, protocol: 'auto' },
    },
    // The suite's client cannot be given a header; the bridge runs in a throwaway dir on loopback.
    auth: 'none',
  };
  writeFileSync(path.join(configDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const env = { ...process.env };
  // Only our config: no config file from the environment, no extra upstreams.
  for (const key of [
    'MCP_BRIDGE_CONFIG',
    'MCP_BRIDGE_SENTINEL_COMMAND',
    'MCP_BRIDGE_SENTINEL_ARGS',
    'MCP_BRIDGE_OVERSEER_URL',
    'MCP_BRIDGE_MCP_PATH',
  ]) {
    delete env[key];
  }
  Object.assign(env, {
    MCP_BRIDGE_PORT: '0',
    MCP_BRIDGE_HOST: '127.0.0.1',
    MCP_BRIDGE_CONFIG_DIR: configDir,
    MCP_BRIDGE_LOG_PATH: logPath,
    MCP_BRIDGE_LOG_LEVEL: env.MCP_BRIDGE_LOG_LEVEL ?? 'debug',
  });
  const child = spawn(process.execPath, [BRIDGE_BIN, 'start'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const logTail = () => {
    const tail = stderr.trim().split('\n').slice(-15).join('\n');
    return tail ? `; its stderr:\n${tail}` : '';
  };
  const cleanupDir = () => rmSync(configDir, { recursive: true, force: true });
  let url;
  try {
    url = await waitForListening(child, 'the bridge', 30000, logTail);
  } catch (err) {
    await stopChild(child, 'the bridge');
    cleanupDir();
    if (/prefix/i.test(stderr)) {
      err.message += `\n(The bridge refused "prefix": false in ${path.join(configDir, 'config.json')}; it needs the per-upstream prefix option.)`;
    }
    throw err;
  }
  const stop = async () => {
    await stopChild(child, 'the bridge');
    cleanupDir();
  };
  // Wait for the upstream to be ready, so the first scenarios see its tools.
  const statusUrl = new URL('/status', url).href;
  const deadline = Date.now() + 30000;
  let upstream;
  for (;;) {
    try {
      const status = await (await fetch(statusUrl)).json();
      upstream = status.upstreams?.find((u) => u.name === UPSTREAM);
      if (upstream?.state === 'ready') break;
      if (upstream?.state === 'failed') break;
    } catch {
      // not answering yet
    }
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  if (upstream?.state !== 'ready') {
    await stop();
    const why = upstream?.lastError
      ? `: ${upstream.lastError.message ?? JSON.stringify(upstream.lastError)}`
      : '';
    throw new Error(
      `the upstream "${UPSTREAM}" did not become ready (state ${upstream?.state ?? 'unknown'}${why})${logTail()}`,
    );
  }
  return {
    url,
    stop,
    info: `bridge ${url} (upstream ${UPSTREAM}: ${upstream.toolCount} tools, pid ${upstream.pid ?? '?'})`,
    upstreamPid: upstream.pid,
  };
}

/** Starts the fixture alone over Streamable HTTP. */
async function startFixture() {
  const child = spawn(process.execPath, [FIXTURE, '--http', '0'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const logTail = () =>
    stderr.trim() ? `; its stderr:\n${stderr.trim().split('\n').slice(-15).join('\n')}` : '';
  let url;
  try {
    url = await waitForListening(child, 'the fixture', 15000, logTail);
  } catch (err) {
    await stopChild(child, 'the fixture');
    throw err;
  }
  return { url, stop: () => stopChild(child, 'the fixture'), info: `fixture ${url}` };
}

// ---------------------------------------------------------------------------------------------
// Running

/** Suite processes still running, ended on SIGINT/SIGTERM; no new ones start once interrupted. */
const suiteChildren = new Set();
let interrupted = false;

async function runScenario(runtime, entry, suiteHasTimeout, url, opts, run, outRoot) {
  const outDir = path.join(outRoot, run.id.replaceAll('/', '__').replaceAll('@', '__'));
  mkdirSync(outDir, { recursive: true });
  if (interrupted) {
    const nothing = { success: 0, failure: 0, warning: 0, problems: [], seconds: 0, output: '' };
    return { ...run, ...nothing, ran: false, passed: false, exitCode: -1, notes: ['interrupted'], outDir };
  }
  const args = [entry, 'server', '--url', url, '--scenario', run.name, '--output-dir', outDir];
  if (run.specArg) args.push('--spec-version', run.specArg);
  if (suiteHasTimeout) args.push('--timeout', String(opts.timeout));
  const result = await runSuite(runtime, args, outDir, {
    onChild: (child) => {
      suiteChildren.add(child);
      child.once('exit', () => suiteChildren.delete(child));
    },
    // Backstop in case the suite's own timeout does not fire.
    killAfterMs: opts.timeout + 30000,
  });
  const notes = [];
  if (/SKIPPED: scenario/.test(result.output))
    notes.push('skipped by the suite (not applicable at this spec version)');
  if (!result.checksFile && !notes.length) {
    const crash = /(?:Server test error|Error):\s*(.*)/.exec(result.output)?.[1];
    notes.push(crash ? `the suite stopped: ${crash.trim()}` : 'no checks.json produced (suite error?)');
  }
  const passed = result.exitCode === 0 && result.failure === 0;
  return { ...run, ...result, ran: true, passed, notes, outDir };
}

// ---------------------------------------------------------------------------------------------
// Output

function printList(runs, selected) {
  const rows = runs.map((r) => [
    r.name,
    r.wire,
    r.group,
    r.tags.join(','),
    selected.has(r.id) ? 'yes' : 'no',
  ]);
  console.log(table(rows, ['scenario', 'wire', 'group', 'spec versions', 'selected']));
}

function printSummary(results, meta) {
  const rows = results.map((r) => {
    const first = r.problems.find((p) => p.startsWith('FAIL')) ?? r.problems[0] ?? r.notes[0] ?? '';
    return [
      r.name,
      r.wire,
      r.group,
      r.passed ? 'PASS' : 'FAIL',
      `${r.success}/${r.failure}/${r.warning}`,
      truncate(first, 100),
    ];
  });
  console.log(table(rows, ['scenario', 'wire', 'group', 'result', 'ok/fail/warn', 'first problem']));
  const ran = results;
  const passed = ran.filter((r) => r.passed).length;
  const byGroup = ALL_GROUPS.map((g) => {
    const inGroup = ran.filter((r) => r.group === g);
    return inGroup.length ? `${g} ${inGroup.filter((r) => r.passed).length}/${inGroup.length}` : undefined;
  }).filter(Boolean);
  console.log(
    `\nTotal: ${passed}/${ran.length} selected runs passed (${byGroup.join(', ')}), ${meta.notSelected} not selected` +
      `\nAgainst ${meta.target}; suite ${meta.suiteVersion} on ${meta.runtime}; ${meta.seconds.toFixed(1)}s`,
  );
  console.log(
    `Per-scenario results (checks.json, suite output)${meta.bridgeLog ? ' and the bridge log' : ''}: ${meta.out}`,
  );
}

// ---------------------------------------------------------------------------------------------

async function main() {
  let opts;
  try {
    opts = parseCli(process.argv.slice(2));
  } catch (err) {
    console.error(`error: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }

  const started = Date.now();
  const runtime = suiteRuntime(opts);
  const { entry, packageDir } = installSuite(opts.suiteVersion);
  const scenarios = listScenarios(runtime, entry, 'server');
  if (scenarios.length === 0) throw new Error('the suite lists no server scenarios');
  const pending = pendingFromRequirements(packageDir) ?? new Set(KNOWN_PENDING);
  const runs = planRuns(scenarios, pending);

  let selected;
  try {
    selected = selectRuns(runs, opts);
  } catch (err) {
    console.error(`error: ${err.message}`);
    return 2;
  }
  if (opts.list) {
    printList(runs, selected);
    return 0;
  }

  const out = opts.out
    ? path.resolve(opts.out)
    : path.join(
        os.tmpdir(),
        'mcp-bridge-conformance',
        `server-${new Date().toISOString().replace(/[:.]/g, '-')}`,
      );
  mkdirSync(out, { recursive: true });
  const help = await new Promise((resolve) => {
    const child = spawn(runtime.node, [...runtime.preArgs, entry, 'server', '--help'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
    });
    child.on('close', () => resolve(text));
  });
  const suiteHasTimeout = help.includes('--timeout');

  let subject;
  if (opts.target === 'url') subject = { url: opts.url, stop: async () => {}, info: opts.url };
  else if (opts.target === 'fixture') subject = await startFixture();
  else subject = await startBridge(out);

  let ranResults;
  const stopSubject = async () => {
    await subject.stop().catch((err) => log(`could not stop ${subject.info}: ${err.message}`));
  };
  const onSignal = async () => {
    interrupted = true;
    for (const child of suiteChildren) child.kill('SIGTERM');
    await stopSubject();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    log(`suite ${opts.suiteVersion} on ${runtime.label}; testing ${subject.info}`);
    log(`running ${selected.size} run(s), ${opts.jobs} at a time ...`);
    const toRun = runs.filter((r) => selected.has(r.id));
    const serialize = opts.target !== 'fixture' && !opts.allParallel;
    const alone = serialize ? toRun.filter((r) => isExclusive(r.name)) : [];
    const pooled = toRun.filter((r) => !alone.includes(r));
    const one = async (r) => {
      const res = await runScenario(runtime, entry, suiteHasTimeout, subject.url, opts, r, out);
      log(`${res.passed ? 'PASS' : 'FAIL'} ${r.id} (${res.seconds.toFixed(1)}s)`);
      return res;
    };
    ranResults = [...(await runPool(pooled, opts.jobs, one)), ...(await runPool(alone, 1, one))];
  } finally {
    await stopSubject();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (subject.upstreamPid) {
    try {
      process.kill(subject.upstreamPid, 0);
      log(
        `warning: the fixture upstream (pid ${subject.upstreamPid}) is still running after the bridge stopped`,
      );
    } catch {
      // gone, as it should be
    }
  }

  const byId = new Map(ranResults.map((r) => [r.id, r]));
  const results = runs.filter((r) => selected.has(r.id)).map((r) => byId.get(r.id));
  const meta = {
    target: subject.info,
    suiteVersion: opts.suiteVersion,
    runtime: runtime.label,
    seconds: (Date.now() - started) / 1000,
    out,
    notSelected: runs.length - selected.size,
    bridgeLog:
      opts.target === 'bridge'
        ? path.join(out, readdirSync(out).find((f) => /^bridge.*\.log$/.test(f)) ?? 'bridge.log')
        : undefined,
  };
  if (opts.json) {
    const slim = results.map(({ output: _output, ...r }) => r);
    console.log(JSON.stringify({ ...meta, results: slim }, null, 2));
  } else {
    printSummary(results, meta);
    printFailures(ranResults, (r) => r.id, opts.verbose);
  }
  return ranResults.every((r) => r.passed) ? 0 : 1;
}

runMain(main);
