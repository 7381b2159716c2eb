import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type OAuthState, STATE_FILE_NAME, TokenStore } from '../../src/auth/token-store.js';
import { createSilentLogger } from '../../src/log.js';

// The cross-process test runs the built store (dist/) in a child process; `npm test` builds first
// (pretest), and a direct `npx vitest run` needs `npm run build` after changing src/auth or src/store.
const DIST_STORE = fileURLToPath(new URL('../../dist/auth/token-store.js', import.meta.url));
const DIST_LOG = fileURLToPath(new URL('../../dist/log.js', import.meta.url));

const EMPTY: OAuthState = { version: 1, authServers: {}, clients: {}, tokens: {} };

const tokens = (accessToken: string) => ({
  serverUrl: 'https://notes.example/mcp',
  resource: 'https://notes.example/mcp',
  issuer: 'https://auth.example',
  clientId: 'client-1',
  accessToken,
  tokenType: 'Bearer',
  obtainedAt: 1_700_000_000_000,
});

describe('TokenStore', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-bridge-tokens-'));
    dirs.push(dir);
    return dir;
  }
  const modeOf = (path: string) => statSync(path).mode & 0o777;

  it('reads a missing file as an empty state, without creating anything', async () => {
    const configDir = join(tempDir(), 'not-yet');
    const store = new TokenStore(configDir, createSilentLogger());
    expect(store.file).toBe(join(configDir, STATE_FILE_NAME));
    expect(await store.read()).toEqual(EMPTY);
    expect(store.problem).toBeUndefined();
    expect(existsSync(configDir)).toBe(false);
  });

  it('writes the changed state as a 0600 file in a 0700 directory it creates, and returns the value', async () => {
    const configDir = join(tempDir(), 'config');
    const store = new TokenStore(configDir, createSilentLogger());
    const value = await store.update(async (state) => {
      state.tokens.notes = tokens('at-1');
      return { write: true, value: 'written' };
    });
    expect(value).toBe('written');
    expect(modeOf(configDir)).toBe(0o700);
    expect(modeOf(store.file)).toBe(0o600);
    // Only the state file remains: no temp file, no lock directory.
    expect(readdirSync(configDir)).toEqual([STATE_FILE_NAME]);
    expect(JSON.parse(readFileSync(store.file, 'utf8'))).toEqual({
      ...EMPTY,
      tokens: { notes: tokens('at-1') },
    });
    expect(await new TokenStore(configDir, createSilentLogger()).read()).toEqual({
      ...EMPTY,
      tokens: { notes: tokens('at-1') },
    });
  });

  it('replaces the file by rename (a new inode) and tightens an existing directory to 0700', async () => {
    const configDir = tempDir();
    chmodSync(configDir, 0o755);
    const store = new TokenStore(configDir, createSilentLogger());
    await store.update(async (state) => {
      state.tokens.notes = tokens('at-1');
      return { write: true, value: undefined };
    });
    const before = statSync(store.file).ino;
    await store.update(async (state) => {
      state.tokens.notes = tokens('at-2');
      return { write: true, value: undefined };
    });
    expect(statSync(store.file).ino).not.toBe(before);
    expect(modeOf(store.file)).toBe(0o600);
    expect(modeOf(configDir)).toBe(0o700);
    expect((await store.read()).tokens.notes?.accessToken).toBe('at-2');
  });

  it('keeps unknown fields of the file when it rewrites it', async () => {
    const configDir = tempDir();
    const store = new TokenStore(configDir, createSilentLogger());
    writeFileSync(store.file, JSON.stringify({ ...EMPTY, futureField: { kept: true } }));
    await store.update(async (state) => {
      state.tokens.notes = tokens('at-1');
      return { write: true, value: undefined };
    });
    expect(JSON.parse(readFileSync(store.file, 'utf8')).futureField).toEqual({ kept: true });
  });

  it('does not write when the change returns write: false, but still returns its value', async () => {
    const configDir = tempDir();
    const store = new TokenStore(configDir, createSilentLogger());

    // No file yet: none is created.
    expect(
      await store.update(async (state) => {
        state.tokens.notes = tokens('discarded');
        return { write: false, value: 42 };
      }),
    ).toBe(42);
    expect(readdirSync(configDir)).toEqual([]);

    // An existing file is left byte for byte and inode for inode.
    const original = `${JSON.stringify({ ...EMPTY, tokens: { notes: tokens('kept') } })}\n`;
    writeFileSync(store.file, original, { mode: 0o600 });
    const ino = statSync(store.file).ino;
    expect(
      await store.update(async (state) => {
        expect(state.tokens.notes?.accessToken).toBe('kept');
        state.tokens.notes = tokens('discarded');
        return { write: false, value: 'read only' };
      }),
    ).toBe('read only');
    expect(readFileSync(store.file, 'utf8')).toBe(original);
    expect(statSync(store.file).ino).toBe(ino);
    expect(readdirSync(configDir)).toEqual([STATE_FILE_NAME]);
  });

  it('releases the lock when the change throws, so the next update proceeds', async () => {
    const configDir = tempDir();
    const store = new TokenStore(configDir, createSilentLogger());
    await expect(
      store.update(async () => {
        throw new Error('refresh failed');
      }),
    ).rejects.toThrow('refresh failed');
    expect(existsSync(`${store.file}.lock`)).toBe(false);
    expect(await store.update(async () => ({ write: false, value: 'next' }))).toBe('next');
  });

  describe('a corrupt file', () => {
    const corruptions = [
      {
        what: 'invalid JSON',
        content: '{"version": 1, "tokens": {"notes": {"accessToken": "at-secr',
        problem: /not valid JSON/,
      },
      {
        what: 'valid JSON of the wrong shape',
        content: '{"version": 2, "authServers": {}, "clients": [], "tokens": {"notes": "at"}}\n',
        problem: /Invalid input.*→ at version/, // zod's issues, on one line
      },
    ];

    for (const { what, content, problem } of corruptions) {
      it(`reads as empty and is reported when it holds ${what}; the next locked update moves it aside intact`, async () => {
        const configDir = tempDir();
        const store = new TokenStore(configDir, createSilentLogger());
        writeFileSync(store.file, content, { mode: 0o600 });

        // An unlocked read (another process may be writing) reports the problem but moves nothing.
        expect(await store.read()).toEqual(EMPTY);
        expect(readdirSync(configDir)).toEqual(['oauth-state.json']);
        expect(store.problem).toMatch(/^the token file .* is corrupt \(/);
        expect(store.problem).toMatch(problem);

        await store.update(async (state) => {
          expect(state).toEqual(EMPTY);
          return { write: false, value: undefined };
        });
        const entries = readdirSync(configDir);
        expect(entries).toHaveLength(1);
        expect(entries[0]).toMatch(/^oauth-state\.json\.corrupt-\d{13}$/);
        const aside = join(configDir, entries[0]!);
        expect(readFileSync(aside, 'utf8')).toBe(content);
        expect(store.problem).toMatch(/^the token file was corrupt \(/);
        expect(store.problem).toMatch(problem);
        expect(store.problem).toContain(`it was moved to ${aside}`);
        expect(store.problem).not.toContain('\n');
      });
    }

    it('is never overwritten by an update: the new state is written and the old bytes survive aside', async () => {
      const configDir = tempDir();
      const store = new TokenStore(configDir, createSilentLogger());
      const content = 'not json at all';
      writeFileSync(store.file, content, { mode: 0o600 });

      await store.update(async (state) => {
        expect(state).toEqual(EMPTY);
        state.tokens.notes = tokens('fresh');
        return { write: true, value: undefined };
      });

      const aside = readdirSync(configDir).filter((name) => name.startsWith(`${STATE_FILE_NAME}.corrupt-`));
      expect(aside).toHaveLength(1);
      expect(readFileSync(join(configDir, aside[0]!), 'utf8')).toBe(content);
      expect((await store.read()).tokens.notes?.accessToken).toBe('fresh');
      expect(store.problem).toContain(aside[0]);
    });
  });

  describe('locking', () => {
    beforeAll(() => {
      if (!existsSync(DIST_STORE) || !existsSync(DIST_LOG)) {
        throw new Error(`${DIST_STORE} is missing; run \`npm run build\` (npm test does it first)`);
      }
    });

    it('loses no update when this process and a child process increment a counter concurrently', async () => {
      const N = 20;
      const configDir = tempDir();
      const store = new TokenStore(configDir, createSilentLogger());
      const increment = (who: string) => async (state: OAuthState) => {
        const log = Array.isArray(state.log) ? (state.log as string[]) : [];
        state.counter = (typeof state.counter === 'number' ? state.counter : 0) + 1;
        state.log = [...log, who];
        return { write: true, value: state.counter };
      };

      // The child waits for "go" on stdin, says "started" just before its first update, then runs N
      // read-modify-write increments through the built TokenStore.
      const childScript = `
        import { createInterface } from 'node:readline';
        const { TokenStore } = await import(${JSON.stringify(pathToFileURL(DIST_STORE).href)});
        const { createSilentLogger } = await import(${JSON.stringify(pathToFileURL(DIST_LOG).href)});
        const [configDir, n] = process.argv.slice(-2);
        const store = new TokenStore(configDir, createSilentLogger());
        const lines = createInterface({ input: process.stdin });
        console.log('ready');
        for await (const line of lines) if (line === 'go') break;
        console.log('started');
        for (let i = 0; i < Number(n); i++) {
          await store.update(async (state) => {
            state.counter = (typeof state.counter === 'number' ? state.counter : 0) + 1;
            state.log = [...(Array.isArray(state.log) ? state.log : []), 'child'];
            return { write: true, value: undefined };
          });
        }
        console.log('done');
        process.exit(0);
      `;
      const child = spawn(
        process.execPath,
        ['--input-type=module', '-e', childScript, '--', configDir, String(N)],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const lines = createInterface({ input: child.stdout });
      const waitForLine = (wanted: string) =>
        new Promise<void>((resolve, reject) => {
          const onLine = (line: string) => {
            if (line !== wanted) return;
            lines.off('line', onLine);
            resolve();
          };
          lines.on('line', onLine);
          void exited.then((code) =>
            reject(new Error(`child exited (${code}) before "${wanted}": ${stderr}`)),
          );
        });

      try {
        await waitForLine('ready');
        const started = waitForLine('started');
        // The first update holds the lock until the child has started its loop, so the child's first
        // update has to wait for it; from then on both loops contend for the lock.
        await store.update(async (state) => {
          child.stdin.write('go\n');
          await started;
          return increment('parent')(state);
        });
        for (let i = 1; i < N; i++) await store.update(increment('parent'));
        expect(await exited).toBe(0);
      } finally {
        child.kill();
      }

      const final = await store.read();
      expect(final.counter).toBe(2 * N);
      const log = final.log as string[];
      expect(log.filter((who) => who === 'parent')).toHaveLength(N);
      expect(log.filter((who) => who === 'child')).toHaveLength(N);
      expect(readdirSync(configDir)).toEqual([STATE_FILE_NAME]);
    });

    it('takes over a stale lock left behind by a dead process', async () => {
      const configDir = tempDir();
      const store = new TokenStore(configDir, createSilentLogger());
      const lock = `${store.file}.lock`;
      mkdirSync(lock);
      const past = new Date(Date.now() - 60_000);
      utimesSync(lock, past, past);

      const started = Date.now();
      const value = await store.update(async (state) => {
        state.tokens.notes = tokens('after-stale-lock');
        return { write: true, value: 'ok' };
      });
      expect(value).toBe('ok');
      // A lock that was honoured would take ~50 s of retries to give up.
      expect(Date.now() - started).toBeLessThan(5_000);
      expect((await store.read()).tokens.notes?.accessToken).toBe('after-stale-lock');
      expect(existsSync(lock)).toBe(false);
    });
  });
});
