import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isBridgeError } from '../../src/errors.js';
import { buildSpec, installService } from '../../src/service/install.js';
import { captureLoginPath } from '../../src/service/login-path.js';
import { defaultContext } from '../../src/service/manager.js';
import { pathFromUnit, renderUnit } from '../../src/service/templates.js';
import { makeTempDir } from '../helpers/bridge.js';
import { BIN } from '../helpers/cli.js';
import { fakeLoginShell, LOGIN_ONLY_DIR, listFiles, parsePlist } from '../helpers/service.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function temp() {
  const t = makeTempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

function quietContext(dir: string, overrides: Parameters<typeof defaultContext>[0] = {}) {
  const lines: string[] = [];
  const env = {
    PATH: process.env.PATH,
    HOME: dir,
    SHELL: fakeLoginShell(dir),
    MCP_BRIDGE_CONFIG_DIR: join(dir, 'config'),
    MCP_BRIDGE_LOG_PATH: join(dir, 'logs', 'mcp-bridge.log'),
    MCP_BRIDGE_OWNER_PASSWORD: 'hunter2',
  };
  const ctx = defaultContext({
    env,
    bin: BIN,
    say: (l) => lines.push(l),
    print: (t) => lines.push(t),
    ...overrides,
  });
  return { ctx, lines };
}

describe('launchd plist', () => {
  it('is a property list with the keys launchd needs, absolute paths and the login PATH', async () => {
    const dir = temp();
    const { ctx } = quietContext(dir, { platform: 'darwin' });
    const { spec, notes } = await buildSpec(ctx);
    const text = renderUnit('darwin', spec);
    const plist = parsePlist(text) as Record<string, unknown>;
    expect(plist.Label).toBe('dev.mcp-bridge');
    expect(plist.ProgramArguments).toEqual([process.execPath, BIN, 'start']);
    expect(plist.RunAtLoad).toBe(true);
    expect(plist.KeepAlive).toEqual({ SuccessfulExit: false });
    expect(typeof plist.ThrottleInterval).toBe('number');
    expect(plist.StandardOutPath).toBe(join(dir, 'logs', 'mcp-bridge.stdout.log'));
    expect(plist.StandardErrorPath).toBe(join(dir, 'logs', 'mcp-bridge.stderr.log'));
    const vars = plist.EnvironmentVariables as Record<string, string>;
    expect(vars.PATH?.split(':')[0]).toBe(LOGIN_ONLY_DIR);
    expect(vars.MCP_BRIDGE_CONFIG_DIR).toBe(join(dir, 'config'));
    expect(vars.MCP_BRIDGE_OWNER_PASSWORD).toBeUndefined();
    expect(text).not.toContain('hunter2');
    expect(notes.join('\n')).toContain('MCP_BRIDGE_OWNER_PASSWORD');
    expect(pathFromUnit('darwin', text)).toBe(vars.PATH);
  });

  it('escapes XML in values, so odd paths still parse back to themselves', async () => {
    const dir = temp();
    const odd = join(dir, 'a & <b> "c"');
    const { ctx } = quietContext(dir, { platform: 'darwin' });
    const { spec } = await buildSpec({ ...ctx, env: { ...ctx.env, MCP_BRIDGE_CONFIG_DIR: odd } });
    const plist = parsePlist(renderUnit('darwin', spec)) as { EnvironmentVariables: Record<string, string> };
    expect(plist.EnvironmentVariables.MCP_BRIDGE_CONFIG_DIR).toBe(odd);
  });
});

describe('systemd unit', () => {
  it('reads its PATH back, with quotes and percent signs escaped', async () => {
    const dir = temp();
    const { ctx } = quietContext(dir, { platform: 'linux' });
    const { spec } = await buildSpec(ctx);
    const path = `/opt/100%/"quoted"/bin:${spec.path}`;
    const text = renderUnit('linux', { ...spec, path });
    expect(text).toContain('%%');
    expect(pathFromUnit('linux', text)).toBe(path);
  });
});

describe('service install refusals', () => {
  it('refuses a bin/mcp-bridge.js inside the temporary dir or an npx cache, and writes nothing', async () => {
    const dir = temp();
    for (const bin of [
      join(dir, 'bin', 'mcp-bridge.js'),
      '/home/u/.npm/_npx/1234/node_modules/mcp-bridge/bin/mcp-bridge.js',
    ]) {
      const { ctx } = quietContext(dir, { platform: 'linux', bin });
      const before = listFiles(dir);
      const error = await installService(ctx).catch((e: unknown) => e);
      expect(isBridgeError(error, 'SERVICE_PATH_TEMPORARY')).toBe(true);
      expect(String((error as Error).message)).toContain('a path that vanishes');
      expect(listFiles(dir)).toEqual(before);
    }
  });

  it('installs from a temporary dir when the check is turned off (tests), writing where systemd looks', async () => {
    const dir = temp();
    const { ctx } = quietContext(dir, {
      platform: 'linux',
      bin: join(dir, 'bin', 'mcp-bridge.js'),
      allowTemporary: true,
    });
    const unit = join(dir, '.config', 'systemd', 'user', 'mcp-bridge.service');
    // No user bus in this env (no XDG_RUNTIME_DIR): the file is written, then SERVICE_MANAGER_UNAVAILABLE.
    const error = await installService(ctx).catch((e: unknown) => e);
    expect(isBridgeError(error, 'SERVICE_MANAGER_UNAVAILABLE')).toBe(true);
    expect(existsSync(unit)).toBe(true);
  });
});

describe('login shell PATH', () => {
  it('falls back to the current PATH, with a note, when the shell does not answer in time', async () => {
    const dir = temp();
    mkdirSync(join(dir, 'bin'));
    const { writeFileSync, chmodSync } = await import('node:fs');
    const slow = join(dir, 'bin', 'slow-shell');
    writeFileSync(slow, '#!/bin/sh\nsleep 30\n');
    chmodSync(slow, 0o755);
    const result = await captureLoginPath({ env: { PATH: '/usr/bin:/bin', SHELL: slow }, timeoutMs: 300 });
    expect(result.path).toBe('/usr/bin:/bin');
    expect(result.note).toContain('did not print its PATH within');
  });

  it('reads the PATH between markers, past a banner', async () => {
    const dir = temp();
    const result = await captureLoginPath({ env: { PATH: '/usr/bin:/bin', SHELL: fakeLoginShell(dir) } });
    expect(result).toEqual({ path: `${LOGIN_ONLY_DIR}:/usr/bin:/bin` });
  });
});
