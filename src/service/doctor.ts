import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { findLocalDaemon, getJson } from '../access/local-daemon.js';
import { claudeDesktopConfigPath, isShim } from '../cli/import.js';
import { loadConfig } from '../config/load.js';
import { resolveConfigDir } from '../config/paths.js';
import { type BridgeConfig, usesOAuth } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Status } from '../server/status.js';
import { VERSION } from '../version.js';
import { activeLogFile } from './control.js';
import { publicChecks } from './doctor-public.js';
import { serviceChecks } from './doctor-service.js';
import { captureLoginPath } from './login-path.js';
import { homeOf, pathFromUnit, type ServicePlatform, unitPath } from './templates.js';

export interface Check {
  readonly name: string;
  /** `skip`: the check does not apply here; not a failure. */
  readonly status: 'pass' | 'fail' | 'skip';
  readonly detail: string;
  readonly fix?: string;
}

export interface DoctorOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly platform: ServicePlatform;
  readonly configPath?: string | undefined;
  readonly uid: number;
}

const pass = (name: string, detail: string): Check => ({ name, status: 'pass', detail });
const skip = (name: string, detail: string): Check => ({ name, status: 'skip', detail });
const fail = (name: string, detail: string, fix: string): Check => ({ name, status: 'fail', detail, fix });

export async function runDoctor(options: DoctorOptions): Promise<Check[]> {
  const { env } = options;
  const checks: Check[] = [nodeCheck()];
  let config: BridgeConfig | undefined;
  let loadError: unknown;
  try {
    config = loadConfig({ configPath: options.configPath, env });
    checks.push(
      pass(
        'config',
        config.fileExists
          ? `${config.file} loads (${config.upstreams.length} upstream(s))`
          : `no file at ${config.file}: defaults, no upstreams`,
      ),
    );
  } catch (error) {
    loadError = error;
    checks.push(
      fail(
        'config',
        errorMessage(error),
        'fix the file as the message says, then run mcp-bridge doctor again',
      ),
    );
  }

  const { check: portCheck, status } = config
    ? await daemonCheck(config)
    : { check: skip('port', 'the config does not load'), status: undefined };
  checks.push(portCheck);
  checks.push(
    ...(config ? await commandChecks(config, options) : [skip('commands', 'the config does not load')]),
  );
  checks.push(...(config ? oauthChecks(config, status) : [skip('oauth logins', 'the config does not load')]));
  checks.push(...(await publicChecks(config, loadError, status, options)));
  checks.push(...modeChecks(config?.configDir ?? resolveConfigDir(env)));
  checks.push(...(await serviceChecks(options)));
  checks.push(claudeCheck(config, options));
  checks.push(logCheck(activeLogFile(env, options.platform)));
  return checks;
}

function nodeCheck(): Check {
  const major = Number(process.versions.node.split('.')[0]);
  return major >= 20
    ? pass('node', `v${process.versions.node} (${process.execPath})`)
    : fail(
        'node',
        `v${process.versions.node} is too old: mcp-bridge needs Node 20 or newer`,
        'install Node 20 or newer, then run mcp-bridge service install again so the service uses it',
      );
}

async function daemonCheck(config: BridgeConfig): Promise<{ check: Check; status: Status | undefined }> {
  const where = `${config.host}:${config.port}`;
  if (config.port === 0)
    return { check: skip('port', 'port 0: the daemon picks a free one at each start'), status: undefined };
  try {
    const daemon = await findLocalDaemon(config);
    if (!daemon) {
      const free = await portFree(config.host, config.port);
      return {
        check: free
          ? pass('port', `${where} is free (no daemon running)`)
          : fail(
              'port',
              `something that is not mcp-bridge listens on ${where}`,
              `stop it (see: lsof -i :${config.port}) or choose another "port" in ${config.file} (or MCP_BRIDGE_PORT)`,
            ),
        status: undefined,
      };
    }
    const status = await getJson<Status>(daemon, '/status').catch(() => undefined);
    if (daemon.version !== VERSION) {
      return {
        check: fail(
          'port',
          `the daemon at ${where} runs mcp-bridge ${daemon.version ?? '(unknown version)'}, this command is ${VERSION}`,
          'restart it so it runs this version: mcp-bridge service restart (or stop it and run mcp-bridge start)',
        ),
        status,
      };
    }
    return { check: pass('port', `mcp-bridge ${VERSION} answers at ${where}`), status };
  } catch (error) {
    return {
      check: fail(
        'port',
        errorMessage(error),
        `stop the other program (lsof -i :${config.port}) or choose another port`,
      ),
      status: undefined,
    };
  }
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.once('error', () => resolvePromise(false));
    server.listen(port, host, () => server.close(() => resolvePromise(true)));
  });
}

/** The PATH the daemon's children get under the service: the installed unit's, else the login shell's. */
export async function servicePath(options: DoctorOptions): Promise<{ path: string; from: string }> {
  const file = unitPath(options.platform, options.env);
  if (existsSync(file)) {
    const path = pathFromUnit(options.platform, readFileSync(file, 'utf8'));
    if (path !== undefined) return { path, from: `the PATH in ${file}` };
  }
  const login = await captureLoginPath({ env: options.env });
  return {
    path: login.path,
    from: login.note ? `this shell's PATH (${login.note})` : "your login shell's PATH (no service installed)",
  };
}

