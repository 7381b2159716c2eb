import express, { type Request, type Response, type Router } from 'express';
import type { LoginFlows } from '../auth/login.js';
import { CALLBACK_PATH, type HttpUpstreamConfig } from '../config/schema.js';
import { BridgeError, errorMessage, isBridgeError } from '../errors.js';
import type { Logger } from '../log.js';

export { CALLBACK_PATH };

/** The redirect URI of a bridge listening on `port` (loopback, so it works without a tunnel). */
export function loopbackRedirectUri(host: string, port: number): string {
  const name = host === '::1' || host === '[::1]' ? '[::1]' : '127.0.0.1';
  return `http://${name}:${port}${CALLBACK_PATH}`;
}

export interface OAuthRoutesOptions {
  readonly flows: LoginFlows;
  readonly logger: Logger;
  /** The OAuth-capable upstream of that name, or an error saying why it cannot log in. */
  readonly upstream: (name: string) => HttpUpstreamConfig | BridgeError;
  readonly redirectUri: (config: HttpUpstreamConfig) => string;
}

/**
 * The login API used by `mcp-bridge auth` (POST /oauth/login, GET /oauth/login/:state) and the page
 * the browser returns to (GET /oauth/callback). The API refuses any request that carries an Origin
 * header: only a local command line, never a web page, may start a login.
 */
export function oauthRoutes(options: OAuthRoutesOptions): Router {
  const router = express.Router();
  router.get(CALLBACK_PATH, callbackHandler(options.flows, options.logger));

  const cliOnly = (req: Request, res: Response, next: () => void) => {
    if (req.headers.origin !== undefined) {
      res.status(403).json({ error: 'the login API is for the mcp-bridge command line only' });
      return;
    }
    next();
  };
  router.post('/oauth/login', cliOnly, express.json({ limit: 4096 }), async (req: Request, res: Response) => {
    const name = typeof req.body?.upstream === 'string' ? req.body.upstream : '';
    const { status, body } = await beginLogin(options, name);
    res.status(status).json(body);
  });
  router.get('/oauth/login/:state', cliOnly, (req: Request, res: Response) => {
    const status = options.flows.status(String(req.params.state));
    if (!status) {
      res.status(404).json({ error: 'no such login (it may have expired after 10 minutes)' });
      return;
    }
    res.json(status);
  });
  return router;
}

/** The answer to "start a login for `name`": the authorization URL to open, or why not. */
export type LoginStart =
  | {
      readonly status: 200;
      readonly body: { upstream: string; authorizationUrl: string; state: string; issuer: string };
    }
  | { readonly status: 404 | 502; readonly body: { error: string; code: string } };

/** Starts a login (POST /oauth/login for `mcp-bridge auth`, and the status page's "Log in"). */
export async function beginLogin(options: OAuthRoutesOptions, name: string): Promise<LoginStart> {
  const config = options.upstream(name);
  if (config instanceof BridgeError)
    return { status: 404, body: { error: config.message, code: config.code } };
  try {
    const { url, state, issuer } = await options.flows.begin(config, options.redirectUri(config));
    return { status: 200, body: { upstream: name, authorizationUrl: url, state, issuer } };
  } catch (error) {
    return {
      status: 502,
      body: { error: errorMessage(error), code: isBridgeError(error) ? error.code : 'LOGIN_FAILED' },
    };
  }
}

/** GET /oauth/callback: finishes the login and tells the person, in the browser, how it went. */
export function callbackHandler(flows: LoginFlows, logger: Logger) {
  return async (req: Request, res: Response) => {
    const params = new URLSearchParams(req.url.slice(req.url.indexOf('?') + 1));
    try {
      const { upstream } = await flows.complete(params);
      res
        .status(200)
        .type('html')
        .send(page('Logged in', `mcp-bridge is now logged in to "${upstream}". You can close this tab.`));
    } catch (error) {
      logger.warn({ err: errorMessage(error) }, 'OAuth callback failed');
      res
        .status(400)
        .type('html')
        .send(page('Login failed', `mcp-bridge could not finish the login: ${errorMessage(error)}`));
    }
  };
}

function page(title: string, message: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mcp-bridge: ${escapeHtml(title)}</title></head><body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></body></html>`;
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}
