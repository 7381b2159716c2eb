import { readFileSync } from 'node:fs';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { PageAccess } from '../../access/access-guard.js';
import { sendHttpError } from '../http-error.js';
import type { LoginStart } from '../oauth-routes.js';
import { errorsDocPage } from './errors-doc.js';
import { type PageEventSource, streamPageEvents } from './page-events.js';
import { getInPage, pageHeaders, shellPage } from './page-html.js';
import type { PageSessions } from './page-sessions.js';

/** The page's script and stylesheet: plain files in page/ beside src/ and dist/ (no build step). */
const ASSETS = new URL('../../../page/', import.meta.url);
const SCRIPTS = ['status.js', 'dom.js', 'sections.js', 'upstream-card.js'];
const STYLES = ['theme.css', 'status.css'];
const STATIC: Record<string, { file: string; type: string }> = Object.fromEntries([
  ...SCRIPTS.map((file) => [`/page/${file}`, { file, type: 'text/javascript; charset=utf-8' }]),
  ...STYLES.map((file) => [`/page/${file}`, { file, type: 'text/css; charset=utf-8' }]),
]);
/** What needs no session: the login link, the static files, the error docs (public text). */
const OPEN = new Set(['/login', '/docs/errors', ...Object.keys(STATIC)]);
/** The page's data and actions: exact paths, so no other route (an mcpPath under /page/) is reached. */
const PAGE_ROUTES = new Set([
  '/page/data',
  '/page/events',
  '/page/actions/reconnect',
  '/page/actions/login',
  '/page/actions/logout',
]);

export interface PageRoutesOptions extends PageEventSource {
  readonly sessions: PageSessions;
  /** The request passed the access token (the CLI, a script): no page session needed then. */
  readonly viaToken: (req: Request) => boolean;
  /** Reconnect an upstream now; false: no such upstream, or it is connecting anyway. */
  readonly reconnect: (name: string) => 'done' | 'busy' | 'unknown';
  /** Starts an OAuth login; absent when the daemon has no login API. */
  readonly login?: ((name: string) => Promise<LoginStart>) | undefined;
}

/** What the access guard asks of the page (see PageAccess). */
export function pageAccess(sessions: PageSessions): PageAccess {
  return {
    isOpen: (method, path) => (method === 'GET' || method === 'HEAD') && OPEN.has(path),
    admits: (req) => PAGE_ROUTES.has(req.path) && sessions.admits(req),
    // A navigation to the page carries only the cookie: it gets the shell, which holds nothing
    // (and does not count as the owner's connection: other ports of 127.0.0.1 get the cookie too).
    shell: (req) => req.method === 'GET' && req.path === '/' && sessions.hasSession(req),
    refuse: (req, res) => {
      if (req.method === 'GET' && req.path === '/' && req.accepts(['json', 'html']) === 'html') {
        pageHeaders(res).status(401).type('html').send(getInPage());
        return true;
      }
      if (PAGE_ROUTES.has(req.path) && sessions.hasSession(req)) {
        refuseForeign(res);
        return true;
      }
      return false;
    },
  };
}

function refuseForeign(res: Response): void {
  sendHttpError(
    res,
    'PAGE_REQUEST_FORBIDDEN',
    'Forbidden: the status page answers its own page only (same origin, with its page key); reload the page, or run "mcp-bridge open" again',
  );
}

/**
 * The status page (GET /), its login (`mcp-bridge open` → POST /login/code → GET /login?code=…),
 * its data (/page/data, /page/events) and its actions (POST /page/actions/*). The access guard
 * lets a page session through to these routes only; they check it again, since with
 * `"auth": "none"` there is no guard.
 */
export function pageRoutes(options: PageRoutesOptions): Router {
  const { sessions } = options;
  const router = express.Router();

  router.get('/', (req, res) => {
    pageHeaders(res, sessions.hasSession(req) ? 'shell' : 'plain')
      .type('html')
      .send(sessions.hasSession(req) ? shellPage() : getInPage());
  });

  // The CLI's half of the login: never a web page's (they send Origin), and only with the token.
  router.post('/login/code', (req, res) => {
    if (req.headers.origin !== undefined || (!options.viaToken(req) && options.tokenRequired)) {
      sendHttpError(res, 'PAGE_REQUEST_FORBIDDEN', 'Forbidden: login codes are for "mcp-bridge open" only');
      return;
    }
    const { code, expiresInMs } = sessions.issueCode();
    res.setHeader('Cache-Control', 'no-store');
    res.json({ path: `/login?code=${encodeURIComponent(code)}`, expiresInMs });
  });

  router.get('/login', (req, res) => {
    const code = typeof req.query.code === 'string' ? req.query.code : '';
    const session = code ? sessions.redeem(code) : undefined;
    pageHeaders(res);
    if (!session) {
      res
        .status(401)
        .type('html')
        .send(getInPage('That login link was used already or is more than 60 seconds old. Get a new one:'));
      return;
    }
    res.cookie(sessions.cookieName(req), session.cookie, { httpOnly: true, sameSite: 'strict', path: '/' });
    // The code leaves the address bar with this redirect; the page key rides in the fragment,
    // which the browser keeps to itself, and the page's script takes it out of there at once.
    res.redirect(303, `/#key=${session.key}`);
  });

  for (const [path, asset] of Object.entries(STATIC)) {
    let text: string | undefined;
    router.get(path, (_req, res) => {
      text ??= readFileSync(new URL(asset.file, ASSETS), 'utf8');
      pageHeaders(res, 'none').type(asset.type).send(text);
    });
  }
  router.get('/docs/errors', (_req, res) => {
    pageHeaders(res).type('html').send(errorsDocPage());
  });

  const pageOnly = (req: Request, res: Response, next: NextFunction) => {
    if (sessions.admits(req) || options.viaToken(req)) return next();
    if (sessions.hasSession(req)) return refuseForeign(res);
    sendHttpError(res, 'ACCESS_TOKEN_REQUIRED', 'The status page needs a login: run "mcp-bridge open"');
  };
  const json = express.json({ limit: 4096 });
  const upstreamOf = (req: Request) => (typeof req.body?.upstream === 'string' ? req.body.upstream : '');

  router.get('/page/data', pageOnly, (req, res) => {
    pageHeaders(res, 'none').json(options.build(req));
  });
  router.get('/page/events', pageOnly, (req, res) => streamPageEvents(options, req, res));

  router.post('/page/actions/reconnect', pageOnly, json, (req, res) => {
    const name = upstreamOf(req);
    const outcome = options.reconnect(name);
    pageHeaders(res, 'none');
    if (outcome === 'unknown') res.status(404).json({ error: `no upstream named "${name}"` });
    else res.json({ upstream: name, reconnecting: outcome === 'done' });
  });
  router.post('/page/actions/login', pageOnly, json, async (req, res) => {
    pageHeaders(res, 'none');
    if (!options.login) {
      res.status(404).json({ error: 'this daemon has no OAuth login' });
      return;
    }
    const { status, body } = await options.login(upstreamOf(req));
    res.status(status).json(status === 200 ? { authorizationUrl: body.authorizationUrl } : body);
  });
  router.post('/page/actions/logout', pageOnly, (req, res) => {
    sessions.end(req);
    res.clearCookie(sessions.cookieName(req), { httpOnly: true, sameSite: 'strict', path: '/' });
    pageHeaders(res, 'none').json({ ok: true });
  });
  return router;
}
