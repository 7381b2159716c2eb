// The refresh schedule of OAuthManager, on fake time: when a refresh happens, the backoff after a
// failure, what a dead grant does, and that concurrent callers share one refresh. The token
// endpoint is a function handed to oauth4webapi as its fetch; the token file is kept in memory.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OAuthManager } from '../../src/auth/oauth-manager.js';
import type { OAuthState, StoredTokens, TokenFile } from '../../src/auth/token-store.js';
import type { HttpUpstreamConfig } from '../../src/config/schema.js';
import { type BridgeError, isBridgeError } from '../../src/errors.js';
import { createSilentLogger } from '../../src/log.js';

const T0 = Date.UTC(2030, 0, 1);
const ISSUER = 'http://127.0.0.1:9';
const NAME = 'notes';
const config: HttpUpstreamConfig = {
  kind: 'http',
  name: NAME,
  url: 'http://127.0.0.1:9/mcp',
  headers: {},
  transport: 'streamable-http',
  oauth: {},
  callTimeoutMs: 10_000,
};

/** The token file in memory, one `update` at a time like the locked file. */
class MemoryTokenFile implements TokenFile {
  problem: string | undefined;
  updates = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(public state: OAuthState) {}

  async read(): Promise<OAuthState> {
    return structuredClone(this.state);
  }

  update<T>(change: (state: OAuthState) => Promise<{ write: boolean; value: T }>): Promise<T> {
    this.updates++;
    const run = this.queue.then(async () => {
      const copy = structuredClone(this.state);
      const { write, value } = await change(copy);
      if (write) this.state = copy;
      return value;
    });
    this.queue = run.catch(() => {});
    return run;
  }
}

function tokens(lifetimeMs: number, n = 0): StoredTokens {
  return {
    serverUrl: config.url,
    resource: config.url,
    issuer: ISSUER,
    clientId: 'client-1',
    accessToken: `access-${n}`,
    tokenType: 'bearer',
    refreshToken: `refresh-${n}`,
    expiresAt: Date.now() + lifetimeMs,
    obtainedAt: Date.now(),
  };
}

type Answer = () => Response | Promise<Response>;

/** A token endpoint: records each refresh (when, with which refresh token) and answers from `answer`. */
function tokenEndpoint() {
  const calls: { at: number; refreshToken: string | null }[] = [];
  let issued = 0;
  const endpoint = {
    calls,
    /** Rotates the refresh token and issues an access token for `expiresIn` seconds. */
    answer: (() => {
      issued++;
      return Response.json({
        access_token: `access-${issued}`,
        token_type: 'Bearer',
        refresh_token: `refresh-${issued}`,
        expires_in: 3600,
      });
    }) as Answer,
    fetch: async (url: string, init: RequestInit): Promise<Response> => {
      expect(url).toBe(`${ISSUER}/token`);
      const body = new URLSearchParams(init.body as URLSearchParams);
      expect(body.get('grant_type')).toBe('refresh_token');
      calls.push({ at: Date.now(), refreshToken: body.get('refresh_token') });
      return endpoint.answer();
    },
  };
  return endpoint;
}

async function setup(stored: StoredTokens) {
  const file = new MemoryTokenFile({
    version: 1,
    authServers: { [ISSUER]: { issuer: ISSUER, token_endpoint: `${ISSUER}/token` } },
    clients: {},
    tokens: { [NAME]: stored },
  });
  const endpoint = tokenEndpoint();
  const needsAuth: BridgeError[] = [];
  const refreshes: string[] = [];
  const manager = new OAuthManager(file, createSilentLogger(), {
    events: {
      onNeedsAuth: (_name, error) => needsAuth.push(error),
      onAuthorized: () => {},
      onRefresh: (name, outcome) => refreshes.push(`${name}:${outcome}`),
    },
    fetch: endpoint.fetch,
  });
  await manager.load([config]);
  return { file, endpoint, needsAuth, refreshes, manager, provider: manager.provider(config) };
}

