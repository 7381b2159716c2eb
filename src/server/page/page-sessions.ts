import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';

/** A login link works this long, once. */
export const LOGIN_CODE_TTL_MS = 60_000;
/** A page session nobody used for this long is over. */
const SESSION_IDLE_MS = 12 * 60 * 60_000;
/** Bounds on what a caller with the token (or a page left open) can make the daemon hold. */
const MAX_CODES = 16;
const MAX_SESSIONS = 32;
/** The header the page's script sends its page key in (fetch only: a browser never adds it by itself). */
export const PAGE_KEY_HEADER = 'x-page-key';

interface PageSession {
  readonly key: Buffer;
  lastSeen: number;
}

const digest = (value: string) => createHash('sha256').update(value).digest('base64url');
const secret = () => randomBytes(32).toString('base64url');

/**
 * The status page's way in, apart from the access token: `mcp-bridge open` (with the token) gets a
 * one-time code, the browser trades it at /login for a page session. A session is two secrets:
 *
 * - a cookie (HttpOnly, SameSite=Strict): what lets a plain navigation show the page. Cookies are
 *   not isolated by port, so every other server on 127.0.0.1 the browser visits is sent it too;
 *   on its own it therefore opens nothing but the page's empty shell.
 * - a page key, handed over in the redirect's fragment (never sent to a server by the browser) and
 *   kept by the script in localStorage, which is per origin, port included. Every data request and
 *   action sends it in a header; that header is also the page's CSRF token.
 *
 * Sessions live in memory: a daemon restart or a rotated access token ends them all.
 */
export class PageSessions {
  private readonly codes = new Map<string, number>();
  private readonly sessions = new Map<string, PageSession>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A fresh one-time login code, for /login?code=… */
  issueCode(): { code: string; expiresInMs: number } {
    this.expire();
    const code = secret();
    this.codes.set(digest(code), this.now() + LOGIN_CODE_TTL_MS);
    while (this.codes.size > MAX_CODES) this.codes.delete(this.codes.keys().next().value!);
    return { code, expiresInMs: LOGIN_CODE_TTL_MS };
  }

  /** Spends `code`: a new session's cookie value and page key, or undefined if it is unknown, used or old. */
  redeem(code: string): { cookie: string; key: string } | undefined {
    this.expire();
    const id = digest(code);
    const expiresAt = this.codes.get(id);
    this.codes.delete(id);
    if (expiresAt === undefined || this.now() > expiresAt) return undefined;
    const cookie = secret();
    const key = secret();
    this.sessions.set(digest(cookie), { key: Buffer.from(key), lastSeen: this.now() });
    while (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    return { cookie, key };
  }

  /** The cookie's name: per port, so two daemons on one host (cookies ignore ports) keep theirs apart. */
  cookieName(req: Pick<Request, 'socket'>): string {
    return `mcpb_page_${req.socket.localPort ?? 0}`;
  }

  /** Whether the request's cookie names a live session (what a navigation to the page can carry). */
  hasSession(req: Pick<Request, 'headers' | 'socket'>): boolean {
    return this.session(req) !== undefined;
  }

  /**
   * Whether the request may read the page's data or act: a live session cookie, its page key in
   * PAGE_KEY_HEADER, and nothing saying it comes from another origin (and for anything but GET,
   * something saying it comes from this one).
   */
  admits(req: Pick<Request, 'headers' | 'socket' | 'method'>): boolean {
    const session = this.session(req);
    if (!session || !sameOrigin(req, req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const presented = req.headers[PAGE_KEY_HEADER];
    if (typeof presented !== 'string') return false;
    const bytes = Buffer.from(presented);
    if (bytes.length !== session.key.length || !timingSafeEqual(bytes, session.key)) return false;
    session.lastSeen = this.now();
    return true;
  }

  /** Ends the request's session (the page's "log out"). */
  end(req: Pick<Request, 'headers' | 'socket'>): void {
    for (const value of cookieValues(req.headers.cookie, this.cookieName(req)))
      this.sessions.delete(digest(value));
  }

  /** Ends every session and forgets every code (the access token was rotated). */
  endAll(): void {
    this.sessions.clear();
    this.codes.clear();
  }

  /** Any cookie of that name that is a live session: a page on another port can add junk ones. */
  private session(req: Pick<Request, 'headers' | 'socket'>): PageSession | undefined {
    for (const value of cookieValues(req.headers.cookie, this.cookieName(req))) {
      const session = this.sessions.get(digest(value));
      if (!session) continue;
      if (this.now() - session.lastSeen > SESSION_IDLE_MS) {
        this.sessions.delete(digest(value));
        continue;
      }
      return session;
    }
    return undefined;
  }

  private expire(): void {
    const now = this.now();
    for (const [id, expiresAt] of this.codes) if (now > expiresAt) this.codes.delete(id);
    for (const [id, session] of this.sessions) {
      if (now - session.lastSeen > SESSION_IDLE_MS) this.sessions.delete(id);
    }
  }
}

/**
 * No sign of another origin: Sec-Fetch-Site, when sent, is `same-origin`, and Origin, when sent,
 * is this listener's own (`http://` + Host; the host guard already vouched for Host). `positive`:
 * one of the two must also be there (every current browser sends both on a POST).
 */
export function sameOrigin(req: Pick<Request, 'headers'>, positive: boolean): boolean {
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  if (site !== undefined && site !== 'same-origin') return false;
  if (origin !== undefined && origin.toLowerCase() !== `http://${req.headers.host ?? ''}`.toLowerCase()) {
    return false;
  }
  return !positive || site === 'same-origin' || origin !== undefined;
}

function cookieValues(header: string | undefined, name: string): string[] {
  const values: string[] = [];
  for (const part of header?.split(';') ?? []) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) values.push(part.slice(eq + 1).trim());
  }
  return values;
}
