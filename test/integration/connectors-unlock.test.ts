import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempDir, writeConfigDir } from '../helpers/bridge.js';
import { cliEnv, freePort, runCli, startCli } from '../helpers/cli.js';
import { authorize, exchange, initializeWith, OWNER_PASSWORD, registerClient } from '../helpers/connector.js';
import { fakeServerEntry } from '../helpers/fake-server.js';

interface Lockout {
  locked: boolean;
  lockedForS: number;
}

// Runs bin/ (dist/): `npm test` builds first (pretest); a direct `npx vitest run` needs `npm run build`.
describe('mcp-bridge connectors unlock', () => {
  const closers: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function setup(withPublic = true) {
    const temp = makeTempDir();
    closers.push(temp.cleanup);
    writeConfigDir(temp.dir, { notes: fakeServerEntry() });
    const publicPort = await freePort();
    const issuer = `http://127.0.0.1:${publicPort}`;
    const env = cliEnv(
      temp.dir,
      withPublic
        ? {
            MCP_BRIDGE_PUBLIC_URL: issuer,
            MCP_BRIDGE_PUBLIC_PORT: String(publicPort),
            MCP_BRIDGE_OWNER_PASSWORD: OWNER_PASSWORD,
          }
        : {},
    );
    const start = async () => {
      const bridge = await startCli(env);
      closers.push(() => bridge.stop());
      return bridge;
    };
    return { env, resource: `${issuer}/mcp`, start, logDir: join(temp.dir, 'logs') };
  }

  const lockoutOf = async (env: NodeJS.ProcessEnv): Promise<Lockout | null> =>
    JSON.parse((await runCli(['connectors', 'list', '--json'], env)).stdout).lockout;

  it('after 5 wrong passwords: list shows the lock, unlock clears it in the running daemon, the password works again', async () => {
    const { env, resource, start, logDir } = await setup();
    const bridge = await start();
    expect(await lockoutOf(env)).toEqual({ locked: false, lockedForS: 0 });
    expect((await runCli(['connectors', 'list'], env)).stdout).toContain('consent page: not locked');

    const conn = await registerClient(resource);
    for (let i = 0; i < 5; i++) {
      expect((await authorize(conn, { password: `wrong password ${i}` })).consent?.status).toBe(401);
    }
    const refused = await authorize(conn);
    expect(refused.location).toBeUndefined();
    expect(refused.stoppedAt?.status ?? refused.consent?.status).toBe(429);

    const locked = await lockoutOf(env);
    expect(locked?.locked).toBe(true);
    expect(locked?.lockedForS).toBeGreaterThan(800);
    expect(locked?.lockedForS).toBeLessThanOrEqual(900);
    const table = await runCli(['connectors', 'list'], env);
    expect(table.stdout).toMatch(/consent page: LOCKED for 1[45] min \d+ s more/);
    expect(table.stdout).toContain('mcp-bridge connectors unlock');

    const unlocked = await runCli(['connectors', 'unlock'], env);
    expect(unlocked.stderr).toBe('');
    expect(unlocked.code).toBe(0);
    expect(unlocked.stdout).toMatch(
      /unlocked: the consent page was locked for 1[45] min \d+ s more after 5 wrong passwords/,
    );
    expect(await lockoutOf(env)).toEqual({ locked: false, lockedForS: 0 });

    // The same client, the right password, no restart: a grant and a token that works.
    const result = await authorize(conn);
    expect(result.consent?.status).toBe(303);
    const tokens = await exchange(conn, result);
    expect((await initializeWith(resource, tokens.access_token)).status).toBe(200);

    const again = await runCli(['connectors', 'unlock', '--json'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({
      daemonRunning: true,
      public: true,
      wasLocked: false,
      lockedForS: 0,
      failures: 0,
    });
    expect((await runCli(['connectors', 'unlock'], env)).stdout).toContain(
      'the consent page was not locked: nothing to unlock',
    );

    expect(await bridge.stop()).toBe(0);
    // pino-roll numbers the files (mcp-bridge.1.log …); the activity log sits beside them.
    const log = readdirSync(logDir)
      .map((f) => readFileSync(join(logDir, f), 'utf8'))
      .join('');
    const lines = log.split('\n').filter((line) => line.includes('consent page unlocked by the owner'));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ failures: 5 });
    expect(log).not.toContain(OWNER_PASSWORD);
  });

  it('with no daemon there is nothing to unlock; a daemon without public.url has no consent page', async () => {
    const stopped = await setup();
    const none = await runCli(['connectors', 'unlock'], stopped.env);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('the daemon is not running: there is nothing to unlock');
    const noneJson = JSON.parse((await runCli(['connectors', 'unlock', '--json'], stopped.env)).stdout);
    expect(noneJson).toMatchObject({ daemonRunning: false, public: true, wasLocked: false, lockedForS: 0 });
    expect(await lockoutOf(stopped.env)).toBeNull();

    const plain = await setup(false);
    await plain.start();
    const noPublic = await runCli(['connectors', 'unlock'], plain.env);
    expect(noPublic.code).toBe(0);
    expect(noPublic.stdout).toContain('there is no public listener (public.url is not set)');
    expect(await lockoutOf(plain.env)).toBeNull();

    for (const args of [
      ['connectors', 'unlock', 'extra'],
      ['connectors', 'unlock', '--all'],
    ]) {
      expect((await runCli(args, plain.env)).code, args.join(' ')).toBe(2);
    }
    expect((await runCli(['help', 'connectors'], plain.env)).stdout).toContain(
      'mcp-bridge connectors unlock [--json]',
    );
  });
});
