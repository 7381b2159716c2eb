import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import lockfile from 'proper-lockfile';
import { z } from 'zod';
import { BridgeError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { ensureDir, tightenDir } from '../store/file-safety.js';
import { parseJsonText } from '../store/json-file.js';
import { moveAside } from '../store/move-aside.js';
import { writeFileAtomic } from '../store/write-file-atomic.js';

const ClientSchema = z.looseObject({
  issuer: z.string().optional(),
  clientId: z.string(),
  clientSecret: z.string().optional(),
  redirectUris: z.array(z.string()),
  tokenEndpointAuthMethod: z.string(),
  registeredAt: z.number(),
});
/** A dynamically registered client, per authorization server (RFC 6749 §2.2: ids are per issuer). */
export type StoredClient = z.infer<typeof ClientSchema>;

const TokensSchema = z.looseObject({
  /** The MCP server URL the tokens were obtained for; a changed URL never receives them. */
  serverUrl: z.string(),
  /** The RFC 8707 resource the grant is bound to (sent again on every refresh). */
  resource: z.string(),
  issuer: z.string(),
  clientId: z.string(),
  accessToken: z.string(),
  tokenType: z.string(),
  refreshToken: z.string().optional(),
  /** Absolute expiry of the access token, epoch ms. */
  expiresAt: z.number().optional(),
  scope: z.string().optional(),
  obtainedAt: z.number(),
});
export type StoredTokens = z.infer<typeof TokensSchema>;

const StateFileSchema = z.looseObject({
  version: z.literal(1),
  /** Authorization server metadata by issuer, so a restarted daemon can refresh without discovery. */
  authServers: z.record(
    z.string(),
    z.looseObject({ issuer: z.string(), token_endpoint: z.string().optional() }),
  ),
  clients: z.record(z.string(), ClientSchema),
  /** By upstream name. */
  tokens: z.record(z.string(), TokensSchema),
});
export type OAuthState = z.infer<typeof StateFileSchema>;

export const STATE_FILE_NAME = 'oauth-state.json';

/** Registrations are per authorization server and client (RFC 6749 §2.2). */
export function clientKey(issuer: string, clientId: string): string {
  return `${issuer} ${clientId}`;
}

/** What the OAuth manager needs of the store (unit tests give it one in memory). */
export type TokenFile = Pick<TokenStore, 'read' | 'update' | 'problem'>;

const emptyState = (): OAuthState => ({ version: 1, authServers: {}, clients: {}, tokens: {} });

/**
 * oauth-state.json: registrations and tokens. Every change is a locked read-modify-write (so the
 * daemon and `mcp-bridge auth` never interleave), written temp + fsync + rename with mode 0600 in a
 * 0700 directory. A corrupt file is moved aside and reported, never silently replaced.
 */
export class TokenStore {
  readonly file: string;
  /** A problem found with the file (corrupt, unreadable), kept for error messages and /status. */
  problem: string | undefined;

  constructor(
    configDir: string,
    private readonly log: Logger,
  ) {
    this.file = join(configDir, STATE_FILE_NAME);
  }

  /**
   * The current contents, without locking (writers replace the file atomically). A corrupt file
   * reads as empty and is recorded in `problem`; only a locked `update` moves it aside.
   */
  read(): Promise<OAuthState> {
    return this.load(false);
  }

  private async load(locked: boolean): Promise<OAuthState> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
      throw new BridgeError(
        'OAUTH_TOKEN_FAILED',
        `cannot read the token file ${this.file}: ${errorMessage(error)}; fix its permissions (it should be readable by this user only, mode 0600)`,
        { cause: error, details: { file: this.file } },
      );
    }
    // Only where and what kind of problem, never the text: it may be part of a token.
    const checked = parseJsonText(text, StateFileSchema);
    if (checked.ok) return checked.value;
    const why = checked.problem;
    if (!locked) {
      this.problem = `the token file ${this.file} is corrupt (${why})`;
      return emptyState();
    }
    const aside = await moveAside(this.file);
    if (aside === undefined) {
      throw new BridgeError(
        'OAUTH_TOKEN_FAILED',
        `the token file ${this.file} is corrupt (${why}) and could not be moved aside; move or delete it, then run \`npm run auth\``,
        { details: { file: this.file } },
      );
    }
    this.problem = `the token file was corrupt (${why}); it was moved to ${aside}`;
    this.log.error(
      { file: this.file, movedTo: aside, err: why },
      'the token file is corrupt; moved it aside',
    );
    return emptyState();
  }

  /**
   * Runs `change` on a fresh read of the file while holding the file lock, and writes the result if
   * `change` returned `{ write: true }`. Network calls inside `change` (a refresh) keep the lock, so
   * only one process at a time can spend a refresh token.
   */
  async update<T>(change: (state: OAuthState) => Promise<{ write: boolean; value: T }>): Promise<T> {
    const dir = dirname(this.file);
    await ensureDir(dir);
    const release = await this.lock();
    try {
      const state = await this.load(true);
      const { write, value } = await change(state);
      if (write) {
        await writeFileAtomic(this.file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
        await tightenDir(dir);
      }
      return value;
    } finally {
      await release().catch((error: unknown) =>
        this.log.warn({ err: errorMessage(error) }, 'could not release the token file lock'),
      );
    }
  }

  private async lock(): Promise<() => Promise<void>> {
    try {
      return await lockfile.lock(this.file, {
        realpath: false,
        // A holder that died (kill -9) leaves the lock behind; it is taken over once its mtime is stale.
        // Longer than any token request (15 s), so a live holder is never taken over.
        stale: 20_000,
        update: 2_000,
        retries: { retries: 120, factor: 1.2, minTimeout: 20, maxTimeout: 500 },
        onCompromised: (error) =>
          this.log.warn(
            { err: errorMessage(error) },
            'the token file lock was taken over by another process',
          ),
      });
    } catch (error) {
      throw new BridgeError(
        'OAUTH_TOKEN_FAILED',
        `could not lock the token file ${this.file} (${errorMessage(error)}); is another mcp-bridge process stuck? Remove ${this.file}.lock if no other process is running`,
        { cause: error, details: { file: this.file } },
      );
    }
  }
}
