#!/usr/bin/env node
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  HERE,
  listScenarios,
  log,
  NODE22_VERSION,
  parseRunnerArgs,
  printFailures,
  runMain,
  runPool,
  runSuite,
  SUITE_VERSION,
  suiteEntry,
  suiteRuntime,
  table,
} from './common.mjs';

const DEFAULT_CLIENT = 'node scripts/conformance/auth-client.mjs';

// Spec versions that have been released. Scenarios tagged only with other versions
// ("draft", or a future date) are grouped as draft.
const RELEASED_SPECS = new Set(['2025-03-26', '2025-06-18', '2025-11-25']);
const DEFAULT_GROUPS = ['core', 'backcompat', 'draft'];
const ALL_GROUPS = ['core', 'backcompat', 'draft', 'extension'];

const USAGE = `Usage: node scripts/conformance/run-auth.mjs [options]

Runs the MCP conformance suite's client authorization scenarios (auth/*) against a client.

Options:
  --client "<cmd>"      Client under test (default: "${DEFAULT_CLIENT}").
                        The suite appends the MCP server URL as the last argument.
  --scenario NAME       Run only this scenario (repeatable; "auth/" prefix optional).
                        Explicitly named scenarios run even if their group is not selected.
  --group LIST          Comma-separated groups to run: core, backcompat, draft, extension
                        (default: ${DEFAULT_GROUPS.join(',')}). "extension" = grants other than
                        authorization_code (client_credentials, private_key_jwt, cross-app access...).
  --all                 Same as --group ${ALL_GROUPS.join(',')}.
  --list                List the suite's auth scenarios with group and selection, then exit.
  --suite-version V     @modelcontextprotocol/conformance version (default ${SUITE_VERSION};
                        env MCP_CONFORMANCE_VERSION). 0.1.16 (stable) lacks the iss/migration scenarios.
  --shim                On Node < 22, run the suite on the current Node with an fs.globSync shim
                        instead of downloading Node ${NODE22_VERSION}.
  --node PATH           Node >= 22 binary to run the suite with (env MCP_CONFORMANCE_NODE).
  --jobs N              Scenarios to run in parallel (default 4).
  --timeout MS          Per-scenario client timeout passed to the suite (default 30000).
  --out DIR             Directory for per-scenario results (default: a new temp directory).
  --verbose             Print the suite's full output for failing scenarios.
  --json                Print the summary as JSON instead of a table.
  -h, --help            Show this help.

Exit status: 0 if every selected scenario passed, 1 if any failed, 2 on a usage or setup error.
Environment: MCP_BRIDGE_CACHE_DIR (cache root, default ~/.cache/mcp-bridge).`;

function parseCli(argv) {
  const { values, shared } = parseRunnerArgs(
    argv,
    { client: { type: 'string' } },
    { allGroups: ALL_GROUPS, defaultGroups: DEFAULT_GROUPS },
  );
  return {
    ...shared,
    client: values.client ?? DEFAULT_CLIENT,
    clientIsDefault: values.client === undefined,
    scenarios: (values.scenario ?? []).map((s) => (s.startsWith('auth/') ? s : `auth/${s}`)),
  };
}

// ---------------------------------------------------------------------------------------------
// Scenario discovery

function classify(tags) {
  if (tags.includes('extension')) return 'extension';
  if (tags.length > 0 && tags.every((t) => t === '2025-03-26')) return 'backcompat';
  if (!tags.some((t) => RELEASED_SPECS.has(t))) return 'draft';
  return 'core';
}

function listAuthScenarios(runtime, entry) {
  const scenarios = listScenarios(runtime, entry, 'client')
    .filter((s) => s.name.startsWith('auth/'))
    .map((s) => ({ ...s, group: classify(s.tags) }));
  if (scenarios.length === 0) throw new Error('no auth/* client scenarios found in the suite');
  return scenarios;
}

// ---------------------------------------------------------------------------------------------
// Running

async function runScenario(runtime, entry, opts, scenario, outRoot) {
  const outDir = path.join(outRoot, scenario.name.replaceAll('/', '__'));
  mkdirSync(outDir, { recursive: true });
  const args = [entry, 'client', '--command', opts.client, '--scenario', scenario.name];
  args.push('--timeout', String(opts.timeout), '--output-dir', outDir);
  const result = await runSuite(runtime, args, outDir);
  const notes = [];
  if (/CLIENT TIMED OUT/.test(result.output)) notes.push(`client timed out after ${opts.timeout}ms`);
  const exited = /CLIENT EXITED WITH ERROR \(code (-?\d+)\)/.exec(result.output);
  if (exited) notes.push(`client exited with code ${exited[1]}`);
  if (!result.checksFile) notes.push('no checks.json produced (suite error?)');
  return { ...scenario, ...result, ran: true, passed: result.exitCode === 0, notes, outDir };
}

