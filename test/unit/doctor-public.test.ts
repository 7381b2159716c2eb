import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { errorMessage } from '../../src/errors.js';
import { writeStoreFile } from '../../src/public/store-file.js';
import { type Check, runDoctor } from '../../src/service/doctor.js';
import { makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { freePort } from '../helpers/cli.js';
import { OWNER_PASSWORD, startPublicDaemon } from '../helpers/connector.js';

const PUBLIC_NAMES = ['public listener', 'public url', 'owner password', 'public port', 'connectors file'];

describe('mcp-bridge doctor: the public listener', () => {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A temp HOME and config dir with `config` as config.json, the main port on a free one. */
  async function setup(config: Record<string, unknown>, extraEnv: Record<string, string> = {}) {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    const configDir = join(temp.dir, 'config');
    mkdirSync(configDir, { mode: 0o700 });
    const { doctor } = setupAt(configDir, config, { MCP_BRIDGE_PORT: String(await freePort()), ...extraEnv });
    return { dir: temp.dir, configDir, doctor };
  }

  /** runDoctor, as `mcp-bridge doctor` runs it, on `config` in `configDir` (HOME is its parent). */
  function setupAt(
    configDir: string,
    config: Record<string, unknown>,
    extraEnv: Record<string, string> = {},
  ) {
    writeFileSync(join(configDir, 'config.json'), JSON.stringify(config));
    const home = join(configDir, '..');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      MCP_BRIDGE_CONFIG_DIR: configDir,
      MCP_BRIDGE_LOG_PATH: join(home, 'logs', 'mcp-bridge.log'),
      ...extraEnv,
    };
    const doctor = async () => {
      const checks = await runDoctor({ env, platform: 'linux', uid: process.getuid?.() ?? 0 });
      const byName = (name: string) => checks.find((c) => c.name === name);
      const pub = checks.filter((c) => PUBLIC_NAMES.includes(c.name) || c.name.includes('connectors'));
      return { checks, pub, byName };
    };
    return { env, doctor };
  }

  const publicOn = async (extra: Record<string, unknown> = {}) => ({
    public: { url: 'https://bridge.example.com', port: await freePort(), ...extra },
  });

  it('without public.url: one skip that says the listener is off', async () => {
    const { doctor } = await setup({});
    const { pub } = await doctor();
    expect(pub).toEqual([
      expect.objectContaining({
        name: 'public listener',
        status: 'skip',
        detail: expect.stringMatching(/^off: /),
      }),
    ]);
    // A config broken elsewhere says nothing of the public listener.
    const broken = await setup({ public: { url: 'https://bridge.example.com' }, logLevel: 'loud' });
    expect((await broken.doctor()).pub).toEqual([
      { name: 'public listener', status: 'skip', detail: 'the config does not load' },
    ]);
  });

  it('a good setup passes, and names where the password came from without any of it', async () => {
    const { doctor } = await setup(await publicOn(), { MCP_BRIDGE_OWNER_PASSWORD: OWNER_PASSWORD });
    const { pub, byName } = await doctor();
    expect(byName('public url')).toMatchObject({
      status: 'pass',
      detail: expect.stringContaining('https://bridge.example.com (from public.url'),
    });
    expect(byName('owner password')).toMatchObject({
      status: 'pass',
      detail: 'set in MCP_BRIDGE_OWNER_PASSWORD, at least 12 characters',
    });
    expect(byName('public port')).toMatchObject({
      status: 'pass',
      detail: expect.stringContaining('is free'),
    });
    expect(byName('connectors file')).toMatchObject({ status: 'skip' });
    expect(pub.filter((c) => c.status === 'fail')).toEqual([]);
    expectNoSecret(pub, OWNER_PASSWORD);
  });

  it("a bad public.url fails with the daemon's own message and code, and the key to fix", async () => {
    const { doctor, configDir } = await setup({ public: { url: 'http://bridge.example.com/mcp' } });
    const daemonSays = (() => {
      try {
        loadConfig({ env: { MCP_BRIDGE_CONFIG_DIR: configDir } });
      } catch (error) {
        return errorMessage(error);
      }
    })();
    expect(daemonSays).toContain('public.url must be https://');
    const { pub } = await doctor();
    expect(pub).toEqual([
      {
        name: 'public url',
        status: 'fail',
        detail: `${daemonSays} (mcp-bridge start stops with CONFIG_INVALID, exit 2)`,
        fix: expect.stringMatching(/^set public\.url in .*config\.json to your tunnel's https:\/\/ origin/),
      },
    ]);

    const fromEnv = await setup({}, { MCP_BRIDGE_PUBLIC_URL: 'https://bridge.example.com?x=1' });
    expect((await fromEnv.doctor()).pub).toEqual([
      expect.objectContaining({
        name: 'public url',
        status: 'fail',
        detail: expect.stringContaining('MCP_BRIDGE_PUBLIC_URL must not have a query or fragment'),
        fix: expect.stringMatching(/^set MCP_BRIDGE_PUBLIC_URL to/),
      }),
    ]);

    const badPort = await setup(await publicOn(), { MCP_BRIDGE_PUBLIC_PORT: 'eighty' });
    expect((await badPort.doctor()).pub).toEqual([
      expect.objectContaining({
        name: 'public port',
        status: 'fail',
        fix: expect.stringContaining('MCP_BRIDGE_PUBLIC_PORT'),
      }),
    ]);
  });

  it('no owner password, or a short one: fails naming all three places, never the password', async () => {
    const places =
      /MCP_BRIDGE_OWNER_PASSWORD, MCP_BRIDGE_OWNER_PASSWORD_OP_REF .* or public\.ownerPassword in /;
    const none = await setup(await publicOn());
    expect((await none.doctor()).byName('owner password')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('(mcp-bridge start stops with OWNER_PASSWORD_REQUIRED, exit 2)'),
      fix: expect.stringMatching(places),
    });

    const short = await setup(await publicOn({ ownerPassword: 'tiny-secret' }));
    const { byName, checks } = await short.doctor();
    expect(byName('owner password')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('from public.ownerPassword is shorter than 12 characters'),
      fix: expect.stringMatching(places),
    });
    expectNoSecret(checks, 'tiny-secret');
  });

  describe('an op:// reference', () => {
    const savedPath = process.env.PATH;
    afterEach(() => {
      process.env.PATH = savedPath;
    });

    it('is read with the real `op` on the PATH; the password never shows', async () => {
      const { doctor, dir } = await setup(await publicOn(), {
        MCP_BRIDGE_OWNER_PASSWORD_OP_REF: 'op://Private/bridge/password',
      });
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      writeFileSync(join(bin, 'op'), "#!/bin/sh\nprintf '%s' 'from-1password-vault'\n", { mode: 0o755 });
      // opRead runs `op` from this process's PATH, as the daemon does from its own.
      process.env.PATH = `${bin}:${savedPath}`;
      const { byName, checks } = await doctor();
      expect(byName('owner password')).toMatchObject({
        status: 'pass',
        detail: 'set in MCP_BRIDGE_OWNER_PASSWORD_OP_REF (read with op read), at least 12 characters',
      });
      expectNoSecret(checks, 'from-1password-vault');
    });

    it('fails when `op` is missing, with the fix', async () => {
      const { doctor, dir } = await setup(await publicOn({ ownerPassword: 'op://Private/bridge/password' }));
      process.env.PATH = join(dir, 'empty');
      expect((await doctor()).byName('owner password')).toMatchObject({
        status: 'fail',
        detail: expect.stringMatching(
          /^public\.ownerPassword: the 1Password CLI `op` is not installed.*SECRET_UNAVAILABLE, exit 1\)$/,
        ),
        fix: expect.stringMatching(
          /^make public\.ownerPassword readable with op read .* MCP_BRIDGE_OWNER_PASSWORD, MCP_BRIDGE_OWNER_PASSWORD_OP_REF .* or public\.ownerPassword in /,
        ),
      });
    });
  });

  it('a public port held by another program fails with where to change it; doctor leaves no socket open', async () => {
    const port = await freePort();
    const { doctor } = await setup(await publicOn({ port }), { MCP_BRIDGE_OWNER_PASSWORD: OWNER_PASSWORD });
    expect((await doctor()).byName('public port')?.status).toBe('pass');
    // The probe closed its socket: the port can be taken right after.
    const squatter = await listenOn(port);
    cleanups.push(() => new Promise((resolve) => squatter.close(resolve)));
    expect((await doctor()).byName('public port')).toEqual({
      name: 'public port',
      status: 'fail',
      detail: `something that is not mcp-bridge's public listener listens on 127.0.0.1:${port}`,
      fix: expect.stringMatching(
        /lsof -i :\d+.*public\.port in .*config\.json \(or MCP_BRIDGE_PUBLIC_PORT\)/,
      ),
    });
    expect(squatter.listening).toBe(true);
  });

  it('a public port held by the running daemon passes; a daemon without the listener must restart', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    const dir = join(temp.dir, 'config');
    mkdirSync(dir, { mode: 0o700 });
    const { daemon, issuer } = await startPublicDaemon(dir, []);
    cleanups.push(() => daemon.close());
    const publicPort = Number(new URL(issuer).port);
    const { doctor } = setupAt(
      dir,
      { port: daemon.port, public: { url: issuer, port: publicPort } },
      { MCP_BRIDGE_OWNER_PASSWORD: OWNER_PASSWORD },
    );
    const { byName } = await doctor();
    expect(byName('port')).toMatchObject({ status: 'pass' });
    expect(byName('public port')).toEqual({
      name: 'public port',
      status: 'pass',
      detail: `127.0.0.1:${publicPort} is in use by the running daemon`,
    });

    await daemon.close();
    const plain = await startTestDaemon(dir, [], { overrides: { port: daemon.port } });
    cleanups.push(() => plain.close());
    expect((await doctor()).byName('public port')).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('the running daemon has no public listener'),
      fix: expect.stringContaining('mcp-bridge service restart'),
    });
  });

  it('connectors.json: read by the store code with its mode; a corrupt one fails and is left where it is', async () => {
    const { doctor, configDir } = await setup(await publicOn(), {
      MCP_BRIDGE_OWNER_PASSWORD: OWNER_PASSWORD,
    });
    const file = join(configDir, 'connectors.json');
    const client = { payload: { client_id: 'c1', client_name: 'ChatGPT' }, expiresAt: null };
    await writeStoreFile(
      file,
      { entries: new Map([['Client:c1', client]]), lastUsed: new Map() },
      () => true,
    );
    let result = await doctor();
    expect(result.byName('connectors file')).toEqual({
      name: 'connectors file',
      status: 'pass',
      detail: `${file} reads (1 connector(s))`,
    });
    expect(result.byName(`mode of ${file}`)).toMatchObject({ status: 'pass', detail: '0600' });

    chmodSync(file, 0o644);
    result = await doctor();
    expect(result.byName(`mode of ${file}`)).toMatchObject({ status: 'fail', fix: `chmod 600 ${file}` });

    writeFileSync(file, '{"version": 1, "entries": ', { mode: 0o600 });
    result = await doctor();
    expect(result.byName('connectors file')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/connectors\.json is corrupt \(not valid JSON/),
      fix: expect.stringContaining('the daemon moves it aside'),
    });
    expect(existsSync(file)).toBe(true);
  });
});

function expectNoSecret(checks: readonly Check[], secret: string): void {
  const text = JSON.stringify(checks);
  expect(text).not.toContain(secret);
  // Nor a telling part of it.
  expect(text).not.toContain(secret.slice(0, 6));
}

function listenOn(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
