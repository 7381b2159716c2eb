import { accessTokenPath, loadOrCreateAccessToken } from '../access/access-token.js';
import { loadConfig } from '../config/load.js';
import { localDaemonBase } from '../config/paths.js';
import { parseCommandArgs } from './args.js';
import { BIN } from './stdio.js';

/** One ready-to-paste setting per client. */
interface Snippet {
  readonly client: string;
  /** Where it goes. */
  readonly where: string;
  readonly text: string;
}

/**
 * `mcp-bridge clients`: the settings each MCP client needs to reach the daemon, with the local
 * access token filled in (created now if the daemon has never run, so the settings work at once).
 */
export async function runClients(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('clients', argv, {
    json: { type: 'boolean' },
    config: { type: 'string', short: 'c' },
  });
  const config = loadConfig({ configPath: values.config });
  const url = `${localDaemonBase(config.host, config.port === 0 ? 8769 : config.port)}${config.mcpPath}`;
  const token = config.auth === 'token' ? await loadOrCreateAccessToken(config.configDir) : undefined;
  const snippets = clientSnippets(url, token);
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ url, tokenFile: token ? accessTokenPath(config.configDir) : null, snippets }, null, 2)}\n`,
    );
    return 0;
  }
  const lines: string[] = [];
  if (token) {
    lines.push(
      `These settings hold your local access token (from ${accessTokenPath(config.configDir)}).`,
      'Paste them only into your own clients; "mcp-bridge token rotate" replaces the token.',
      'The Claude Code and Inspector commands put it on a command line (shell history, ps): prefer the',
      'JSON forms where a client takes them, and rotate the token if a command line was shared.',
      '',
    );
  } else {
    lines.push('"auth" is "none": the endpoint needs no token (anyone on this machine can use it).', '');
  }
  for (const s of snippets) lines.push(`# ${s.client} (${s.where})`, s.text, '');
  process.stdout.write(lines.join('\n'));
  return 0;
}

export function clientSnippets(url: string, token: string | undefined): Snippet[] {
  const bearer = token ? `Bearer ${token}` : undefined;
  const headers = bearer ? { headers: { Authorization: bearer } } : {};
  const headerFlag = bearer ? ` --header "Authorization: ${bearer}"` : '';
  const json = (value: unknown) => JSON.stringify(value, null, 2);
  return [
    {
      client: 'Claude Desktop',
      where: 'claude_desktop_config.json; the shim reads the token itself',
      text: json({ mcpServers: { bridge: { command: process.execPath, args: [BIN, 'stdio'] } } }),
    },
    {
      client: 'Claude Code',
      where: 'run in a terminal',
      text: `claude mcp add --transport http bridge ${url}${headerFlag}`,
    },
    {
      client: 'Cursor',
      where: '~/.cursor/mcp.json',
      text: json({ mcpServers: { bridge: { url, ...headers } } }),
    },
    {
      client: 'VS Code',
      where: '.vscode/mcp.json, or "MCP: Open User Configuration"',
      text: json({ servers: { bridge: { type: 'http', url, ...headers } } }),
    },
    {
      client: 'MCP Inspector',
      where: 'CLI mode; in the web UI choose Streamable HTTP and add the same header under Authentication',
      text: `npx @modelcontextprotocol/inspector --cli ${url} --transport http${headerFlag} --method tools/list`,
    },
    {
      client: 'Python SDK',
      where: 'mcp.client.streamable_http',
      text: `streamablehttp_client("${url}"${bearer ? `, headers={"Authorization": "${bearer}"}` : ''})`,
    },
  ];
}
