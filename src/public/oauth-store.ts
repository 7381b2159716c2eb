import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { type ConnectorInfo, listConnectors } from './connector-list.js';
import { type Entry, readStoreFile, type StoreContents, writeStoreFile } from './store-file.js';

export type { ConnectorInfo } from './connector-list.js';

export const CONNECTORS_FILE_NAME = 'connectors.json';

/**
 * What survives a restart: registrations, grants and the tokens a connector holds. Sessions,
 * interactions and authorization codes live a few minutes and stay in memory (a restart in the
 * middle of a login just means logging in again).
 */
const PERSISTED = new Set(['Client', 'Grant', 'AccessToken', 'RefreshToken']);
/** Kept under a hash of their value: the file alone does not hand out working tokens. */
const HASHED = new Set(['AccessToken', 'RefreshToken', 'AuthorizationCode']);
/**
 * Registration is open to anyone who knows the public URL (that is how ChatGPT and claude.ai
 * connect), so registrations nobody consented to are capped: past this many, the oldest go.
 */
export const MAX_UNCONSENTED_CLIENTS = 100;
/** Logins in progress (interactions, codes, browser sessions) kept at most, per kind. */
const MAX_TRANSIENT_PER_MODEL = 1000;
/** How often expired entries are dropped (reads drop them too, but nothing reads abandoned logins). */
const SWEEP_MS = 60_000;
/** A client's "last used" is written at most this often (it is for people, not for security). */
const TOUCH_PERSIST_MS = 60_000;

const modelOf = (key: string) => key.slice(0, key.indexOf(':'));

/**
 * connectors.json: the bridge's own authorization server state, behind oidc-provider's adapter
 * interface. Everything is served from memory; every change that oidc-provider waits for is on
 * disk (store-file.ts: temp + fsync + rename, mode 0600 in the 0700 config dir) before the call
 * returns, so a token a client received is never lost to a crash. Concurrent changes share one
 * write.
 */
export class OAuthStore implements StoreContents {
  readonly entries: Map<string, Entry>;
  readonly lastUsed: Map<string, number>;
  private readonly lastUsedWritten = new Map<string, number>();
  private readonly revokedListeners = new Set<(grantIds: ReadonlySet<string>) => void>();
  /** Bumped by every change; `written` is the version the file holds. */
  private version = 0;
  private written = 0;
  private writing: Promise<void> | undefined;
  private readonly sweeper: NodeJS.Timeout;

  private constructor(
    readonly file: string,
    contents: StoreContents,
    private readonly log: Logger,
  ) {
    this.entries = contents.entries;
    this.lastUsed = contents.lastUsed;
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /** Reads the file; a corrupt one is moved aside (connectors must log in again) and reported. */
  static async open(configDir: string, log: Logger): Promise<OAuthStore> {
    const file = join(configDir, CONNECTORS_FILE_NAME);
    return new OAuthStore(file, await readStoreFile(file, log), log);
  }

  /** Stops the sweep (the daemon is closing). */
  close(): void {
    clearInterval(this.sweeper);
  }

  /** oidc-provider's `adapter` option. */
  adapter(): new (model: string) => Adapter {
    const store = this;
    return class StoreAdapter implements Adapter {
      constructor(private readonly model: string) {}
      upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
        return store.upsert(this.model, id, payload, expiresIn);
      }
      async find(id: string) {
        return store.find(this.model, id);
      }
      async findByUid(uid: string) {
        return store.findBy(this.model, (p) => p.uid === uid);
      }
      async findByUserCode(userCode: string) {
        return store.findBy(this.model, (p) => p.userCode === userCode);
      }
      consume(id: string) {
        return store.consume(this.model, id);
      }
      destroy(id: string) {
        return store.remove((key) => key === store.key(this.model, id));
      }
      revokeByGrantId(grantId: string) {
        return store.remove(
          (key, entry) => key.startsWith(`${this.model}:`) && entry.payload.grantId === grantId,
        );
      }
    };
  }

  key(model: string, id: string): string {
    return `${model}:${HASHED.has(model) ? createHash('sha256').update(id).digest('base64url') : id}`;
  }

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt !== null && entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  find(model: string, id: string): AdapterPayload | undefined {
    const entry = this.live(this.key(model, id));
    if (!entry) return undefined;
    // The id was left out of hashed entries; oidc-provider expects it back in `jti`.
    return HASHED.has(model) ? { ...entry.payload, jti: id } : entry.payload;
  }

  private findBy(model: string, match: (payload: AdapterPayload) => boolean): AdapterPayload | undefined {
    for (const [key, entry] of this.entries) {
      if (key.startsWith(`${model}:`) && match(entry.payload)) return this.live(key)?.payload;
    }
    return undefined;
  }

