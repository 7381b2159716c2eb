import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/bridge.js';
import { BIN, cliEnv, runCli } from '../helpers/cli.js';
import { fakeLoginShell, LOGIN_ONLY_DIR, listFiles } from '../helpers/service.js';

// The CI machine (a container) has systemd-analyze but no user session bus: `systemctl --user`
// cannot answer there. The env below has no XDG_RUNTIME_DIR or DBUS_SESSION_BUS_ADDRESS, so that
// is true on a desktop too and a test never installs a real service.
describe.runIf(process.platform === 'linux')('mcp-bridge service (systemd)', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  function setup(extra: Record<string, string> = {}) {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    const xdg = join(temp.dir, 'xdg-config');
    const env = cliEnv(temp.dir, {
      SHELL: fakeLoginShell(temp.dir),
      XDG_CONFIG_HOME: xdg,
      MCP_BRIDGE_LOG_LEVEL: 'debug',
      ...extra,
    });
    return { dir: temp.dir, env, unit: join(xdg, 'systemd', 'user', 'mcp-bridge.service') };
  }

  it('--dry-run prints the unit with absolute paths and the login PATH, and writes nothing', async () => {
    const { dir, env } = setup();
    const before = listFiles(dir);
    const result = await runCli(['service', 'install', '--dry-run', '--force'], env);
    expect(result.stderr).toContain('nothing was changed');
    expect(result.code).toBe(0);
    expect(listFiles(dir)).toEqual(before);
    expect(result.stdout).toContain(`ExecStart="${process.execPath}" "${BIN}" "start"`);
    const path = /^Environment="PATH=([^"]*)"$/m.exec(result.stdout)?.[1];
    expect(path?.split(':')[0]).toBe(LOGIN_ONLY_DIR);
    expect(result.stdout).not.toContain('Welcome to your shell');
    expect(result.stdout).toContain(`Environment="MCP_BRIDGE_CONFIG_DIR=${env.MCP_BRIDGE_CONFIG_DIR}"`);
    expect(result.stdout).toContain('Environment="MCP_BRIDGE_LOG_LEVEL=debug"');
    expect(result.stdout).not.toMatch(/\{\{[A-Z_]+\}\}/);
  });

  it('install writes a unit systemd-analyze accepts, exits 1 with the commands, updates in place; uninstall removes it', async () => {
    const { dir, env, unit } = setup({ MCP_BRIDGE_OWNER_PASSWORD: 'hunter2-not-in-the-unit' });
    const first = await runCli(['service', 'install', '--force'], env);
    expect(first.code).toBe(1);
    expect(first.stderr).toContain('systemctl --user daemon-reload');
    expect(first.stderr).toContain('systemctl --user enable --now mcp-bridge.service');
    expect(first.stderr).toContain('MCP_BRIDGE_OWNER_PASSWORD is set but looks like a secret');
    expect(existsSync(unit)).toBe(true);

    const text = readFileSync(unit, 'utf8');
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('MCP_BRIDGE_OWNER_PASSWORD');
    for (const line of [
      'Restart=on-failure',
      'ExecReload=/bin/kill -HUP $MAINPID',
      'KillMode=control-group',
      'RestartSec=3',
      'WantedBy=default.target',
    ]) {
      expect(text.split('\n')).toContain(line);
    }
    expect(text).toContain(`ExecStart="${process.execPath}" "${BIN}" "start"`);
    expect(/^Environment="PATH=([^"]*)"$/m.exec(text)?.[1]?.split(':')[0]).toBe(LOGIN_ONLY_DIR);

    // verify --user needs a runtime dir to build its manager; an empty private one is enough.
    const runtime = join(dir, 'runtime');
    mkdirSync(runtime, { mode: 0o700 });
    const verify = spawnSync('systemd-analyze', ['--user', 'verify', unit], {
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        XDG_RUNTIME_DIR: runtime,
        XDG_CONFIG_HOME: env.XDG_CONFIG_HOME,
      },
      encoding: 'utf8',
    });
    // Unknown keys and bad values are only warnings (exit 0): they must not appear at all.
    expect(verify.stderr).toBe('');
    expect(verify.status).toBe(0);

    const again = await runCli(['service', 'install', '--force'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`Unchanged: ${unit}`);
    const changed = await runCli(['service', 'install', '--force'], { ...env, MCP_BRIDGE_LOG_LEVEL: 'warn' });
    expect(changed.stderr).toContain(`Updated ${unit}`);
    expect(readFileSync(unit, 'utf8')).toContain('Environment="MCP_BRIDGE_LOG_LEVEL=warn"');
    expect(listFiles(join(env.XDG_CONFIG_HOME as string, 'systemd', 'user'))).toEqual(['mcp-bridge.service']);

    const removed = await runCli(['service', 'uninstall'], env);
    expect(removed.stderr).toContain(`Removed ${unit}`);
    expect(removed.stderr).toContain('systemctl --user stop mcp-bridge.service');
    expect(removed.code).toBe(1);
    expect(existsSync(unit)).toBe(false);
    const nothing = await runCli(['service', 'uninstall'], env);
    expect(nothing.code).toBe(0);
  });

  it('status without an installed unit says how to install it', async () => {
    const { env } = setup();
    const result = await runCli(['service', 'status'], env);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('mcp-bridge service install');
  });
});
