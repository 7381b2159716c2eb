import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSilentLogger } from '../../src/log.js';
import { BearerCheck } from '../../src/public/bearer.js';
import { CONNECTORS_FILE_NAME, OAuthStore } from '../../src/public/oauth-store.js';
import { makeTempDir } from '../helpers/bridge.js';

const RESOURCE = 'https://bridge.example.com/mcp';
const now = () => Math.floor(Date.now() / 1000);

describe('OAuthStore (connectors.json)', () => {
  const dirs: (() => void)[] = [];
  afterEach(() => {
    for (const cleanup of dirs.splice(0)) cleanup();
  });
  const temp = () => {
    const t = makeTempDir();
    dirs.push(t.cleanup);
    return t.dir;
  };

  it('keeps tokens under a hash, in a 0600 file, and serves them back after a reopen', async () => {
    const dir = temp();
    const store = await OAuthStore.open(dir, createSilentLogger());
    const Adapter = store.adapter();
    await new Adapter('Client').upsert('client-1', {
      client_id: 'client-1',
      client_name: 'ChatGPT',
      redirect_uris: ['https://chatgpt.com/x'],
    });
    await new Adapter('Grant').upsert('grant-1', { clientId: 'client-1', exp: now() + 100, iat: now() }, 100);
    const token = 'opaque-access-token-value-that-must-not-be-in-the-file';
    await new Adapter('AccessToken').upsert(
      token,
      { jti: token, clientId: 'client-1', grantId: 'grant-1', aud: RESOURCE, exp: now() + 60 },
      60,
    );
    const file = join(dir, CONNECTORS_FILE_NAME);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(token);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const reopened = await OAuthStore.open(dir, createSilentLogger());
    expect(reopened.find('AccessToken', token)).toMatchObject({ jti: token, grantId: 'grant-1' });
    expect(reopened.connectors()).toMatchObject([
      { clientId: 'client-1', clientName: 'ChatGPT', redirectHosts: ['chatgpt.com'], grants: 1 },
    ]);
  });

  it('a refresh token keeps its grant alive (sliding lifetime)', async () => {
    const store = await OAuthStore.open(temp(), createSilentLogger());
    const Adapter = store.adapter();
    await new Adapter('Grant').upsert('g', { clientId: 'c', exp: now() + 10 }, 10);
    await new Adapter('RefreshToken').upsert('rt', { grantId: 'g', clientId: 'c', exp: now() + 1000 }, 1000);
    expect(store.find('Grant', 'g')?.exp).toBe(now() + 1000);
  });

  it('moves a corrupt file aside and starts empty', async () => {
    const dir = temp();
    writeFileSync(join(dir, CONNECTORS_FILE_NAME), '{"version": 1, "entries": {', { mode: 0o600 });
    const store = await OAuthStore.open(dir, createSilentLogger());
    expect(store.connectors()).toEqual([]);
    expect(readdirSync(dir).some((f) => f.startsWith(`${CONNECTORS_FILE_NAME}.corrupt-`))).toBe(true);
  });

  it('writes concurrent changes and every one of them is on disk when its call returns', async () => {
    const dir = temp();
    const store = await OAuthStore.open(dir, createSilentLogger());
    const Adapter = store.adapter();
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => new Adapter('Client').upsert(`c${i}`, { client_id: `c${i}` })),
    );
    const onDisk = JSON.parse(readFileSync(join(dir, CONNECTORS_FILE_NAME), 'utf8'));
    expect(Object.keys(onDisk.entries)).toHaveLength(50);
  });

  it('revoking a connector removes its registration, grants and tokens, and says which grants died', async () => {
    const store = await OAuthStore.open(temp(), createSilentLogger());
    const Adapter = store.adapter();
    await new Adapter('Client').upsert('c', { client_id: 'c' });
    await new Adapter('Grant').upsert('g', { clientId: 'c', exp: now() + 100 }, 100);
    await new Adapter('AccessToken').upsert(
      't',
      { clientId: 'c', grantId: 'g', aud: RESOURCE, exp: now() + 60 },
      60,
    );
    const died: string[] = [];
    store.onGrantsRevoked((ids) => died.push(...ids));
    expect(await store.revoke('c')).toBe(true);
    expect(died).toEqual(['g']);
    expect(store.find('AccessToken', 't')).toBeUndefined();
    expect(await store.revoke('c')).toBe(false);
  });
});

