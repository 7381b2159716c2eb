import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { z } from 'zod';
import { BridgeError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { tightenDir } from '../store/file-safety.js';
import { parseJsonText } from '../store/json-file.js';
import { moveAside } from '../store/move-aside.js';
import { writeFileAtomic } from '../store/write-file-atomic.js';

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
/** A client's "last used" is written at most this often (it is for people, not for security). */
const TOUCH_PERSIST_MS = 60_000;

const EntrySchema = z.object({
  payload: z.looseObject({}),
  /** Epoch ms; null: never (registrations). */
  expiresAt: z.number().nullable(),
});
type Entry = { payload: AdapterPayload; expiresAt: number | null };

const FileSchema = z.looseObject({
  version: z.literal(1),
  /** By `<model>:<id>` (token ids hashed). */
  entries: z.record(z.string(), EntrySchema),
  /** Epoch ms a connector last sent a valid token, by client id. */
  lastUsed: z.record(z.string(), z.number()),
});

/** A connector as `mcp-bridge connectors list` shows it. */
export interface ConnectorInfo {
  readonly clientId: string;
  readonly clientName: string | undefined;
  readonly redirectHosts: readonly string[];
  /** Epoch ms. */
  readonly createdAt: number | undefined;
  readonly lastUsedAt: number | undefined;
  readonly scopes: readonly string[];
  /** Live grants (one per consent). */
  readonly grants: number;
}

/**
 * connectors.json: the bridge's own authorization server state, behind oidc-provider's adapter
 * interface. Everything is served from memory; every change that oidc-provider waits for is on
 * disk (temp + fsync + rename, mode 0600 in the 0700 config dir) before the call returns, so a
 * token a client received is never lost to a crash. Concurrent changes share one write.
 */
export class OAuthStore {
  readonly file: string;
  private readonly entries = new Map<string, Entry>();
  private readonly lastUsed = new Map<string, number>();
  private readonly lastUsedWritten = new Map<string, number>();
  private readonly revokedListeners = new Set<(grantIds: ReadonlySet<string>) => void>();
  /** Bumped by every change; `written` is the version the file holds. */
  private version = 0;
  private written = 0;
  private writing: Promise<void> | undefined;

  private constructor(
    configDir: string,
    private readonly log: Logger,
  ) {
    this.file = join(configDir, CONNECTORS_FILE_NAME);
  }

  /** Reads the file; a corrupt one is moved aside (connectors must log in again) and reported. */
  static async open(configDir: string, log: Logger): Promise<OAuthStore> {
    const store = new OAuthStore(configDir, log);
    await store.load();
    return store;
  }

  private async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new BridgeError(
        'CONFIG_INVALID',
        `cannot read ${this.file}: ${errorMessage(error)}; it should be readable by this user only (mode 0600)`,
        { cause: error, details: { file: this.file } },
      );
    }
    const parsed = parseJsonText(text, FileSchema);
    if (!parsed.ok) {
      const aside = await moveAside(this.file);
      if (!aside) {
        throw new BridgeError(
          'CONFIG_INVALID',
          `${this.file} is corrupt (${parsed.problem}) and could not be moved aside; move or delete it`,
          { details: { file: this.file } },
        );
      }
      this.log.error(
        { file: this.file, movedTo: aside, err: parsed.problem },
        'the connectors file is corrupt; moved it aside: every connector must connect again',
      );
      return;
    }
    const now = Date.now();
    for (const [key, entry] of Object.entries(parsed.value.entries)) {
      if (entry.expiresAt === null || entry.expiresAt > now) this.entries.set(key, entry as unknown as Entry);
    }
    for (const [clientId, at] of Object.entries(parsed.value.lastUsed)) this.lastUsed.set(clientId, at);
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
      persisted ||= PERSISTED.has(key.slice(0, key.indexOf(':')));
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
    const byClient = new Map<string, { client?: AdapterPayload; grants: AdapterPayload[] }>();
    const at = (clientId: string) => {
      let found = byClient.get(clientId);
      if (!found) {
        found = { grants: [] };
        byClient.set(clientId, found);
      }
      return found;
    };
    for (const [key] of this.entries) {
      const entry = this.live(key);
      if (!entry) continue;
      if (key.startsWith('Client:')) at(String(entry.payload.client_id)).client = entry.payload;
      else if (key.startsWith('Grant:') && entry.payload.clientId)
        at(entry.payload.clientId).grants.push(entry.payload);
    }
    return [...byClient]
      .map(([clientId, { client, grants }]) => ({
        clientId,
        clientName: typeof client?.client_name === 'string' ? client.client_name : undefined,
        redirectHosts: [...new Set((client?.redirect_uris ?? []).map((uri) => URL.parse(uri)?.host ?? uri))],
        createdAt:
          typeof client?.client_id_issued_at === 'number'
            ? client.client_id_issued_at * 1000
            : grants.length > 0
              ? Math.min(...grants.map((g) => (g.iat ?? 0) * 1000))
              : undefined,
        lastUsedAt: this.lastUsed.get(clientId),
        scopes: [...new Set(grants.flatMap(grantScopes))].sort(),
        grants: grants.length,
      }))
      .sort((a, b) => (a.createdAt ?? 0) - (b.createdAt ?? 0));
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
      this.writing = this.write().then(() => {
        this.written = Math.max(this.written, version);
      });
      try {
        await this.writing;
      } finally {
        this.writing = undefined;
      }
    }
  }

  private async write(): Promise<void> {
    const entries: Record<string, Entry> = {};
    const now = Date.now();
    for (const [key, entry] of this.entries) {
      if (!PERSISTED.has(key.slice(0, key.indexOf(':')))) continue;
      if (entry.expiresAt !== null && entry.expiresAt <= now) continue;
      entries[key] = entry;
    }
    const data = { version: 1, entries, lastUsed: Object.fromEntries(this.lastUsed) };
    await writeFileAtomic(this.file, `${JSON.stringify(data)}\n`, { mode: 0o600 });
    await tightenDir(join(this.file, '..'));
  }
}

function grantScopes(grant: AdapterPayload): string[] {
  const g = grant as { openid?: { scope?: string }; resources?: Record<string, string> };
  return [g.openid?.scope ?? '', ...Object.values(g.resources ?? {})]
    .flatMap((s) => s.split(' '))
    .filter(Boolean);
}
