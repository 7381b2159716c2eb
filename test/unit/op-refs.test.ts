import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hasOpRefs, type OpReader, resolveOpRefs } from '../../src/config/op-refs.js';
import type { HttpUpstreamConfig, StdioUpstreamConfig } from '../../src/config/schema.js';
import { BridgeError } from '../../src/errors.js';

// resolveOpRefs caches every resolved reference for the life of the process (a module-level Map), so
// each test below uses references that no other test uses.

function http(overrides: Partial<HttpUpstreamConfig> = {}): HttpUpstreamConfig {
  return {
    kind: 'http',
    name: 'notes',
    url: 'https://notes.example/mcp',
    headers: {},
    transport: 'streamable-http',
    oauth: {},
    callTimeoutMs: 30_000,
    ...overrides,
  };
}

function stdio(env: Record<string, string>): StdioUpstreamConfig {
  return { kind: 'stdio', name: 'files', command: 'files-mcp', args: ['--x'], env, callTimeoutMs: 30_000 };
}

/** A reader backed by a table, recording every reference it is asked for. */
function tableReader(table: Record<string, string>): OpReader & { calls: string[] } {
  const calls: string[] = [];
  const read = async (reference: string) => {
    calls.push(reference);
    const secret = table[reference];
    if (secret === undefined) throw new Error(`no such item: ${reference}`);
    return secret;
  };
  return Object.assign(read, { calls });
}

async function rejection(promise: Promise<unknown>): Promise<BridgeError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BridgeError);
  return error as BridgeError;
}

describe('resolveOpRefs with an injected reader', () => {
  it('replaces a reference inside a larger header value and leaves the rest of the value as written', async () => {
    const read = tableReader({ 'op://v/i/token': 'tok-123' });
    const config = http({ headers: { Authorization: 'Bearer op://v/i/token', 'X-Plain': 'plain value' } });
    const out = await resolveOpRefs(config, read);
    expect(out.kind === 'http' && out.headers).toEqual({
      Authorization: 'Bearer tok-123',
      'X-Plain': 'plain value',
    });
    expect(read.calls).toEqual(['op://v/i/token']);
    // The input is not modified; everything but the secret values is carried over.
    expect(config.headers.Authorization).toBe('Bearer op://v/i/token');
    expect({ ...out, headers: config.headers, oauth: config.oauth }).toEqual(config);
  });

  it('replaces references (ended by whitespace or a quote) in the env values of a stdio upstream, keeping command, args and other env', async () => {
    const read = tableReader({
      'op://Dev/db/password': 'hunter2',
      'op://Dev/db/user?attribute=otp': '424242',
    });
    const config = stdio({
      DB_PASSWORD: 'op://Dev/db/password',
      DB_ARGS: '--password=op://Dev/db/password --verbose',
      DB_JSON: '{"password":"op://Dev/db/password"}',
      OTP: 'op://Dev/db/user?attribute=otp',
      PLAIN: 'unchanged',
    });
    const out = await resolveOpRefs(config, read);
    expect(out).toEqual({
      ...config,
      env: {
        DB_PASSWORD: 'hunter2',
        DB_ARGS: '--password=hunter2 --verbose',
        DB_JSON: '{"password":"hunter2"}',
        OTP: '424242',
        PLAIN: 'unchanged',
      },
    });
  });

  it('replaces references in oauth.clientId and oauth.clientSecret and keeps the other oauth settings', async () => {
    const read = tableReader({ 'op://v/oauth/id': 'client-abc', 'op://v/oauth/secret': 'shh' });
    const config = http({
      oauth: { clientId: 'op://v/oauth/id', clientSecret: 'op://v/oauth/secret', scopes: ['read'] },
    });
    expect(hasOpRefs(config)).toBe(true);
    const out = await resolveOpRefs(config, read);
    expect(out.kind === 'http' && out.oauth).toEqual({
      clientId: 'client-abc',
      clientSecret: 'shh',
      scopes: ['read'],
    });
  });

  it('inserts a secret literally, even when it contains $ replacement patterns', async () => {
    const read = tableReader({ 'op://v/i/dollar': "p$&s$1s$'$$" });
    const out = await resolveOpRefs(stdio({ TOKEN: 'x op://v/i/dollar y' }), read);
    expect(out.kind === 'stdio' && out.env.TOKEN).toBe("x p$&s$1s$'$$ y");
  });

  it('returns the very same object, without calling the reader, when no value holds a reference', async () => {
    const read = tableReader({});
    const httpConfig = http({
      headers: { Authorization: 'Bearer plain', Note: 'see op:/not-a-ref' },
      oauth: { clientId: 'id', clientSecret: 'secret' },
    });
    const stdioConfig = stdio({ A: 'a', B: '${env:B}' });
    expect(hasOpRefs(httpConfig)).toBe(false);
    expect(await resolveOpRefs(httpConfig, read)).toBe(httpConfig);
    expect(await resolveOpRefs(stdioConfig, read)).toBe(stdioConfig);
    expect(read.calls).toEqual([]);
  });

  it('reads a reference once per process and serves later resolutions from the cache', async () => {
    const read = tableReader({ 'op://v/cached/field': 'first' });
    const first = await resolveOpRefs(stdio({ A: 'op://v/cached/field' }), read);
    const second = await resolveOpRefs(
      http({ headers: { B: 'op://v/cached/field' } }),
      tableReader({}), // would throw if asked
    );
    expect(first.kind === 'stdio' && first.env.A).toBe('first');
    expect(second.kind === 'http' && second.headers.B).toBe('first');
    expect(read.calls).toEqual(['op://v/cached/field']);
  });

  it('turns a reader error into SECRET_UNAVAILABLE naming the config key, never the secret', async () => {
    const read = tableReader({ 'op://v/i/good-one': 'GOOD-SECRET-VALUE' });
    // The value's first reference resolves, the second fails: the message must not leak the first.
    const config = http({ headers: { Authorization: 'Bearer op://v/i/good-one op://v/i/missing-one' } });
    const error = await rejection(resolveOpRefs(config, read));
    expect(error.code).toBe('SECRET_UNAVAILABLE');
    expect(error.message).toMatch(/^mcpServers\.notes\.headers\.Authorization: /);
    expect(error.message).toContain('no such item: op://v/i/missing-one');
    expect(error.message).not.toContain('GOOD-SECRET-VALUE');
    expect(error.details).toEqual({ upstream: 'notes', key: 'headers.Authorization' });
    expect((error.cause as Error).message).toBe('no such item: op://v/i/missing-one');
  });

  it('names env and oauth keys in the error the same way', async () => {
    const fail: OpReader = async () => {
      throw new Error('denied');
    };
    const env = await rejection(resolveOpRefs(stdio({ API_KEY: 'op://v/fail/env' }), fail));
    expect(env.message).toBe('mcpServers.files.env.API_KEY: denied');
    const oauth = await rejection(
      resolveOpRefs(http({ oauth: { clientSecret: 'op://v/fail/oauth' } }), fail),
    );
    expect(oauth.message).toBe('mcpServers.notes.oauth.clientSecret: denied');
    expect(oauth.details).toEqual({ upstream: 'notes', key: 'oauth.clientSecret' });
  });

  it('does not cache a failed read, so resolving again after signing in succeeds', async () => {
    let signedIn = false;
    const read: OpReader = async () => {
      if (!signedIn) throw new Error('not signed in');
      return 'now-available';
    };
    const config = stdio({ KEY: 'op://v/retry/field' });
    expect((await rejection(resolveOpRefs(config, read))).code).toBe('SECRET_UNAVAILABLE');
    signedIn = true;
    const out = await resolveOpRefs(config, read);
    expect(out.kind === 'stdio' && out.env.KEY).toBe('now-available');
  });
});

