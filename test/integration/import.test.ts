import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { makeTempDir } from '../helpers/bridge.js';
import { cliEnv, runCli } from '../helpers/cli.js';

describe('mcp-bridge import claude-desktop', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  const claudeConfig = {
    globalShortcut: 'Ctrl+Space',
    mcpServers: {
      filesystem: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/tmp'] },
      github: { command: 'npx', args: ['-y', 'server-github'], env: { TOKEN: 'x' }, type: 'stdio' },
      notes: { command: 'node', args: ['notes.js'] },
      remote: { url: 'https://example.com/mcp' },
      'bad name!': { command: 'node' },
    },
  };

  function setup(claude: unknown = claudeConfig) {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    const claudeDir = join(temp.dir, 'claude');
    mkdirSync(claudeDir);
    const from = join(claudeDir, 'claude_desktop_config.json');
    writeFileSync(from, typeof claude === 'string' ? claude : JSON.stringify(claude, null, 2));
    const env = cliEnv(temp.dir);
    const configDir = env.MCP_BRIDGE_CONFIG_DIR as string;
    mkdirSync(configDir, { recursive: true });
    const target = join(configDir, 'config.json');
    writeFileSync(
      target,
      JSON.stringify({ port: 9999, mcpServers: { notes: { command: 'node', args: ['mine.js'] } } }),
    );
    return { from, claudeDir, target, env };
  }

  const read = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

  it('moves stdio servers into the bridge config, reporting every name it skips, and keeps the rest', async () => {
    const { from, target, env } = setup();
    const before = readFileSync(from, 'utf8');
    const result = await runCli(['import', 'claude-desktop', '--from', from], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('imported filesystem');
    expect(result.stdout).toContain('imported github (dropped keys the bridge does not use: type)');
    expect(result.stdout).toMatch(
      /skipped notes: a server with this name is already in the mcp-bridge config/,
    );
    expect(result.stdout).toMatch(/skipped remote: not a stdio server/);
    expect(result.stdout).toMatch(/skipped bad name!: the bridge needs names/);
    const bridge = read(target);
    expect(bridge.port).toBe(9999);
    expect(bridge.mcpServers.notes).toEqual({ command: 'node', args: ['mine.js'] });
    expect(bridge.mcpServers.github).toEqual({
      command: 'npx',
      args: ['-y', 'server-github'],
      env: { TOKEN: 'x' },
    });
    // The result is a config the daemon accepts.
    expect(
      loadConfig({ configPath: target, env: {} })
        .upstreams.map((u) => u.name)
        .sort(),
    ).toEqual(['filesystem', 'github', 'notes']);
    expect(readFileSync(from, 'utf8')).toBe(before);
  });

  it('with --rewrite, backs up Claude Desktop config and replaces the imported servers by the shim', async () => {
    const { from, claudeDir, env } = setup();
    const before = readFileSync(from, 'utf8');
    const result = await runCli(['import', 'claude-desktop', '--from', from, '--rewrite'], env);
    expect(result.code).toBe(0);
    const backups = readdirSync(claudeDir).filter((f) => f.includes('.backup-'));
    expect(backups).toHaveLength(1);
    expect(readFileSync(join(claudeDir, backups[0]!), 'utf8')).toBe(before);
    const claude = read(from);
    expect(claude.globalShortcut).toBe('Ctrl+Space');
    expect(Object.keys(claude.mcpServers).sort()).toEqual(['bad name!', 'mcp-bridge', 'notes', 'remote']);
    expect(claude.mcpServers['mcp-bridge'].args.at(-1)).toBe('stdio');
    expect(claude.mcpServers['mcp-bridge'].command).toBe(process.execPath);

    // Running it again changes nothing: the shim is recognized and skipped.
    const again = await runCli(['import', 'claude-desktop', '--from', from, '--rewrite'], env);
    expect(again.stdout).toContain('skipped mcp-bridge: this is the mcp-bridge shim itself');
    expect(read(from).mcpServers['mcp-bridge']).toEqual(claude.mcpServers['mcp-bridge']);
  });

  it('with --dry-run, shows the change and writes nothing', async () => {
    const { from, claudeDir, target, env } = setup();
    const claudeBefore = readFileSync(from, 'utf8');
    const bridgeBefore = readFileSync(target, 'utf8');
    const result = await runCli(['import', 'claude-desktop', '--from', from, '--rewrite', '--dry-run'], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('would become');
    expect(result.stdout).toContain('"filesystem"');
    expect(result.stdout).toContain('Dry run: nothing was written.');
    expect(readFileSync(from, 'utf8')).toBe(claudeBefore);
    expect(readFileSync(target, 'utf8')).toBe(bridgeBefore);
    expect(readdirSync(claudeDir)).toHaveLength(1);
  });

  it('refuses a malformed Claude Desktop config with a clear error and writes nothing', async () => {
    const { from, claudeDir, target, env } = setup('{"mcpServers": {');
    const bridgeBefore = readFileSync(target, 'utf8');
    const result = await runCli(['import', 'claude-desktop', '--from', from, '--rewrite'], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${from} is not valid JSON`);
    expect(result.stderr).toContain('nothing was changed');
    expect(readFileSync(target, 'utf8')).toBe(bridgeBefore);
    expect(readdirSync(claudeDir)).toHaveLength(1);
  });
});
