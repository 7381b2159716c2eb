import { spawn } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { BridgeError } from '../errors.js';
import { LAUNCHD_LABEL, type ServicePlatform, SYSTEMD_UNIT } from './templates.js';

/** What the service commands act on; tests pass another platform, HOME or bin. */
export interface ServiceContext {
  readonly platform: ServicePlatform;
  readonly env: NodeJS.ProcessEnv;
  /** Absolute path of the node that runs the daemon. */
  readonly node: string;
  /** Absolute path of bin/mcp-bridge.js. */
  readonly bin: string;
  readonly uid: number;
  /** Messages for people (stderr); the unit of --dry-run goes to stdout. */
  readonly say: (line: string) => void;
  readonly print: (text: string) => void;
  /** Skip the temporary-directory check (tests that install a copy from a temp dir). */
  readonly allowTemporary?: boolean;
}

export function defaultContext(overrides: Partial<ServiceContext> = {}): ServiceContext {
  const platform = overrides.platform ?? servicePlatform(process.platform);
  return {
    platform,
    env: process.env,
    node: process.execPath,
    bin: fileURLToPath(new URL('../../bin/mcp-bridge.js', import.meta.url)),
    uid: process.getuid?.() ?? 0,
    say: (line) => process.stderr.write(`${line}\n`),
    print: (text) => process.stdout.write(text),
    ...overrides,
  };
}

export function servicePlatform(platform: NodeJS.Platform): ServicePlatform {
  if (platform === 'linux' || platform === 'darwin') return platform;
  throw new BridgeError(
    'SERVICE_MANAGER_UNAVAILABLE',
    `"mcp-bridge service" knows launchd (macOS) and systemd (Linux), not ${platform}; run "mcp-bridge start" from your system's own service manager`,
  );
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The program was not found. */
  readonly missing: boolean;
}

/** Runs a service manager command to completion (or with the terminal, for status and logs). */
export function run(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  inherit = false,
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: inherit ? 'inherit' : ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c) => {
      stdout += c;
    });
    child.stderr?.on('data', (c) => {
      stderr += c;
    });
    child.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ code: null, stdout, stderr: error.message, missing: error.code === 'ENOENT' }),
    );
    child.on('close', (code) => resolve({ code, stdout, stderr, missing: false }));
  });
}

/**
 * Whether the user's service manager answers: `systemctl --user` needs the user's session bus,
 * which a container, `su` or a plain SSH login often lacks; `launchctl` needs the GUI domain.
 * Returns why not, or undefined.
 */
export async function managerUnusable(ctx: ServiceContext): Promise<string | undefined> {
  const probe =
    ctx.platform === 'darwin'
      ? await run('launchctl', ['print', `gui/${ctx.uid}`], ctx.env)
      : await run('systemctl', ['--user', 'show-environment'], ctx.env);
  const tool = ctx.platform === 'darwin' ? 'launchctl' : 'systemctl --user';
  if (probe.missing) return `${tool} is not installed here`;
  if (probe.code !== 0) return `${tool} does not answer (${firstLine(probe.stderr) || `exit ${probe.code}`})`;
  return undefined;
}

/** The commands that install does, for a person to run where the manager answers. */
export function installCommands(ctx: ServiceContext, file: string): string[] {
  if (ctx.platform === 'darwin') {
    return [
      `launchctl bootout gui/${ctx.uid}/${LAUNCHD_LABEL} 2>/dev/null || true`,
      `launchctl bootstrap gui/${ctx.uid} ${shellQuote(file)}`,
    ];
  }
  return ['systemctl --user daemon-reload', `systemctl --user enable --now ${SYSTEMD_UNIT}`];
}

export function uninstallCommands(ctx: ServiceContext): string[] {
  if (ctx.platform === 'darwin') return [`launchctl bootout gui/${ctx.uid}/${LAUNCHD_LABEL}`];
  return [`systemctl --user stop ${SYSTEMD_UNIT}`, 'systemctl --user daemon-reload'];
}

/** Runs one manager command; a failure is SERVICE_COMMAND_FAILED with what it printed. */
export async function mustRun(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const result = await run(command, args, env);
  if (result.code === 0) return;
  throw new BridgeError(
    'SERVICE_COMMAND_FAILED',
    `"${[command, ...args].join(' ')}" failed (${result.missing ? 'not installed' : `exit ${result.code}`}): ${result.stderr.trim() || result.stdout.trim()}`,
    { details: { command: [command, ...args] } },
  );
}

/**
 * A unit must point at files that stay: a path under the temp dir or npx's cache (`_npx`) is gone
 * after a reboot or a cache clean, and the service would then fail at every start.
 */
export function temporaryLocation(path: string): string | undefined {
  const candidates = [path, safeRealpath(path)];
  const temps = [tmpdir(), safeRealpath(tmpdir()), '/tmp', '/private/tmp', '/var/tmp'];
  for (const candidate of candidates) {
    if (candidate.includes('/_npx/')) return 'the npx cache';
    for (const temp of temps)
      if (candidate.startsWith(`${temp.replace(/\/+$/, '')}/`)) return `the temporary directory ${temp}`;
  }
  return undefined;
}

function safeRealpath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:@%+=-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}