describe('resolveOpRefs with the default reader (the real `op` CLI on PATH)', () => {
  const originalPath = process.env.PATH;
  const dirs: string[] = [];
  afterEach(() => {
    process.env.PATH = originalPath;
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-bridge-op-'));
    dirs.push(dir);
    return dir;
  }

  /** Puts a fake `op` first on PATH: it answers `op read --no-newline <ref>` like the real CLI. */
  function installFakeOp(): void {
    const bin = tempDir();
    const script = `#!/bin/sh
if [ "$#" -ne 3 ] || [ "$1" != read ] || [ "$2" != --no-newline ]; then
  echo "[ERROR] unexpected arguments: $*" >&2
  exit 2
fi
case "$3" in
  op://Private/fake-op/token) printf '%s' 'secret-from-fake-op' ;;
  op://Private/fake-op/signed-out)
    echo '[ERROR] 2025/01/01 12:00:00 You are not currently signed in. Please run \`op signin --help\` for instructions' >&2
    echo 'second line that is not shown' >&2
    exit 1 ;;
  op://Private/fake-op/silent) exit 3 ;;
  *) echo "[ERROR] 2025/01/01 12:00:00 \\"$3\\" isn't an item in any vault" >&2; exit 1 ;;
esac
`;
    const op = join(bin, 'op');
    writeFileSync(op, script);
    chmodSync(op, 0o755);
    process.env.PATH = `${bin}:${originalPath ?? ''}`;
  }

  it('resolves a reference by running `op read --no-newline <ref>`', async () => {
    installFakeOp();
    const out = await resolveOpRefs(
      http({ headers: { Authorization: 'Bearer op://Private/fake-op/token' } }),
    );
    expect(out.kind === 'http' && out.headers.Authorization).toBe('Bearer secret-from-fake-op');
  });

  it('suggests `op signin` when the CLI is not signed in, quoting only the first line of its error', async () => {
    installFakeOp();
    const error = await rejection(
      resolveOpRefs(http({ headers: { Authorization: 'Bearer op://Private/fake-op/signed-out' } })),
    );
    expect(error.code).toBe('SECRET_UNAVAILABLE');
    expect(error.message).toMatch(/^mcpServers\.notes\.headers\.Authorization: `op read` failed/);
    expect(error.message).toContain('You are not currently signed in');
    expect(error.message).toContain('sign in with `op signin`');
    expect(error.message).not.toContain('second line');
  });

  it('reports other `op` failures without the sign-in hint, falling back to the exit code', async () => {
    installFakeOp();
    const unknown = await rejection(resolveOpRefs(stdio({ K: 'op://Private/fake-op/nope' })));
    expect(unknown.message).toContain("isn't an item in any vault");
    expect(unknown.message).not.toContain('op signin');
    const silent = await rejection(resolveOpRefs(stdio({ K: 'op://Private/fake-op/silent' })));
    expect(silent.message).toBe(
      'mcpServers.files.env.K: `op read` failed for a secret reference: exit code 3',
    );
  });

  it('says the 1Password CLI is not installed when `op` is not on PATH', async () => {
    process.env.PATH = tempDir();
    const error = await rejection(resolveOpRefs(stdio({ K: 'op://Private/no-op-cli/field' })));
    expect(error.code).toBe('SECRET_UNAVAILABLE');
    expect(error.message).toContain('mcpServers.files.env.K: the 1Password CLI `op` is not installed');
    expect(error.message).toContain('${env:NAME}');
  });
});