// ---------------------------------------------------------------------------------------------
// Output

function printList(scenarios, selectedNames) {
  const rows = scenarios.map((s) => [
    s.name,
    s.group,
    s.tags.join(','),
    selectedNames.has(s.name) ? 'yes' : 'no',
  ]);
  console.log(table(rows, ['scenario', 'group', 'spec versions', 'selected']));
}

function printSummary(results, meta) {
  const rows = results.map((r) => {
    if (!r.ran) return [r.name, r.group, 'SKIP', '', 'not selected (out of scope)'];
    const first = r.problems[0] ?? r.notes[0] ?? '';
    return [
      r.name,
      r.group,
      r.passed ? 'PASS' : 'FAIL',
      `${r.success}/${r.failure}/${r.warning}`,
      first.length > 90 ? `${first.slice(0, 87)}...` : first,
    ];
  });
  console.log(table(rows, ['scenario', 'group', 'result', 'ok/fail/warn', 'first problem']));
  const ran = results.filter((r) => r.ran);
  const passed = ran.filter((r) => r.passed).length;
  const skipped = results.length - ran.length;
  console.log(
    `\nTotal: ${passed}/${ran.length} selected scenarios passed` +
      (skipped ? `, ${skipped} not selected` : '') +
      ` (suite ${meta.suiteVersion}, ${meta.runtime}, ${meta.seconds.toFixed(1)}s)`,
  );
  console.log(`Per-scenario results (checks.json, client stdout/stderr, suite output): ${meta.out}`);
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
  if (!opts.list && opts.clientIsDefault && !existsSync(path.join(HERE, 'auth-client.mjs'))) {
    console.error(
      'error: scripts/conformance/auth-client.mjs does not exist yet.\n' +
        'Implement it (see scripts/conformance/auth-client.example.mjs for the contract) or pass --client "<command>".',
    );
    return 2;
  }

  const started = Date.now();
  const runtime = suiteRuntime(opts);
  const entry = suiteEntry(opts.suiteVersion);
  const all = listAuthScenarios(runtime, entry);

  for (const name of opts.scenarios) {
    if (!all.some((s) => s.name === name)) {
      console.error(`error: unknown scenario ${name}; available:\n  ${all.map((s) => s.name).join('\n  ')}`);
      return 2;
    }
  }
  const selected = new Set(
    opts.scenarios.length > 0
      ? opts.scenarios
      : all.filter((s) => opts.groups.includes(s.group)).map((s) => s.name),
  );

  if (opts.list) {
    printList(all, selected);
    return 0;
  }

  const out = opts.out
    ? path.resolve(opts.out)
    : path.join(os.tmpdir(), 'mcp-bridge-conformance', new Date().toISOString().replace(/[:.]/g, '-'));
  mkdirSync(out, { recursive: true });
  log(`suite ${opts.suiteVersion} on ${runtime.label}; client: ${opts.client}`);
  log(`running ${selected.size} scenario(s), ${opts.jobs} at a time ...`);

  const toRun = all.filter((s) => selected.has(s.name));
  const ranResults = await runPool(toRun, opts.jobs, async (s) => {
    const r = await runScenario(runtime, entry, opts, s, out);
    log(`${r.passed ? 'PASS' : 'FAIL'} ${s.name} (${r.seconds.toFixed(1)}s)`);
    return r;
  });
  const byName = new Map(ranResults.map((r) => [r.name, r]));
  const results = all
    .filter((s) => opts.scenarios.length === 0 || selected.has(s.name))
    .map((s) => byName.get(s.name) ?? { ...s, ran: false });

  const meta = {
    suiteVersion: opts.suiteVersion,
    runtime: runtime.label,
    seconds: (Date.now() - started) / 1000,
    out,
  };
  if (opts.json) {
    const slim = results.map(({ output: _output, ...r }) => r);
    console.log(JSON.stringify({ ...meta, client: opts.client, results: slim }, null, 2));
  } else {
    printSummary(results, meta);
    printFailures(ranResults, (r) => r.name, opts.verbose);
  }
  return ranResults.every((r) => r.passed) ? 0 : 1;
}

runMain(main);
