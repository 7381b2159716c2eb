import { copyFile, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveConfigFile } from '../config/paths.js';
import { type StdioServer, UpstreamNameSchema } from '../config/schema.js';
import { BridgeError, errorMessage } from '../errors.js';
import { isJsonObject as isObject } from '../json-object.js';
import { jsonSyntaxProblem } from '../store/json-file.js';
import { writeFileAtomic } from '../store/write-file-atomic.js';
import { parseCommandArgs } from './args.js';

const BIN = fileURLToPath(new URL('../../bin/mcp-bridge.js', import.meta.url));
/**
 * The keys of a Claude Desktop entry that are copied; anything else is dropped. A subset of what
 * a bridge stdio entry accepts (the bridge's own keys have no meaning in Claude Desktop).
 */
const STDIO_KEYS = [
  'command',
  'args',
  'env',
  'cwd',
  'disabled',
] as const satisfies readonly (keyof StdioServer)[];
const SHIM_NAME = 'mcp-bridge';

type Json = Record<string, unknown>;

/** Where Claude Desktop keeps its config on this OS. */
export function claudeDesktopConfigPath(
  env: NodeJS.ProcessEnv = process.env,
  platform = process.platform,
): string {
  if (platform === 'darwin') {
    return join(homedir(), 'Library', 'Application Support', 'Claude', 'claude_desktop_config.json');
  }
  if (platform === 'win32')
    return join(env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), 'Claude', 'claude_desktop_config.json');
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'Claude', 'claude_desktop_config.json');
}

/**
 * `mcp-bridge import claude-desktop`: moves Claude Desktop's stdio servers into the bridge's config;
 * with --rewrite, replaces them there by the one shim entry, after a timestamped backup.
 */
export async function runImport(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'import',
    argv,
    {
      from: { type: 'string' },
      rewrite: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      config: { type: 'string', short: 'c' },
    },
    true,
  );
  if (positionals.length !== 1 || positionals[0] !== 'claude-desktop') {
    throw new BridgeError(
      'USAGE',
      'import: the only source is "claude-desktop"; run "mcp-bridge import --help"',
    );
  }
  const dryRun = values['dry-run'] === true;
  const source = values.from ?? claudeDesktopConfigPath();
  const target = resolveConfigFile({ configPath: values.config }).file;

  const claude = await readJson(source, 'the Claude Desktop config', false);
  const bridge = await readJson(target, 'the mcp-bridge config', true);
  const claudeServers = objectAt(claude, 'mcpServers', source);
  const bridgeServers = objectAt(bridge, 'mcpServers', target);

  const report: string[] = [];
  const moved: string[] = [];
  for (const [name, entry] of Object.entries(claudeServers)) {
    const skip = (why: string) => report.push(`  skipped ${name}: ${why}`);
    if (!isObject(entry)) skip('not an object');
    else if (isShim(entry)) skip('this is the mcp-bridge shim itself');
    else if (typeof entry.command !== 'string')
      skip('not a stdio server (no "command"); left in Claude Desktop');
    else if (!UpstreamNameSchema.safeParse(name).success) {
      skip('the bridge needs names of 1-40 letters, digits, "_" or "-"; rename it and import again');
    } else if (name in bridgeServers) skip('a server with this name is already in the mcp-bridge config');
    else {
      const kept = Object.fromEntries(STDIO_KEYS.filter((k) => k in entry).map((k) => [k, entry[k]]));
      const dropped = Object.keys(entry).filter((k) => !(STDIO_KEYS as readonly string[]).includes(k));
      bridgeServers[name] = kept;
      moved.push(name);
      report.push(
        `  imported ${name}${dropped.length ? ` (dropped keys the bridge does not use: ${dropped.join(', ')})` : ''}`,
      );
    }
  }

  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(`${dryRun ? 'Would import' : 'Importing'} from ${source} into ${target}:`);
  for (const line of report.length ? report : ['  (no servers in the Claude Desktop config)']) out(line);

  bridge.mcpServers = bridgeServers;
  const rewritten = values.rewrite ? rewriteClaude(claude, claudeServers, moved) : undefined;
  if (dryRun) {
    out(`\n${target} would become:\n${JSON.stringify(bridge, null, 2)}`);
    if (rewritten) out(`\n${source} would become (after a backup):\n${JSON.stringify(rewritten, null, 2)}`);
    out('\nDry run: nothing was written.');
    return 0;
  }
  if (moved.length > 0) {
    await writeFileAtomic(target, `${JSON.stringify(bridge, null, 2)}\n`, { mode: 0o600 });
    out(`Wrote ${target}.`);
  }
  if (rewritten) {
    const backup = `${source}.backup-${timestamp()}`;
    await copyFile(source, backup);
    await writeFileAtomic(source, `${JSON.stringify(rewritten, null, 2)}\n`, { mode: 0o600 });
    out(`Backed up ${source} to ${backup}.`);
    out(
      `Rewrote ${source}: ${moved.length} server(s) now reach Claude Desktop through "${SHIM_NAME}". Restart Claude Desktop.`,
    );
  } else if (moved.length > 0) {
    out(
      'Claude Desktop still starts these servers itself; run again with --rewrite to replace them by the shim.',
    );
  }
  if (moved.length > 0) out('Restart the mcp-bridge daemon to start the imported servers.');
  return 0;
}

/** Claude's config without the moved servers, plus the shim entry (once). */
function rewriteClaude(claude: Json, servers: Json, moved: readonly string[]): Json {
  const kept = Object.fromEntries(Object.entries(servers).filter(([name]) => !moved.includes(name)));
  const hasShim = Object.values(kept).some((entry) => isObject(entry) && isShim(entry));
  if (!hasShim) kept[SHIM_NAME] = { command: process.execPath, args: [BIN, 'stdio'] };
  return { ...claude, mcpServers: kept };
}

/** An mcpServers entry that runs `mcp-bridge stdio` (the shim), whatever the path to it. */
export function isShim(entry: { command?: unknown; args?: unknown }): boolean {
  const args = Array.isArray(entry.args) ? entry.args.map(String) : [];
  const command = String(entry.command ?? '');
  return args.includes('stdio') && [command, ...args].some((a) => /mcp-bridge(\.js)?$/.test(a));
}

async function readJson(file: string, what: string, optional: boolean): Promise<Json> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (optional && (error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new BridgeError(
      'CONFIG_NOT_FOUND',
      `cannot read ${what} at ${file} (${errorMessage(error)})${optional ? '' : '; pass --from PATH if it is elsewhere'}; nothing was changed`,
    );
  }
  if (!text.trim()) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new BridgeError(
      'CONFIG_INVALID',
      `${what} at ${file} is not valid JSON (${jsonSyntaxProblem(error, text)}); nothing was changed`,
    );
  }
  if (!isObject(parsed))
    throw new BridgeError('CONFIG_INVALID', `${what} at ${file} is not a JSON object; nothing was changed`);
  return parsed;
}

function objectAt(json: Json, key: string, file: string): Json {
  const value = json[key] ?? {};
  if (!isObject(value))
    throw new BridgeError('CONFIG_INVALID', `"${key}" in ${file} is not an object; nothing was changed`);
  return { ...value };
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
}