async function commandChecks(config: BridgeConfig, options: DoctorOptions): Promise<Check[]> {
  const stdio = config.upstreams.filter((u) => u.kind === 'stdio');
  if (stdio.length === 0) return [skip('commands', 'no stdio upstream configured')];
  const service = await servicePath(options);
  return stdio.map((u) => {
    const name = `command of ${u.name}`;
    // spawn looks the command up in the child's own PATH, which the upstream's env may set.
    const path = u.env.PATH ?? service.path;
    const from = u.env.PATH !== undefined ? `its "env".PATH` : service.from;
    const found = which(u.command, path, u.cwd ?? homeOf(options.env));
    if (found) return pass(name, `${u.command} → ${found}`);
    return fail(
      name,
      `"${u.command}" is not found on the PATH the service gives it (${from}: ${path || '(empty)'})`,
      `install it, or set "command" of "${u.name}" in ${config.file} to its absolute path; if your terminal finds it, run mcp-bridge service install again so the service gets your current PATH`,
    );
  });
}

/** Like which(1): a command with a slash is taken as a path; otherwise the first executable file on PATH. */
export function which(command: string, path: string, cwd: string): string | undefined {
  const candidates = command.includes('/')
    ? [isAbsolute(command) ? command : resolve(cwd, command)]
    : path
        .split(':')
        .filter(Boolean)
        .map((dir) => join(dir, command));
  return candidates.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  });
}

function oauthChecks(config: BridgeConfig, status: Status | undefined): Check[] {
  const remote = config.upstreams.filter(usesOAuth);
  if (remote.length === 0) return [skip('oauth logins', 'no remote upstream uses OAuth')];
  if (!status) return [skip('oauth logins', 'the daemon is not running; start it to check the logins')];
  return remote.map((u) => {
    const name = `login of ${u.name}`;
    const state = status.upstreams.find((s) => s.name === u.name);
    if (!state)
      return fail(
        name,
        'the running daemon does not know it (started with an older config?)',
        'mcp-bridge service restart',
      );
    if (state.state === 'ready') return pass(name, 'ready');
    if (state.state === 'needs_auth')
      return fail(name, 'needs a login', `npm run auth -- ${u.name}   (or: mcp-bridge auth ${u.name})`);
    return fail(
      name,
      `${state.state}${state.lastError ? `: ${state.lastError.message}` : ''}`,
      'see mcp-bridge status and the log (mcp-bridge service logs)',
    );
  });
}

function modeChecks(configDir: string): Check[] {
  const checks: Check[] = [];
  const want = (file: string, mode: number, fix: string) => {
    const name = `mode of ${file}`;
    let actual: number;
    try {
      actual = statSync(file).mode & 0o777;
    } catch {
      checks.push(skip(name, 'does not exist yet'));
      return;
    }
    if ((actual & 0o077) === 0) checks.push(pass(name, `0${actual.toString(8)}`));
    else
      checks.push(
        fail(name, `0${actual.toString(8)}: other users can reach it (want 0${mode.toString(8)})`, fix),
      );
  };
  want(configDir, 0o700, `chmod 700 ${configDir}`);
  const token = join(configDir, 'access-token');
  want(token, 0o600, `chmod 600 ${token}, then mcp-bridge token rotate (others may have read it)`);
  const oauth = join(configDir, 'oauth-state.json');
  want(oauth, 0o600, `chmod 600 ${oauth}`);
  return checks;
}

function claudeCheck(config: BridgeConfig | undefined, options: DoctorOptions): Check {
  const file = claudeDesktopConfigPath(options.env, options.platform);
  const name = 'Claude Desktop';
  if (!existsSync(file)) return skip(name, `no config at ${file}`);
  let servers: Record<string, { command?: unknown; args?: unknown }>;
  try {
    servers = (JSON.parse(readFileSync(file, 'utf8')) as { mcpServers?: typeof servers }).mcpServers ?? {};
  } catch (error) {
    return fail(
      name,
      `${file} is not valid JSON (${errorMessage(error)})`,
      `fix ${file}; Claude Desktop ignores it as it is`,
    );
  }
  const entries = Object.entries(servers);
  const shim = entries.find(([, e]) => isShim(e));
  const bridged = config?.upstreams ?? [];
  const dupes = entries
    .filter(([, e]) => !isShim(e))
    .filter(([n, e]) =>
      bridged.some(
        (u) =>
          u.name === n ||
          (u.kind === 'stdio' &&
            u.command === e.command &&
            JSON.stringify(u.args) === JSON.stringify(e.args ?? [])),
      ),
    )
    .map(([n]) => n);
  if (!shim) {
    return fail(
      name,
      `${file} has no "mcp-bridge stdio" entry`,
      'mcp-bridge import claude-desktop --rewrite (moves its servers into the bridge and adds the shim), or add the entry from: mcp-bridge stdio --print-config',
    );
  }
  if (dupes.length > 0) {
    return fail(
      name,
      `${file} also starts ${dupes.join(', ')}, which the bridge serves too`,
      `remove ${dupes.join(', ')} from "mcpServers" in ${file} (Claude would run them twice), then restart Claude Desktop`,
    );
  }
  return pass(name, `${file} uses the shim ("${shim[0]}")`);
}

function logCheck(file: string): Check {
  const name = 'log file';
  let probe = file;
  while (!existsSync(probe) && dirname(probe) !== probe) probe = dirname(probe);
  try {
    accessSync(probe, constants.W_OK);
    return pass(name, `${file} is writable${probe === file ? '' : ` (will be created in ${probe})`}`);
  } catch {
    return fail(
      name,
      `${file} cannot be written (${probe} is not writable for this user)`,
      `fix the permissions of ${probe}, or set MCP_BRIDGE_LOG_PATH to a file you can write`,
    );
  }
}
