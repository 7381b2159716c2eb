import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { defaultLogPath } from '../config/paths.js';
import { BridgeError } from '../errors.js';
import { managerUnusable, run, type ServiceContext } from './manager.js';
import { LAUNCHD_LABEL, SYSTEMD_UNIT, unitPath } from './templates.js';

function requireInstalled(ctx: ServiceContext): string {
  const file = unitPath(ctx.platform, ctx.env);
  if (!existsSync(file)) {
    throw new BridgeError(
      'SERVICE_NOT_INSTALLED',
      `no service is installed (${file} does not exist); install it with "mcp-bridge service install"`,
      { details: { file } },
    );
  }
  return file;
}

async function requireManager(ctx: ServiceContext, commands: string[]): Promise<void> {
  const unusable = await managerUnusable(ctx);
  if (!unusable) return;
  throw new BridgeError(
    'SERVICE_MANAGER_UNAVAILABLE',
    `${unusable}. Run this in your login session instead:\n${commands.map((c) => `  ${c}`).join('\n')}`,
  );
}

/** `service status`: the manager's own view, printed to the terminal. Its exit code is ours. */
export async function serviceStatus(ctx: ServiceContext): Promise<number> {
  const file = requireInstalled(ctx);
  ctx.say(`Unit file: ${file}`);
  const [command, args] =
    ctx.platform === 'darwin'
      ? ['launchctl', ['print', `gui/${ctx.uid}/${LAUNCHD_LABEL}`]]
      : ['systemctl', ['--user', 'status', '--no-pager', SYSTEMD_UNIT]];
  await requireManager(ctx, [[command, ...args].join(' ')]);
  return (await run(command, args, ctx.env, true)).code ?? 1;
}

/** `service restart`: also what picks up a new node or bin path after an upgrade. */
export async function serviceRestart(ctx: ServiceContext): Promise<number> {
  requireInstalled(ctx);
  const [command, args] =
    ctx.platform === 'darwin'
      ? ['launchctl', ['kickstart', '-k', `gui/${ctx.uid}/${LAUNCHD_LABEL}`]]
      : ['systemctl', ['--user', 'restart', SYSTEMD_UNIT]];
  await requireManager(ctx, [[command, ...args].join(' ')]);
  const result = await run(command, args, ctx.env, true);
  if (result.code === 0) ctx.say('Restarted. Check it with: mcp-bridge doctor');
  return result.code ?? 1;
}

/**
 * The daemon's log file: pino-roll writes `<name>.<n><ext>` beside the configured path, the
 * highest-numbered (newest) file being the active one.
 */
export function activeLogFile(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string {
  const configured = resolve(env.MCP_BRIDGE_LOG_PATH || defaultLogPath(env, platform));
  const dir = dirname(configured);
  const ext = extname(configured);
  const stem = basename(configured, ext);
  let newest: { file: string; mtime: number } | undefined;
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return configured;
  }
  for (const name of names) {
    if (
      name !== `${stem}${ext}` &&
      !new RegExp(`^${escapeRegExp(stem)}\\.\\d+${escapeRegExp(ext)}$`).test(name)
    )
      continue;
    const file = join(dir, name);
    const mtime = statSync(file).mtimeMs;
    if (!newest || mtime > newest.mtime) newest = { file, mtime };
  }
  return newest?.file ?? configured;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `service logs [--follow]`: the last lines of the daemon's log (tail, -F to follow across rotation). */
export async function serviceLogs(
  ctx: ServiceContext,
  options: { follow?: boolean; lines?: number } = {},
): Promise<number> {
  const file = activeLogFile(ctx.env, ctx.platform);
  if (!existsSync(file)) {
    throw new BridgeError(
      'SERVICE_NOT_INSTALLED',
      `no log file at ${file} yet: the daemon has not run with this MCP_BRIDGE_LOG_PATH (see "mcp-bridge service status")`,
      { details: { file } },
    );
  }
  ctx.say(
    `${file}${ctx.platform === 'darwin' ? " (launchd also writes the daemon's stdout/stderr beside it: mcp-bridge.stdout.log, mcp-bridge.stderr.log)" : ` (systemd also keeps its stdout/stderr: journalctl --user -u ${SYSTEMD_UNIT})`}`,
  );
  const args = ['-n', String(options.lines ?? 100), ...(options.follow ? ['-F'] : []), file];
  return (await run('tail', args, ctx.env, true)).code ?? 1;
}
