import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/bridge.js';
import { BIN, cliEnv, freePort, runCli } from '../helpers/cli.js';
import { fakeLoginShell } from '../helpers/service.js';

describe.runIf(process.platform === 'linux')('mcp-bridge doctor', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  /** A temp HOME with a bridge config, a Claude Desktop config and a login shell whose PATH has `tools/`. */
  async function setup(servers: Record<string, unknown>, claude: Record<string, unknown>) {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    const tools = join(temp.dir, 'tools');
    mkdirSync(tools);
    // Only on the login shell's PATH, not on the test's: doctor must look where the service looks.
    writeFileSync(join(tools, 'my-mcp-server'), '#!/bin/sh\n');
    chmodSync(join(tools, 'my-mcp-server'), 0o755);
    const env = cliEnv(temp.dir, {
      SHELL: fakeLoginShell(temp.dir, [tools]),
      MCP_BRIDGE_PORT: String(await freePort()),
    });
    const configDir = env.MCP_BRIDGE_CONFIG_DIR as string;
    mkdirSync(configDir, { mode: 0o700 });
    writeFileSync(join(configDir, 'config.json'), JSON.stringify({ mcpServers: servers }));
    const claudeFile = join(temp.dir, '.config', 'Claude', 'claude_desktop_config.json');
    mkdirSync(dirname(claudeFile), { recursive: true });
    writeFileSync(claudeFile, JSON.stringify({ mcpServers: claude }));
    return { env };
  }

  const shim = { 'mcp-bridge': { command: process.execPath, args: [BIN, 'stdio'] } };

  it('passes on a good setup: commands found on the login PATH, shim in Claude Desktop', async () => {
    const { env } = await setup({ mine: { command: 'my-mcp-server' } }, shim);
    const result = await runCli(['doctor'], env);
    expect(result.stdout).toMatch(/✓ command of mine: my-mcp-server → .*\/tools\/my-mcp-server/);
    expect(result.stdout).toContain('✓ Claude Desktop');
    expect(result.stdout).toMatch(/✓ port: .* is free/);
    expect(result.stdout).not.toContain('✗');
    expect(result.code).toBe(0);
    const json = await runCli(['doctor', '--json'], env);
    expect(JSON.parse(json.stdout).ok).toBe(true);
    expect(json.code).toBe(0);
  });

  it('reports a command missing from the service PATH, with the fix, and exits 1', async () => {
    const { env } = await setup({ gone: { command: 'no-such-mcp-server' } }, shim);
    const result = await runCli(['doctor'], env);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      '✗ command of gone: "no-such-mcp-server" is not found on the PATH the service gives it',
    );
    expect(result.stdout).toMatch(
      / {4}fix: install it, or set "command" of "gone" in .*config\.json to its absolute path/,
    );
  });

  it('reports a Claude Desktop config without the shim, and a server both there and in the bridge', async () => {
    const noShim = await setup({ mine: { command: 'my-mcp-server' } }, {});
    const a = await runCli(['doctor'], noShim.env);
    expect(a.code).toBe(1);
    expect(a.stdout).toContain('has no "mcp-bridge stdio" entry');
    expect(a.stdout).toContain('fix: mcp-bridge import claude-desktop --rewrite');

    const dupe = await setup(
      { mine: { command: 'my-mcp-server' } },
      { ...shim, mine: { command: 'my-mcp-server' } },
    );
    const b = await runCli(['doctor'], dupe.env);
    expect(b.code).toBe(1);
    expect(b.stdout).toContain('also starts mine, which the bridge serves too');
  });

  it('reports a config dir others can read', async () => {
    const { env } = await setup({}, shim);
    chmodSync(env.MCP_BRIDGE_CONFIG_DIR as string, 0o755);
    const result = await runCli(['doctor'], env);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`fix: chmod 700 ${env.MCP_BRIDGE_CONFIG_DIR}`);
  });
});
