import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, lstatSync, readFileSync } from 'node:fs';
import { link, mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BridgeError, errorMessage } from '../errors.js';
import { writeFileAtomic } from '../store/write-file-atomic.js';

/** The local access token's file in the config dir (0600 in the 0700 dir). */
export const ACCESS_TOKEN_FILE = 'access-token';

/**
 * A recognizable prefix: secret scanners and our own redaction can spot the token in a paste, and
 * a person can tell it from an upstream's key.
 */
const PREFIX = 'mcpb_';
const TOKEN_SHAPE = /^mcpb_[A-Za-z0-9_-]{32,}$/;

export function accessTokenPath(configDir: string): string {
  return join(configDir, ACCESS_TOKEN_FILE);
}

export function newAccessToken(): string {
  return `${PREFIX}${randomBytes(32).toString('base64url')}`;
}

function isAccessTokenShape(value: string): boolean {
  return TOKEN_SHAPE.test(value);
}

/**
 * The token as the CLI and the shim read it: undefined when there is no usable file (the daemon
 * then answers 401 with a message that says what to do, which is better than failing here).
 */
export function readAccessToken(configDir: string): string | undefined {
  try {
    const file = accessTokenPath(configDir);
    if (!lstatSync(file).isFile()) return undefined;
    const value = readFileSync(file, 'utf8').trim();
    return isAccessTokenShape(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The daemon's token: the file's, or a new one created at first start. Creation is exclusive
 * (temp file + link), so two daemons starting at once agree on one token. A file that does not
 * hold a token (empty, truncated by hand, not a regular file) is replaced, since no client can be
 * using what it holds.
 */
export async function loadOrCreateAccessToken(configDir: string): Promise<string> {
  const existing = readAccessToken(configDir);
  if (existing) return existing;
  const file = accessTokenPath(configDir);
  const token = newAccessToken();
  await mkdir(configDir, { recursive: true, mode: 0o700 });
  if (await createExclusive(file, `${token}\n`)) return token;
  const winner = readAccessToken(configDir);
  if (winner) return winner;
  await writeAccessToken(configDir, token);
  return token;
}

/** Replaces the token (`mcp-bridge token rotate`); a running daemon notices within a second. */
export async function writeAccessToken(configDir: string, token: string): Promise<void> {
  const file = accessTokenPath(configDir);
  try {
    const info = lstatSync(file);
    if (!info.isFile()) {
      throw new BridgeError(
        'CONFIG_INVALID',
        `${file} is not a regular file (a symlink or a directory); remove it and start mcp-bridge again`,
      );
    }
  } catch (error) {
    if (error instanceof BridgeError) throw error;
  }
  await writeFileAtomic(file, `${token}\n`, { mode: 0o600 });
}

async function createExclusive(file: string, data: string): Promise<boolean> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(data, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new BridgeError('CONFIG_INVALID', `cannot create ${file}: ${errorMessage(error)}`, {
      cause: error,
    });
  } finally {
    await rm(temp, { force: true });
  }
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Constant-time in the content. Tokens and session credentials have a fixed, public length, so
 * only an equal-length guess is compared byte by byte (the daemon checks every request this way).
 */
function sameBytes(presented: string, expected: Buffer): boolean {
  const bytes = Buffer.from(presented);
  return bytes.length === expected.length && timingSafeEqual(bytes, expected);
}

/** Constant-time: both sides are hashed first, so neither length nor content leaks through timing. */
export function tokensEqual(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/**
 * What the daemon answers to `/healthz?challenge=…`: proof that it knows the token, without sending
 * it. The CLI and the shim check it before they send the token, so a process squatting on the port
 * never receives it. The port the daemon was reached on is part of it: a proof relayed from a
 * daemon elsewhere (another port, same config dir) does not vouch for this one.
 */
export function challengeProof(token: string, port: number, challenge: string): string {
  return createHmac('sha256', token).update(`mcp-bridge-healthz:${port}:${challenge}`).digest('base64url');
}

export function proofMatches(token: string, port: number, challenge: string, proof: unknown): boolean {
  return typeof proof === 'string' && tokensEqual(proof, challengeProof(token, port, challenge));
}

const SESSION_PREFIX = 'mcpbs_';

/**
 * A credential good for one 2025 session only: what the shim sends after `initialize`, so a
 * program that takes the port after the daemon stops (the shim's event stream reconnects on its
 * own) learns nothing that works against the next daemon. Derived, so the daemon stores nothing;
 * a rotated token invalidates it.
 */
export function sessionCredential(token: string, sessionId: string): string {
  return `${SESSION_PREFIX}${createHmac('sha256', token).update(`mcp-bridge-session:${sessionId}`).digest('base64url')}`;
}

export function isSessionCredential(value: string): boolean {
  return value.startsWith(SESSION_PREFIX);
}

/**
 * The daemon's view of the token: the file is checked at most once a second, so `token rotate`
 * (or an edit by hand) takes effect without a restart, and a deleted file is written back.
 */
export class AccessToken {
  private checkedAt = 0;
  private stamp = '';
  private readonly listeners = new Set<() => void>();
  private watcher: NodeJS.Timeout | undefined;

  private constructor(
    private readonly configDir: string,
    private token: string,
    private readonly now: () => number,
  ) {
    this.stamp = this.fileStamp();
    this.checkedAt = now();
  }

  static async load(configDir: string, now: () => number = Date.now): Promise<AccessToken> {
    return new AccessToken(configDir, await loadOrCreateAccessToken(configDir), now);
  }

  /**
   * Whether the file was readable by others when the daemon started (a dotfile sync or a restore can
   * do that); it is then made 0600 again, and the token should be rotated.
   */
  static tightenMode(configDir: string): boolean {
    const file = accessTokenPath(configDir);
    try {
      const info = lstatSync(file);
      if (!info.isFile() || (info.mode & 0o077) === 0) return false;
      chmodSync(file, 0o600);
      return true;
    } catch {
      return false;
    }
  }

  /** Calls `listener` when the token changes (rotation); checks the file every second meanwhile. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    this.watcher ??= setInterval(() => this.current(), 1000);
    this.watcher.unref();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) {
        clearInterval(this.watcher);
        this.watcher = undefined;
      }
    };
  }

  get file(): string {
    return accessTokenPath(this.configDir);
  }

  private digests: { of: string; token: Buffer; sessions: Map<string, Buffer> } | undefined;

  current(): string {
    const now = this.now();
    if (now - this.checkedAt >= 1000) {
      this.checkedAt = now;
      const stamp = this.fileStamp();
      if (stamp !== this.stamp) {
        this.stamp = stamp;
        const fresh = readAccessToken(this.configDir);
        if (fresh && fresh !== this.token) {
          this.token = fresh;
          for (const listener of this.listeners) listener();
        } else if (!fresh && stamp === '') void writeAccessToken(this.configDir, this.token).catch(() => {});
      }
    }
    return this.token;
  }

  matches(presented: string): boolean {
    return sameBytes(presented, this.expected().token);
  }

  /** `presented` is the session credential of `sessionId` under the current token. */
  matchesSession(presented: string, sessionId: string): boolean {
    const { sessions } = this.expected();
    let credential = sessions.get(sessionId);
    if (credential === undefined) {
      // Bounded: ids are chosen by clients before the check; a flood of them only costs recomputing.
      if (sessions.size >= 4096) sessions.clear();
      credential = Buffer.from(sessionCredential(this.token, sessionId));
      sessions.set(sessionId, credential);
    }
    return sameBytes(presented, credential);
  }

  /** What is expected under the current token, as bytes, made once per token (every request checks). */
  private expected(): { token: Buffer; sessions: Map<string, Buffer> } {
    const token = this.current();
    if (this.digests?.of !== token)
      this.digests = { of: token, token: Buffer.from(token), sessions: new Map() };
    return this.digests;
  }

  private fileStamp(): string {
    try {
      const info = lstatSync(this.file);
      return `${info.ino}:${info.mtimeMs}:${info.size}`;
    } catch {
      return '';
    }
  }
}
