import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { defaultLogPath } from '../config/paths.js';
import { looksSecretName, redactSecrets } from '../config/redact.js';
import { BridgeError } from '../errors.js';
import { writeFileAtomic } from '../store/write-file-atomic.js';
import { captureLoginPath } from './login-path.js';
import {
  installCommands,
  managerUnusable,
  mustRun,
  type ServiceContext,
  temporaryLocation,
  uninstallCommands,
} from './manager.js';
import { homeOf, LAUNCHD_LABEL, renderUnit, type ServiceSpec, SYSTEMD_UNIT, unitPath } from './templates.js';

// Variables that hold paths: the service starts in another directory, so they are made absolute.
const PATH_VARIABLES = new Set(['MCP_BRIDGE_CONFIG', 'MCP_BRIDGE_CONFIG_DIR', 'MCP_BRIDGE_LOG_PATH']);
// Names the secret pattern matches that hold no secret ("token" or "none").
const NOT_SECRET = new Set(['MCP_BRIDGE_AUTH']);

export interface ServiceEnvironment {
  readonly kept: Record<string, string>;
  /** Secret-looking MCP_BRIDGE_* variables that were set and left out. */
  readonly leftOut: string[];
}

/** The MCP_BRIDGE_* variables of the installing shell that may go into a unit file. */
export function serviceEnvironment(env: NodeJS.ProcessEnv): ServiceEnvironment {
  const kept: Record<string, string> = {};
  const leftOut: string[] = [];
  for (const [name, value] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!name.startsWith('MCP_BRIDGE_') || value === undefined || value === '') continue;
    // An op:// reference names a secret without being one.
    const reference = value.startsWith('op://');
    const secretName = looksSecretName(name) && !NOT_SECRET.has(name);
    if (!reference && (secretName || redactSecrets(value) !== value)) {
      leftOut.push(name);
      continue;
    }
    kept[name] = PATH_VARIABLES.has(name) ? resolve(value) : value;
  }
  return { kept, leftOut };
}

export async function buildSpec(ctx: ServiceContext): Promise<{ spec: ServiceSpec; notes: string[] }> {
  const notes: string[] = [];
  const login = await captureLoginPath({ env: ctx.env });
  if (login.note) notes.push(`PATH: ${login.note}.`);
  const { kept, leftOut } = serviceEnvironment(ctx.env);
  for (const name of leftOut) {
    notes.push(
      `${name} is set but looks like a secret, so it is not written into the unit file (anyone who can read your home directory could read it there). Put it in config.json instead, as \${env:X} or an op:// reference (1Password CLI).`,
    );
  }
  const logDir = dirname(resolve(kept.MCP_BRIDGE_LOG_PATH ?? defaultLogPath(ctx.env, ctx.platform)));
  const spec: ServiceSpec = {
    node: ctx.node,
    bin: ctx.bin,
    path: login.path,
    workingDirectory: homeOf(ctx.env),
    env: kept,
    stdoutPath: join(logDir, 'mcp-bridge.stdout.log'),
    stderrPath: join(logDir, 'mcp-bridge.stderr.log'),
  };
  return { spec, notes };
}