describe('BearerCheck', () => {
  it('accepts only live tokens for this resource under a live grant', async () => {
    const t = makeTempDir();
    try {
      const store = await OAuthStore.open(t.dir, createSilentLogger());
      const Adapter = store.adapter();
      const check = new BearerCheck(
        store,
        RESOURCE,
        'https://bridge.example.com/.well-known/oauth-protected-resource/mcp',
      );
      await new Adapter('Grant').upsert('g', { clientId: 'c', exp: now() + 100 }, 100);
      const put = (id: string, payload: Record<string, unknown>) =>
        new Adapter('AccessToken').upsert(
          id,
          { clientId: 'c', grantId: 'g', aud: RESOURCE, exp: now() + 60, ...payload },
          60,
        );
      await put('good', {});
      await put('expired', { exp: now() - 1 });
      await put('other-resource', { aud: 'https://other.example/mcp' });
      await put('dead-grant', { grantId: 'gone' });
      expect(check.check('Bearer good')).toMatchObject({ ok: true, clientId: 'c', grantId: 'g' });
      expect(check.check(undefined)).toMatchObject({ ok: false, code: 'BEARER_TOKEN_REQUIRED' });
      expect(check.check('Basic Zm9vOmJhcg==')).toMatchObject({ ok: false, code: 'BEARER_TOKEN_INVALID' });
      expect(check.check('Bearer expired')).toMatchObject({ ok: false, why: 'the token has expired' });
      expect(check.check('Bearer other-resource')).toMatchObject({
        ok: false,
        why: expect.stringContaining('another resource'),
      });
      expect(check.check('Bearer dead-grant')).toMatchObject({
        ok: false,
        why: expect.stringContaining('revoked'),
      });
      expect(check.check('Bearer nope')).toMatchObject({
        ok: false,
        why: expect.stringContaining('unknown'),
      });
    } finally {
      t.cleanup();
    }
  });
});

describe('OAuthStore registration cap', () => {
  it('keeps registrations with a consent and drops the oldest unconsented beyond the cap', async () => {
    const t = makeTempDir();
    try {
      const { MAX_UNCONSENTED_CLIENTS } = await import('../../src/public/oauth-store.js');
      const store = await OAuthStore.open(t.dir, createSilentLogger());
      const Adapter = store.adapter();
      await new Adapter('Client').upsert('consented', { client_id: 'consented' });
      await new Adapter('Grant').upsert('g', { clientId: 'consented', exp: now() + 100 }, 100);
      for (let i = 0; i < MAX_UNCONSENTED_CLIENTS + 5; i++)
        await new Adapter('Client').upsert(`spam-${i}`, { client_id: `spam-${i}` });
      const ids = store.connectors().map((c) => c.clientId);
      expect(ids).toContain('consented');
      expect(ids).not.toContain('spam-0');
      expect(ids).toContain(`spam-${MAX_UNCONSENTED_CLIENTS + 4}`);
      expect(ids).toHaveLength(MAX_UNCONSENTED_CLIENTS + 1);
    } finally {
      t.cleanup();
    }
  });
});

describe('OAuthStore memory bounds', () => {
  it('caps logins in progress per kind, and moves a far too large file aside', async () => {
    const t = makeTempDir();
    try {
      const store = await OAuthStore.open(t.dir, createSilentLogger());
      const Adapter = store.adapter();
      for (let i = 0; i < 1100; i++) await new Adapter('Interaction').upsert(`i${i}`, { uid: `i${i}` }, 600);
      const kept = [...store.entries.keys()].filter((k) => k.startsWith('Interaction:'));
      expect(kept).toHaveLength(1000);
      expect(kept[0]).toBe('Interaction:i100');
      store.close();
      const { truncateSync } = await import('node:fs');
      const file = join(t.dir, CONNECTORS_FILE_NAME);
      writeFileSync(file, '{}');
      truncateSync(file, 65 * 1024 * 1024);
      const reopened = await OAuthStore.open(t.dir, createSilentLogger());
      expect(reopened.connectors()).toEqual([]);
      expect(readdirSync(t.dir).some((f) => f.startsWith(`${CONNECTORS_FILE_NAME}.corrupt-`))).toBe(true);
      reopened.close();
    } finally {
      t.cleanup();
    }
  });
});