  private async upsert(model: string, id: string, payload: AdapterPayload, expiresIn?: number) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : null;
    const stored = HASHED.has(model) ? { ...payload, jti: undefined } : { ...payload };
    if (HASHED.has(model)) delete stored.jti;
    const key = this.key(model, id);
    const added = !this.entries.has(key);
    this.entries.set(key, { payload: stored, expiresAt });
    if (model === 'Client' && added) this.capUnconsented();
    if (!PERSISTED.has(model) && added) this.capTransient(model);
    // A refresh keeps its grant alive: the refresh lifetime is sliding, the grant's must follow it.
    if (model === 'RefreshToken' && payload.grantId && typeof payload.exp === 'number') {
      const grant = this.live(this.key('Grant', payload.grantId));
      if (grant && typeof grant.payload.exp === 'number' && grant.payload.exp < payload.exp) {
        grant.payload = { ...grant.payload, exp: payload.exp };
        grant.expiresAt = payload.exp * 1000;
      }
    }
    if (PERSISTED.has(model)) await this.persist();
  }

  /** Logins nobody finishes cost memory only up to the cap: the oldest of their kind go first. */
  private capTransient(model: string): void {
    const prefix = `${model}:`;
    const count = () => {
      let n = 0;
      for (const key of this.entries.keys()) if (key.startsWith(prefix)) n++;
      return n;
    };
    if (count() <= MAX_TRANSIENT_PER_MODEL) return;
    this.sweep();
    let excess = count() - MAX_TRANSIENT_PER_MODEL;
    for (const key of this.entries.keys()) {
      if (excess <= 0) break;
      if (!key.startsWith(prefix)) continue;
      this.entries.delete(key);
      excess--;
    }
  }

  private sweep(now = Date.now()): void {
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt !== null && entry.expiresAt <= now) this.entries.delete(key);
    }
  }

  /** Drops the oldest registrations without a grant beyond MAX_UNCONSENTED_CLIENTS. */
  private capUnconsented(): void {
    const consented = new Set<string>();
    for (const [key, entry] of this.entries) {
      if (key.startsWith('Grant:') && entry.payload.clientId) consented.add(entry.payload.clientId);
    }
    const unconsented = [...this.entries.keys()].filter(
      (key) => key.startsWith('Client:') && !consented.has(key.slice('Client:'.length)),
    );
    const excess = unconsented.length - MAX_UNCONSENTED_CLIENTS;
    if (excess <= 0) return;
    for (const key of unconsented.slice(0, excess)) this.entries.delete(key);
    this.log.warn(
      { dropped: excess, kept: MAX_UNCONSENTED_CLIENTS },
      'many client registrations without a consent: dropped the oldest (someone may be registering clients at your public URL)',
    );
  }

  private async consume(model: string, id: string) {
    const entry = this.live(this.key(model, id));
    if (!entry) return;
    entry.payload = { ...entry.payload, consumed: Math.floor(Date.now() / 1000) };
    if (PERSISTED.has(model)) await this.persist();
  }

  private async remove(match: (key: string, entry: Entry) => boolean): Promise<void> {
    const grantIds = new Set<string>();
    let persisted = false;
    for (const [key, entry] of this.entries) {
      if (!match(key, entry)) continue;
      this.entries.delete(key);
      if (key.startsWith('Grant:')) grantIds.add(key.slice('Grant:'.length));
      persisted ||= PERSISTED.has(modelOf(key));
    }
    if (grantIds.size > 0) for (const listener of this.revokedListeners) listener(grantIds);
    if (persisted) await this.persist();
  }

  /** Called when grants die (revocation, a reused refresh token): their sessions must end too. */
  onGrantsRevoked(listener: (grantIds: ReadonlySet<string>) => void): () => void {
    this.revokedListeners.add(listener);
    return () => this.revokedListeners.delete(listener);
  }

  /** Whether grant `id` is still live (a token outlives nothing it was issued under). */
  hasGrant(grantId: string): boolean {
    return this.live(this.key('Grant', grantId)) !== undefined;
  }

  /** A connector used a valid token now (for `connectors list`). */
  touch(clientId: string): void {
    const now = Date.now();
    this.lastUsed.set(clientId, now);
    if (now - (this.lastUsedWritten.get(clientId) ?? 0) < TOUCH_PERSIST_MS) return;
    this.lastUsedWritten.set(clientId, now);
    this.persist().catch((error: unknown) =>
      this.log.warn({ err: errorMessage(error) }, 'could not write the connectors file'),
    );
  }

  /** Every connector with a registration or a live grant, oldest first. */
  connectors(): ConnectorInfo[] {
    this.sweep();
    return listConnectors(this.entries, this.lastUsed);
  }

  /**
   * Removes a connector's registration, grants and tokens at once; returns whether it had any.
   * Its open sessions end through onGrantsRevoked.
   */
  async revoke(clientId: string): Promise<boolean> {
    let found = false;
    await this.remove((key, entry) => {
      const hit = key === `Client:${clientId}` || entry.payload.clientId === clientId;
      found ||= hit;
      return hit;
    });
    this.lastUsed.delete(clientId);
    return found;
  }

  /** Waits until every change made so far is on disk. */
  flush(): Promise<void> {
    return this.version === this.written ? Promise.resolve() : this.persist();
  }

  /**
   * Resolves once the file holds this change. One write at a time; changes made while it runs
   * are written together by the next one.
   */
  private async persist(): Promise<void> {
    const mine = ++this.version;
    while (this.written < mine) {
      if (this.writing) {
        await this.writing.catch(() => {});
        continue;
      }
      const version = this.version;
      this.writing = writeStoreFile(this.file, this, (key) => PERSISTED.has(modelOf(key))).then(() => {
        this.written = Math.max(this.written, version);
      });
      try {
        await this.writing;
      } finally {
        this.writing = undefined;
      }
    }
  }
}