describe('OAuthManager refresh schedule', () => {
  let close: (() => void) | undefined;

  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
    // No jitter: retries land exactly on the backoff delays.
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
  });

  afterEach(() => {
    close?.();
    close = undefined;
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('refreshes min(60 s, a quarter of the lifetime) before expiry', async () => {
    for (const [lifetime, lead] of [
      [3_600_000, 60_000],
      [100_000, 25_000],
    ] as const) {
      vi.setSystemTime(T0);
      const { endpoint, manager } = await setup(tokens(lifetime));
      close = () => manager.close();
      await vi.advanceTimersByTimeAsync(lifetime - lead - 1);
      expect(endpoint.calls).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(1);
      expect(endpoint.calls).toEqual([{ at: T0 + lifetime - lead, refreshToken: 'refresh-0' }]);
      // The new tokens (3600 s, counted from the request, less a second) are scheduled the same way.
      const next = T0 + lifetime - lead + 3_599_000 - 60_000;
      await vi.advanceTimersByTimeAsync(next - Date.now() - 1);
      expect(endpoint.calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(endpoint.calls.map((c) => [c.at, c.refreshToken])[1]).toEqual([next, 'refresh-1']);
      manager.close();
    }
  });

  it('retries a temporary failure after 1 s, doubling to 60 s, and keeps the tokens meanwhile', async () => {
    const { endpoint, manager, provider, file } = await setup(tokens(3_600_000));
    close = () => manager.close();
    const fine = endpoint.answer;
    endpoint.answer = () => Response.json({ error: 'temporarily_unavailable' }, { status: 503 });
    const first = T0 + 3_600_000 - 60_000;
    await vi.advanceTimersByTimeAsync(first - T0);
    expect(endpoint.calls).toHaveLength(1);
    // While the retry is pending, callers get the old, still valid access token without a request.
    expect(await provider.token()).toBe('access-0');
    await vi.advanceTimersByTimeAsync(1_000 + 2_000 + 4_000 + 8_000 + 16_000 + 32_000 + 60_000 + 60_000);
    const gaps = endpoint.calls.slice(1).map((c, i) => c.at - (endpoint.calls[i]?.at ?? 0));
    expect(gaps).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
    expect(file.state.tokens[NAME]?.refreshToken).toBe('refresh-0');

    endpoint.answer = fine;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(endpoint.calls).toHaveLength(10);
    expect(await provider.token()).toBe('access-1');
    // Success ends the backoff: the next refresh is a normal one, ahead of the new expiry.
    const refreshedAt = endpoint.calls[9]?.at ?? 0;
    await vi.advanceTimersByTimeAsync(refreshedAt + 3_599_000 - 60_000 - Date.now() - 1);
    expect(endpoint.calls).toHaveLength(10);
    // …and a failure after it starts the backoff over at 1 s.
    endpoint.answer = () => new Response('bad gateway', { status: 502 });
    await vi.advanceTimersByTimeAsync(1);
    expect(endpoint.calls).toHaveLength(11);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(endpoint.calls.map((c) => c.at - refreshedAt).slice(10)).toEqual([3_539_000, 3_540_000]);
  });

  it('deletes the tokens and reports NEEDS_AUTH on invalid_grant, and stops refreshing', async () => {
    const { endpoint, manager, provider, file, needsAuth } = await setup(tokens(100_000));
    close = () => manager.close();
    endpoint.answer = () =>
      Response.json({ error: 'invalid_grant', error_description: 'revoked' }, { status: 400 });
    await vi.advanceTimersByTimeAsync(75_000);
    expect(endpoint.calls).toHaveLength(1);
    expect(file.state.tokens[NAME]).toBeUndefined();
    expect(needsAuth).toHaveLength(1);
    expect(isBridgeError(needsAuth[0], 'NEEDS_AUTH')).toBe(true);
    expect(needsAuth[0]?.message).toContain('invalid_grant');
    expect(await provider.token()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(endpoint.calls).toHaveLength(1);
  });

  it('has concurrent callers share one refresh', async () => {
    const { endpoint, manager, provider, file } = await setup(tokens(100_000));
    close = () => manager.close();
    // Past the refresh time but before the timer ran (the process was asleep, say).
    vi.setSystemTime(T0 + 80_000);
    let release: () => void = () => {};
    const fine = endpoint.answer;
    endpoint.answer = () => new Promise<Response>((resolve) => (release = () => resolve(fine())));
    const waiting = [
      ...Array.from({ length: 5 }, () => provider.token()),
      ...Array.from({ length: 5 }, () => manager.refresh(NAME, 'access-0').then((t) => t.accessToken)),
    ];
    await vi.waitFor(() => expect(endpoint.calls).toHaveLength(1));
    release();
    expect(await Promise.all(waiting)).toEqual(Array(10).fill('access-1'));
    expect(endpoint.calls).toHaveLength(1);
    // One trip through the locked file, not one per caller.
    expect(file.updates).toBe(1);
  });

  it('reports every refresh by outcome, and tells the token times (never a token) in tokenInfo', async () => {
    const { endpoint, manager, refreshes } = await setup(tokens(100_000));
    close = () => manager.close();
    expect(manager.tokenInfo()).toEqual([
      {
        upstream: NAME,
        loggedIn: true,
        expiresAt: T0 + 100_000,
        obtainedAt: T0,
        refreshable: true,
        lastRefresh: undefined,
      },
    ]);
    const fine = endpoint.answer;
    endpoint.answer = () => new Response('bad gateway', { status: 502 });
    await vi.advanceTimersByTimeAsync(75_000);
    expect(refreshes).toEqual([`${NAME}:failed`]);
    endpoint.answer = fine;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(refreshes).toEqual([`${NAME}:failed`, `${NAME}:ok`]);
    const info = manager.tokenInfo()[0]!;
    expect(info.lastRefresh).toEqual({ at: T0 + 76_000, outcome: 'ok' });
    expect(info.expiresAt).toBeGreaterThan(T0 + 3_600_000);
    expect(JSON.stringify(manager.tokenInfo())).not.toMatch(/access-|refresh-/);

    endpoint.answer = () => Response.json({ error: 'invalid_grant' }, { status: 400 });
    await manager.refresh(NAME, 'access-1').catch(() => {});
    expect(refreshes.at(-1)).toBe(`${NAME}:invalid_grant`);
    expect(manager.tokenInfo()[0]).toMatchObject({ loggedIn: false, expiresAt: undefined });
  });
});
