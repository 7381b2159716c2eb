import { describe, expect, it } from 'vitest';
import {
  LOGIN_CODE_TTL_MS,
  PAGE_KEY_HEADER,
  PageSessions,
  sameOrigin,
} from '../../src/server/page/page-sessions.js';

const PORT = 8769;
const HOST = `127.0.0.1:${PORT}`;

/** A request as express hands it to the session checks. */
function request(headers: Record<string, string>, method = 'GET') {
  return { headers: { host: HOST, ...headers }, socket: { localPort: PORT }, method } as never;
}

function clock(start = 1_000_000) {
  const time = { now: start };
  return { time, sessions: new PageSessions(() => time.now) };
}

function login(sessions: PageSessions) {
  const { code } = sessions.issueCode();
  const session = sessions.redeem(code)!;
  const cookie = `${sessions.cookieName(request({}))}=${session.cookie}`;
  return { code, cookie, key: session.key };
}

describe('PageSessions', () => {
  it('trades a code once, within 60 s, for a cookie and a page key that are not the code', () => {
    const { time, sessions } = clock();
    const { code } = sessions.issueCode();
    const session = sessions.redeem(code);
    expect(session).toBeDefined();
    expect(new Set([code, session!.cookie, session!.key]).size).toBe(3);
    expect(sessions.redeem(code)).toBeUndefined();

    const late = sessions.issueCode().code;
    time.now += LOGIN_CODE_TTL_MS + 1;
    expect(sessions.redeem(late)).toBeUndefined();
    expect(sessions.redeem('made-up')).toBeUndefined();
  });

  it('keeps at most 16 codes waiting: the oldest goes first', () => {
    const { sessions } = clock();
    const codes = Array.from({ length: 17 }, () => sessions.issueCode().code);
    expect(sessions.redeem(codes[0]!)).toBeUndefined();
    expect(sessions.redeem(codes[16]!)).toBeDefined();
  });

  it('admits data requests with the cookie and the page key, from the page itself only', () => {
    const { sessions } = clock();
    const { cookie, key } = login(sessions);
    const own = { cookie, [PAGE_KEY_HEADER]: key };
    expect(sessions.hasSession(request({ cookie }))).toBe(true);
    expect(sessions.admits(request(own))).toBe(true);
    expect(sessions.admits(request({ ...own, 'sec-fetch-site': 'same-origin' }))).toBe(true);
    // The cookie alone, a wrong key, or a key without the cookie: no.
    expect(sessions.admits(request({ cookie }))).toBe(false);
    expect(sessions.admits(request({ cookie, [PAGE_KEY_HEADER]: `${key.slice(0, -1)}A` }))).toBe(false);
    expect(sessions.admits(request({ [PAGE_KEY_HEADER]: key }))).toBe(false);
    // Another port of the same host is another origin (and the cookie is sent there too).
    expect(sessions.admits(request({ ...own, origin: 'http://127.0.0.1:3000' }))).toBe(false);
    expect(sessions.admits(request({ ...own, 'sec-fetch-site': 'same-site' }))).toBe(false);
    expect(sessions.admits(request({ ...own, 'sec-fetch-site': 'cross-site' }))).toBe(false);
    // An action must say where it comes from.
    expect(sessions.admits(request(own, 'POST'))).toBe(false);
    expect(sessions.admits(request({ ...own, origin: `http://${HOST}` }, 'POST'))).toBe(true);
    expect(sessions.admits(request({ ...own, 'sec-fetch-site': 'same-origin' }, 'POST'))).toBe(true);
  });

  it('ends a session when it is logged out, idle for 12 h, or when all end (token rotated)', () => {
    const { time, sessions } = clock();
    const a = login(sessions);
    const b = login(sessions);
    sessions.end(request({ cookie: a.cookie }));
    expect(sessions.hasSession(request({ cookie: a.cookie }))).toBe(false);
    expect(sessions.hasSession(request({ cookie: b.cookie }))).toBe(true);

    time.now += 12 * 60 * 60_000 - 1;
    expect(sessions.admits(request({ cookie: b.cookie, [PAGE_KEY_HEADER]: b.key }))).toBe(true);
    time.now += 12 * 60 * 60_000 - 1;
    expect(sessions.hasSession(request({ cookie: b.cookie }))).toBe(true);
    time.now += 12 * 60 * 60_000 + 1;
    expect(sessions.hasSession(request({ cookie: b.cookie }))).toBe(false);

    const c = login(sessions);
    const pending = sessions.issueCode().code;
    sessions.endAll();
    expect(sessions.hasSession(request({ cookie: c.cookie }))).toBe(false);
    expect(sessions.redeem(pending)).toBeUndefined();
  });

  it('names its cookie after the port: two daemons on one host keep their own', () => {
    const { sessions } = clock();
    expect(sessions.cookieName(request({}))).toBe(`mcpb_page_${PORT}`);
    const { cookie } = login(sessions);
    const other = { headers: { cookie: cookie.replace(`_${PORT}=`, '_9999=') }, socket: { localPort: PORT } };
    expect(sessions.hasSession(other as never)).toBe(false);
  });
});

describe('sameOrigin', () => {
  const headers = (h: Record<string, string>) => ({ headers: { host: HOST, ...h } }) as never;
  it('refuses any sign of another origin, and wants a positive one when asked', () => {
    expect(sameOrigin(headers({}), false)).toBe(true);
    expect(sameOrigin(headers({}), true)).toBe(false);
    expect(sameOrigin(headers({ origin: `HTTP://${HOST}` }), true)).toBe(true);
    expect(sameOrigin(headers({ origin: `http://localhost:${PORT}` }), false)).toBe(false);
    expect(sameOrigin(headers({ origin: 'null' }), false)).toBe(false);
    expect(sameOrigin(headers({ 'sec-fetch-site': 'none' }), false)).toBe(false);
  });
});
