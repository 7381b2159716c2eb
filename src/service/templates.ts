import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The launchd label, also the plist's file name. */
export const LAUNCHD_LABEL = 'dev.mcp-bridge';
export const SYSTEMD_UNIT = 'mcp-bridge.service';

export type ServicePlatform = 'linux' | 'darwin';

/** What a unit file says: every value already absolute. */
export interface ServiceSpec {
  readonly node: string;
  readonly bin: string;
  readonly path: string;
  readonly workingDirectory: string;
  /** Non-secret variables to set (MCP_BRIDGE_* of the installing shell). */
  readonly env: Readonly<Record<string, string>>;
  /** launchd only: where the daemon's stdout and stderr go. */
  readonly stdoutPath: string;
  readonly stderrPath: string;
}

// The files in systemd/ and launchd/ are the templates: what a user reads there is what we write.
const TEMPLATE_FILES: Record<ServicePlatform, URL> = {
  linux: new URL('../../systemd/mcp-bridge.service', import.meta.url),
  darwin: new URL(`../../launchd/${LAUNCHD_LABEL}.plist`, import.meta.url),
};

export function templatePath(platform: ServicePlatform): string {
  return fileURLToPath(TEMPLATE_FILES[platform]);
}

/** Where the service manager looks for our unit. */
export function unitPath(platform: ServicePlatform, env: NodeJS.ProcessEnv = process.env): string {
  if (platform === 'darwin') return join(homeOf(env), 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
  return join(env.XDG_CONFIG_HOME || join(homeOf(env), '.config'), 'systemd', 'user', SYSTEMD_UNIT);
}

export function homeOf(env: NodeJS.ProcessEnv): string {
  return env.HOME || homedir();
}

export function renderUnit(platform: ServicePlatform, spec: ServiceSpec): string {
  const template = readFileSync(TEMPLATE_FILES[platform], 'utf8');
  const values = platform === 'darwin' ? launchdValues(spec) : systemdValues(spec);
  // A placeholder alone on its line and empty (no extra variables) takes its line with it.
  return template
    .replace(/^[ \t]*\{\{([A-Z_]+)\}\}\n/gm, (whole, key: string) => (values[key] === '' ? '' : whole))
    .replace(/\{\{([A-Z_]+)\}\}/g, (whole, key: string) => {
      const value = values[key];
      if (value === undefined) throw new Error(`template ${templatePath(platform)} has an unknown ${whole}`);
      return value;
    });
}

function systemdValues(spec: ServiceSpec): Record<string, string> {
  return {
    EXEC_START: [spec.node, spec.bin, 'start'].map(systemdExecArg).join(' '),
    WORKING_DIRECTORY: systemdPath(spec.workingDirectory),
    PATH_ENV: systemdEnvAssignment('PATH', spec.path),
    ENVIRONMENT: Object.entries(spec.env)
      .map(([k, v]) => `Environment=${systemdEnvAssignment(k, v)}`)
      .join('\n'),
  };
}

// systemd.syntax(7): a quoted word takes C escapes; `%` starts a specifier everywhere, `$` a
// variable in Exec lines.
function systemdQuote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%')}"`;
}

function systemdExecArg(value: string): string {
  return systemdQuote(value).replace(/\$/g, '$$$$');
}

function systemdEnvAssignment(name: string, value: string): string {
  return systemdQuote(`${name}=${value}`);
}

// WorkingDirectory= takes no quotes; a path with whitespace is written with C escapes.
function systemdPath(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/%/g, '%%')
    .replace(/\s/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function launchdValues(spec: ServiceSpec): Record<string, string> {
  return {
    LABEL: xml(LAUNCHD_LABEL),
    NODE: xml(spec.node),
    BIN: xml(spec.bin),
    WORKING_DIRECTORY: xml(spec.workingDirectory),
    PATH: xml(spec.path),
    ENVIRONMENT: Object.entries(spec.env)
      .map(([k, v]) => `    <key>${xml(k)}</key>\n    <string>${xml(v)}</string>`)
      .join('\n'),
    STDOUT_PATH: xml(spec.stdoutPath),
    STDERR_PATH: xml(spec.stderrPath),
  };
}

function xml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * The PATH a unit we wrote gives the daemon, or undefined when it has none we can read. Reads back
 * only what renderUnit writes.
 */
export function pathFromUnit(platform: ServicePlatform, text: string): string | undefined {
  if (platform === 'darwin') {
    const match = /<key>PATH<\/key>\s*<string>([^<]*)<\/string>/.exec(text);
    return match ? unxml(match[1]!) : undefined;
  }
  const match = /^Environment="PATH=((?:[^"\\]|\\.)*)"/m.exec(text);
  return match ? match[1]!.replace(/\\(.)/g, '$1').replace(/%%/g, '%') : undefined;
}

function unxml(value: string): string {
  return value
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
}
