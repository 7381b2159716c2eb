import { mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AccessToken,
  accessTokenPath,
  challengeProof,
  isSessionCredential,
  loadOrCreateAccessToken,
  proofMatches,
  readAccessToken,
  sessionCredential,
  tokensEqual,
  writeAccessToken,
} from '../../src/access/access-token.js';
import { makeTempDir } from '../helpers/bridge.js';

describe('access-token', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });
  const dir = () => {
    const t = makeTempDir();
    cleanups.push(t.cleanup);
    return join(t.dir, 'config');
  };

  it('creates one token even when several daemons start at once', async () => {
    const d = dir();
    const tokens = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateAccessToken(d)));
    expect(new Set(tokens).size).toBe(1);
    expect(readAccessToken(d)).toBe(tokens[0]);
    expect(statSync(accessTokenPath(d)).mode & 0o777).toBe(0o600);
    expect(statSync(d).mode & 0o777).toBe(0o700);
  });

  it('replaces a file that holds no token, and never follows a symlinked token file', async () => {
    const d = dir();
    mkdirSync(d, { recursive: true });
    writeFileSync(accessTokenPath(d), 'half a tok');
    const token = await loadOrCreateAccessToken(d);
    expect(readFileSync(accessTokenPath(d), 'utf8').trim()).toBe(token);

    const other = dir();
    mkdirSync(other, { recursive: true });
    writeFileSync(join(other, 'target'), `${token}\n`);
    rmSync(accessTokenPath(d));
    symlinkSync(join(other, 'target'), accessTokenPath(d));
    expect(readAccessToken(d)).toBeUndefined();
    await expect(writeAccessToken(d, token)).rejects.toThrow(/not a regular file/);
  });

  it('compares in constant time over hashes, whatever the lengths', () => {
    expect(tokensEqual('mcpb_a', 'mcpb_a')).toBe(true);
    expect(tokensEqual('mcpb_a', 'mcpb_b')).toBe(false);
    expect(tokensEqual('', 'mcpb_a')).toBe(false);
    expect(tokensEqual('mcpb_a'.repeat(100), 'mcpb_a')).toBe(false);
  });

  it('proofs bind the token, the port the daemon was reached on, and the challenge', () => {
    const proof = challengeProof('mcpb_x', 8769, 'c1');
    expect(proofMatches('mcpb_x', 8769, 'c1', proof)).toBe(true);
    expect(proofMatches('mcpb_x', 8769, 'c2', proof)).toBe(false);
    expect(proofMatches('mcpb_x', 8770, 'c1', proof)).toBe(false);
    expect(proofMatches('mcpb_y', 8769, 'c1', proof)).toBe(false);
    expect(proofMatches('mcpb_x', 8769, 'c1', undefined)).toBe(false);
    expect(proof).not.toContain('mcpb_x');
  });

  it('session credentials are bound to one session and to the current token', () => {
    const credential = sessionCredential('mcpb_x', 'session-1');
    expect(isSessionCredential(credential)).toBe(true);
    expect(isSessionCredential('mcpb_x')).toBe(false);
    expect(credential).not.toBe(sessionCredential('mcpb_x', 'session-2'));
    expect(credential).not.toBe(sessionCredential('mcpb_y', 'session-1'));
    expect(credential).not.toContain('mcpb_x');
  });

  it('picks up a rotated file at most once a second, and writes a deleted one back', async () => {
    const d = dir();
    let now = 1_000_000;
    const access = await AccessToken.load(d, () => now);
    const first = access.current();
    const rotated = `mcpb_${'r'.repeat(43)}`;
    await writeAccessToken(d, rotated);
    expect(access.current()).toBe(first);
    now += 1000;
    expect(access.current()).toBe(rotated);
    expect(access.matches(first)).toBe(false);

    rmSync(accessTokenPath(d));
    now += 1000;
    expect(access.current()).toBe(rotated);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(readAccessToken(d)).toBe(rotated);
  });
});