/** `service install [--dry-run]`: writes (or rewrites) the unit, then loads it. Returns the exit code. */
export async function installService(
  ctx: ServiceContext,
  options: { dryRun?: boolean } = {},
): Promise<number> {
  if (!ctx.allowTemporary) {
    for (const [what, path] of [
      ['bin/mcp-bridge.js', ctx.bin],
      ['node', ctx.node],
    ] as const) {
      const where = temporaryLocation(path);
      if (where) {
        throw new BridgeError(
          'SERVICE_PATH_TEMPORARY',
          `refusing to install: ${what} is at ${path}, inside ${where}. The service would point at a path that vanishes (after a reboot or a cache clean) and then fail at every start. Install mcp-bridge for good first (npm install -g mcp-bridge, or a clone), then run "mcp-bridge service install" from there (or pass --force if this place stays)`,
          { details: { path } },
        );
      }
    }
  }
  const file = unitPath(ctx.platform, ctx.env);
  const { spec, notes } = await buildSpec(ctx);
  const text = renderUnit(ctx.platform, spec);
  for (const note of notes) ctx.say(note);
  if (options.dryRun) {
    ctx.print(text);
    ctx.say(`Dry run: this is what would be written to ${file}; nothing was changed.`);
    return 0;
  }

  const before = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  await writeFileAtomic(file, text, { mode: 0o644, dirMode: 0o755 });
  // launchd does not create the directory of StandardOutPath.
  await mkdir(dirname(spec.stdoutPath), { recursive: true, mode: 0o700 });
  ctx.say(`${before === undefined ? 'Wrote' : before === text ? 'Unchanged:' : 'Updated'} ${file}`);

  const unusable = await managerUnusable(ctx);
  if (unusable) {
    throw new BridgeError(
      'SERVICE_MANAGER_UNAVAILABLE',
      `the unit file is written, but ${unusable}, so the service is not started. Run these in your login session:\n${installCommands(
        ctx,
        file,
      )
        .map((c) => `  ${c}`)
        .join('\n')}`,
      { details: { file } },
    );
  }
  if (ctx.platform === 'darwin') {
    const domain = `gui/${ctx.uid}`;
    // bootstrap refuses a label that is loaded: unload the old definition first (absent is fine).
    await mustRun('launchctl', ['bootout', `${domain}/${LAUNCHD_LABEL}`], ctx.env).catch(() => {});
    await mustRun('launchctl', ['bootstrap', domain, file], ctx.env);
    ctx.say(`Loaded ${LAUNCHD_LABEL} into ${domain}: it starts now and at every login.`);
  } else {
    await mustRun('systemctl', ['--user', 'daemon-reload'], ctx.env);
    await mustRun('systemctl', ['--user', 'enable', '--now', SYSTEMD_UNIT], ctx.env);
    // enable --now leaves a running daemon on its old definition.
    if (before !== undefined && before !== text)
      await mustRun('systemctl', ['--user', 'restart', SYSTEMD_UNIT], ctx.env);
    ctx.say(`Enabled and started ${SYSTEMD_UNIT}: it starts at every login.`);
    ctx.say(
      `To keep it running after you log out (and start it at boot): loginctl enable-linger ${ctx.env.USER ?? '$USER'}`,
    );
  }
  ctx.say('Check it with: mcp-bridge doctor');
  return 0;
}

/** `service uninstall`: stops the service and removes the unit (and systemd's enable link). */
export async function uninstallService(ctx: ServiceContext): Promise<number> {
  const file = unitPath(ctx.platform, ctx.env);
  const wantsLink = join(dirname(file), 'default.target.wants', SYSTEMD_UNIT);
  const linked = ctx.platform === 'linux' && isLink(wantsLink);
  if (!existsSync(file) && !linked) {
    ctx.say(`No service installed (${file} does not exist); nothing to do.`);
    return 0;
  }
  const unusable = await managerUnusable(ctx);
  if (!unusable) {
    if (ctx.platform === 'darwin') {
      await mustRun('launchctl', ['bootout', `gui/${ctx.uid}/${LAUNCHD_LABEL}`], ctx.env).catch((error) => {
        // Not loaded: nothing to stop.
        if (!/No such process|Could not find/i.test(String(error))) throw error;
      });
    } else {
      await mustRun('systemctl', ['--user', 'disable', '--now', SYSTEMD_UNIT], ctx.env);
    }
  }
  await rm(file, { force: true });
  if (linked) await rm(wantsLink, { force: true });
  ctx.say(`Removed ${file}`);
  if (unusable) {
    throw new BridgeError(
      'SERVICE_MANAGER_UNAVAILABLE',
      `the unit file is removed, but ${unusable}, so a service still running from it was not stopped. Run these in your login session:\n${uninstallCommands(
        ctx,
      )
        .map((c) => `  ${c}`)
        .join('\n')}`,
      { details: { file } },
    );
  }
  if (ctx.platform === 'linux') await mustRun('systemctl', ['--user', 'daemon-reload'], ctx.env);
  return 0;
}

// lstat: a dangling link (its unit removed by hand) still counts.
function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
