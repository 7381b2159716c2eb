import { getJson, requireLocalDaemon } from '../access/local-daemon.js';
import { loadConfig } from '../config/load.js';
import type { Status } from '../server/status.js';
import { parseCommandArgs } from './args.js';

export async function runStatus(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('status', argv, {
    json: { type: 'boolean' },
    config: { type: 'string', short: 'c' },
  });
  const config = loadConfig({ configPath: values.config });
  const daemon = await requireLocalDaemon(config);
  const status = await getJson<Status>(daemon, '/status');
  if (values.json) {
    process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
    return 0;
  }
  const lines = [
    `mcp-bridge ${status.version}, pid ${status.pid}, ${status.sessions} session(s), up ${Math.round(status.uptimeMs / 1000)} s`,
  ];
  if (status.upstreams.length === 0) lines.push('no upstreams configured');
  for (const u of status.upstreams) {
    const pid = u.pid === null ? '' : ` pid ${u.pid}`;
    const tools = `${u.toolCount} tool(s)${u.toolsSource === 'cache' ? ' (cached)' : ''}`;
    const protocol = u.protocolVersion ? `, MCP ${u.protocolVersion}` : '';
    lines.push(
      `${u.name.padEnd(20)} ${u.state.padEnd(10)} ${tools}${pid}${protocol}, ${u.restarts} restart(s), since ${u.since}`,
    );
    if (u.lastError && u.state !== 'ready') lines.push(`${' '.repeat(21)}last error: ${u.lastError.message}`);
    if (u.action) lines.push(`${' '.repeat(21)}to fix: ${u.action}`);
  }
  if (status.public) {
    const { url, port, exposes, connectors } = status.public;
    lines.push(
      `public: ${url} (listening on port ${port}) exposes ${exposes.length > 0 ? exposes.join(', ') : 'nothing'} to ${connectors} connector(s); see mcp-bridge connectors list`,
    );
  }
  for (const clash of status.clashes) lines.push(`name clash: ${clash}`);
  // A daemon older than this command sends no warnings.
  for (const warning of status.warnings ?? []) lines.push(`warning: ${warning}`);
  if (status.configError) {
    lines.push(`config error (since ${status.configError.at}; the daemon runs the last good config):`);
    lines.push(...status.configError.message.split('\n').map((line) => `  ${line}`));
  }
  if (status.restartNeeded?.length) {
    lines.push(
      `restart needed: ${status.restartNeeded.join(', ')} changed in the config; restart the daemon to apply`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
