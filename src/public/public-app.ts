import type { IncomingMessage, RequestListener } from 'node:http';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import type { BridgeConfig, PublicConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { answerBodyError, BodyBudget } from '../server/body.js';
import { withFastPath } from '../server/fast-path.js';
import {
  corsForAllowedOrigins,
  DEFAULT_ALLOWED_ORIGINS,
  hostAllowed,
  hostGuard,
  originGuard,
} from '../server/guards.js';
import { mcpEndpoint } from '../server/http.js';
import { sendHttpError } from '../server/http-error.js';
import { httpLimits } from '../server/limits.js';
import { RefusalLog } from '../server/refusal.js';
import type { SessionManager } from '../server/session.js';
import type { BearerCheck, BearerResult } from './bearer.js';
import { pageHeaders, renderMessagePage } from './consent-page.js';
import { CONSENT_PATH, MCP_SCOPE } from './provider.js';

export interface PublicAppOptions {
  readonly config: Pick<
    BridgeConfig,
    'mcpPath' | 'allowedOrigins' | 'allowedHosts' | 'maxBodyBytes' | 'maxBodyBytesInFlight'
  >;
  readonly public: PublicConfig;
  readonly resource: string;
  readonly provider: Provider;
  readonly bearer: BearerCheck;
  readonly sessions: SessionManager;
  readonly consent: Router;
  readonly logger: Logger;
  /** A request passed the bearer check (its connection counts as authenticated). */
  readonly onAuthenticated?: ((req: IncomingMessage) => void) | undefined;
}

/** The grant a request's bearer token was issued under; sessions belong to it. */
const grants = new WeakMap<IncomingMessage, string>();

/** Whose request this is, for SessionManagerOptions.ownerOf. */
export function grantOf(req: IncomingMessage): string | undefined {
  return grants.get(req);
}

/**
 * The public listener: what a tunnel forwards to. `/mcp` needs a bearer token from the bridge's
 * own authorization server (whatever the Host: tunnels rewrite it); the protected resource
 * metadata, the consent page and oidc-provider's endpoints are open. Nothing of the loopback
 * listener (its access token, /status, logins of upstreams) is reachable here.
 */
export function createPublicApp(options: PublicAppOptions): RequestListener {
  const { config, provider, bearer, sessions, logger, resource } = options;
  const issuer = new URL(options.public.url);
  const origins = [...DEFAULT_ALLOWED_ORIGINS, issuer.origin, ...config.allowedOrigins];
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // The public host, and loopback names for tunnels that rewrite Host to localhost.
  app.use(hostGuard([issuer.hostname, ...config.allowedHosts]));

  const metadata = {
    resource,
    authorization_servers: [options.public.url],
    scopes_supported: [MCP_SCOPE],
    bearer_methods_supported: ['header'],
    resource_name: 'mcp-bridge',
  };
  for (const path of [
    `/.well-known/oauth-protected-resource${config.mcpPath}`,
    '/.well-known/oauth-protected-resource',
  ]) {
    app.get(path, corsForAllowedOrigins(['*']), (_req, res) => {
      res.set('Cache-Control', 'max-age=300').json(metadata);
    });
  }

  const passes = (req: IncomingMessage): BearerResult => {
    const result = bearer.check(req.headers.authorization);
    if (result.ok) {
      grants.set(req, result.grantId);
      options.onAuthenticated?.(req);
    }
    return result;
  };
  const bodies = new BodyBudget(
    httpLimits(config).maxBodyBytesInFlight,
    config.maxBodyBytes,
    new RefusalLog(logger),
  );
  app.all(
    config.mcpPath,
    originGuard(origins),
    corsForAllowedOrigins(origins),
    (req: Request, res: Response, next: NextFunction) => {
      if (req.method === 'OPTIONS') return next();
      const result = grants.has(req) ? undefined : passes(req);
      if (result && !result.ok) {
        bearer.refuse(res, result);
        return;
      }
      next();
    },
    ...mcpEndpoint(bodies, config.maxBodyBytes, sessions, logger),
  );
  app.use(options.consent);

  const oidc = provider.callback();
  app.use((req: Request, res: Response) => {
    // RFC 8414's name for the document oidc-provider serves as OpenID discovery.
    if (req.path === '/.well-known/oauth-authorization-server') req.url = '/.well-known/openid-configuration';
    // A request without `scope` asks for the MCP endpoint's (oidc-provider would grant nothing and
    // answer access_denied after the owner consented): clients that skip scopes still connect.
    if (req.path === '/authorize' && req.method === 'GET') {
      const url = new URL(req.url, 'http://x');
      if (!url.searchParams.has('scope')) {
        url.searchParams.set('scope', MCP_SCOPE);
        req.url = `${url.pathname}${url.search}`;
      }
    }
    oidc(req, res);
  });
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    // The consent form's own parser refused its body: a page for the browser, not JSON-RPC.
    if (req.path.startsWith(CONSENT_PATH)) {
      const status = (error as { status?: unknown }).status;
      res
        .status(typeof status === 'number' && status >= 400 && status < 500 ? status : 400)
        .set(pageHeaders([]))
        .send(renderMessagePage({ title: 'Refused', message: 'This form was not the one the page served.' }));
      return;
    }
    if (answerBodyError(error, res, config.maxBodyBytes)) return;
    logger.error({ err: errorMessage(error) }, 'unexpected HTTP error on the public listener');
    sendHttpError(res, 'INTERNAL', `Internal error: ${errorMessage(error)}`);
  });

  const served = withFastPath(
    {
      mcpPath: config.mcpPath,
      maxBodyBytes: config.maxBodyBytes,
      bodies,
      hostAllowed: hostAllowed([issuer.hostname, ...config.allowedHosts]),
      authorized: (req) => passes(req).ok,
      session: (id, req) => sessions.fastSession(id, grants.get(req)),
    },
    app,
  );
  const proto = issuer.protocol.slice(0, -1);
  return (req, res) => {
    // The tunnel ended TLS: oidc-provider (provider.proxy) must see the scheme and host of the
    // issuer, never what a client claims, so its cookies are Secure behind https.
    req.headers['x-forwarded-proto'] = proto;
    req.headers['x-forwarded-host'] = issuer.host;
    served(req, res);
  };
}
