import type { RequestListener } from 'node:http';
import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
  type Router,
} from 'express';
import { accessGuard, passesAccessToken } from '../access/access-guard.js';
import { type AccessToken, challengeProof } from '../access/access-token.js';
import type { TokenInfo } from '../auth/oauth-manager.js';
import type { Catalog } from '../catalog/catalog.js';
import { localDaemonBase } from '../config/paths.js';
import type { BridgeConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { BridgeMetrics } from '../metrics/metrics.js';
import type { ConnectorInfo } from '../public/oauth-store.js';
import type { UpstreamRegistry } from '../upstream/registry.js';
import { VERSION } from '../version.js';
import { answerBodyError, BodyBudget, refuseDeepJson } from './body.js';
import { withFastPath } from './fast-path.js';
import {
  corsForAllowedOrigins,
  DEFAULT_ALLOWED_ORIGINS,
  hostAllowed,
  hostGuard,
  originGuard,
} from './guards.js';
import { sendHttpError } from './http-error.js';
import { httpLimits } from './limits.js';
import type { LoginStart } from './oauth-routes.js';
import { buildPageData } from './page/page-data.js';
import { pageAccess, pageRoutes } from './page/page-routes.js';
import type { PageSessions } from './page/page-sessions.js';
import { RefusalLog } from './refusal.js';
import type { SessionManager } from './session.js';
import { buildStatus, type PublicStatus } from './status.js';

export interface HttpAppOptions {
  readonly config: Pick<
    BridgeConfig,
    | 'mcpPath'
    | 'host'
    | 'allowedOrigins'
    | 'allowedHosts'
    | 'maxBodyBytes'
    | 'maxBodyBytesInFlight'
    | 'warnings'
  >;
  readonly sessions: SessionManager;
  readonly registry: UpstreamRegistry;
  readonly logger: Logger;
  /** Epoch ms the daemon started, for /status. */
  readonly startedAt: number;
  /** For the name clashes in /status. */
  readonly catalog?: Catalog | undefined;
  /** The login API and the OAuth callback page. */
  readonly oauth?: Router | undefined;
  /** The local access token every route but /healthz and the OAuth callback needs; absent with `"auth": "none"`. */
  readonly accessToken?: AccessToken | undefined;
  /** A request passed the access guard (its connection is the owner's). */
  readonly onAuthenticated?: ((req: Request) => void) | undefined;
  /** The config's warnings as reloaded (default: those of `config`, read at start). */
  readonly warnings?: (() => readonly string[] | undefined) | undefined;
  /** `mcp-bridge connectors`: list and revoke the public listener's connectors. */
  readonly connectors?: Router | undefined;
  /** The public listener, for /status (undefined: there is none). */
  readonly publicStatus?: (() => PublicStatus | undefined) | undefined;
  /** GET /metrics (Prometheus text). */
  readonly metrics?: BridgeMetrics | undefined;
  /** The OAuth upstreams' token times, for /status and the page (never a token). */
  readonly tokens?: (() => readonly TokenInfo[]) | undefined;
  /** The status page at GET / (absent: a line of plain text there). */
  readonly page?: StatusPageOptions | undefined;
  /** The activity log's newest entries (`activity.recent(50)`), for the status page. */
  readonly recentCalls?: (() => readonly unknown[]) | undefined;
}

export interface StatusPageOptions {
  /** Its logins; the daemon ends them when the access token is rotated. */
  readonly sessions: PageSessions;
  /** Its "Log in" button (the login API's own start). */
  readonly login?: ((name: string) => Promise<LoginStart>) | undefined;
  /** The public listener's connectors, when there is one. */
  readonly connectors?: (() => readonly ConnectorInfo[] | undefined) | undefined;
}

/**
 * The daemon's HTTP surface: guards first, then /mcp, /healthz and /status; a session's tool calls
 * take the hot path in front of it (`fast-path.ts`) when nothing about them needs express.
 */
export function createHttpApp(options: HttpAppOptions): RequestListener {
  const { config, sessions, registry, logger } = options;
  const origins = [...DEFAULT_ALLOWED_ORIGINS, ...config.allowedOrigins];
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use(hostGuard(config.allowedHosts));
  app.use(originGuard(origins));
  app.use(corsForAllowedOrigins(origins));
  const { accessToken } = options;
  const guardOptions = {
    mcpPath: config.mcpPath,
    knownSession: (id: string) => sessions.has(id),
    onAuthenticated: options.onAuthenticated,
    page: options.page ? pageAccess(options.page.sessions) : undefined,
  };
  if (accessToken) app.use(accessGuard(accessToken, guardOptions));

  // `?challenge=` lets the CLI and the shim check that this is our daemon before they send the token.
  app.get('/healthz', (req, res) => {
    const challenge = typeof req.query.challenge === 'string' ? req.query.challenge.slice(0, 200) : undefined;
    const auth = accessToken ? 'token' : 'none';
    const proof =
      accessToken && challenge
        ? challengeProof(accessToken.current(), req.socket.localPort ?? 0, challenge)
        : undefined;
    res.json({ ok: true, version: VERSION, auth, ...(proof ? { proof } : {}) });
  });
  const status = () =>
    buildStatus({
      registry,
      sessions: sessions.size,
      startedAt: options.startedAt,
      clashes: options.catalog?.clashes,
      warnings: options.warnings?.() ?? options.config.warnings,
      public: options.publicStatus?.(),
      tokens: options.tokens?.(),
    });
  app.get('/status', (_req, res) => {
    res.json(status());
  });
  const { metrics } = options;
  if (metrics) {
    app.get('/metrics', async (_req, res) => {
      res.setHeader('Cache-Control', 'no-store');
      res.type(metrics.contentType).send(await metrics.render());
    });
  }
  if (options.page) {
    const { page } = options;
    const data = {
      status,
      clients: () => sessions.clients(),
      connectors: page.connectors,
      recentCalls: options.recentCalls,
      tokenRequired: accessToken !== undefined,
    };
    app.use(
      pageRoutes({
        sessions: page.sessions,
        tokenRequired: accessToken !== undefined,
        viaToken: (req) => accessToken !== undefined && passesAccessToken(accessToken, guardOptions, req),
        build: (req) =>
          buildPageData(data, `${localDaemonBase(config.host, req.socket.localPort ?? 0)}${config.mcpPath}`),
        onSnapshot: (listener) => registry.onSnapshot(listener),
        reconnect: (name) => {
          const upstream = registry.get(name);
          if (!upstream) return 'unknown';
          return upstream.reconnectNow() ? 'done' : 'busy';
        },
        login: page.login,
      }),
    );
  }

  if (options.oauth) app.use(options.oauth);
  if (options.connectors) app.use(options.connectors);

  const bodies = new BodyBudget(
    httpLimits(config).maxBodyBytesInFlight,
    config.maxBodyBytes,
    new RefusalLog(logger),
  );
  app.all(config.mcpPath, ...mcpEndpoint(bodies, config.maxBodyBytes, sessions, logger));

  if (!options.page) {
    app.get('/', (_req, res) => {
      res
        .type('text/plain')
        .send(`mcp-bridge ${VERSION}\nMCP endpoint: ${config.mcpPath}\nStatus: /status\n`);
    });
  }

  app.use((req: Request, res: Response) => {
    sendHttpError(
      res,
      'ROUTE_NOT_FOUND',
      `Not found: ${req.method} ${req.path} (the MCP endpoint is ${config.mcpPath})`,
    );
  });

  // Express's default error page is HTML; body-parser failures must be JSON-RPC errors instead.
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (answerBodyError(error, res, config.maxBodyBytes)) return;
    logger.error({ err: errorMessage(error) }, 'unexpected HTTP error');
    sendHttpError(res, 'INTERNAL', `Internal error: ${errorMessage(error)}`);
  });

  return withFastPath(
    {
      mcpPath: config.mcpPath,
      maxBodyBytes: config.maxBodyBytes,
      bodies,
      hostAllowed: hostAllowed(config.allowedHosts),
      authorized: accessToken
        ? (req) =>
            passesAccessToken(accessToken, guardOptions, { headers: req.headers, path: config.mcpPath })
        : undefined,
      session: (id) => sessions.fastSession(id),
    },
    app,
  );
}

/**
 * The MCP endpoint after its guards, on either listener: the body budget, the JSON body (depth
 * checked), then the sessions; an unexpected throw is a JSON-RPC 500, never an HTML page.
 */
export function mcpEndpoint(
  bodies: BodyBudget,
  maxBodyBytes: number,
  sessions: SessionManager,
  logger: Logger,
): RequestHandler[] {
  return [
    bodies.reserve,
    express.json({ limit: maxBodyBytes, type: ['application/json', 'application/*+json'] }),
    refuseDeepJson,
    async (req: Request, res: Response) => {
      try {
        await sessions.handle(req, res);
      } catch (error) {
        logger.error({ err: errorMessage(error) }, 'unexpected error while handling an MCP request');
        sendHttpError(res, 'INTERNAL', `Internal error: ${errorMessage(error)}`);
      }
    },
  ];
}
