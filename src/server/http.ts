import type { RequestListener } from 'node:http';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { accessGuard, passesAccessToken } from '../access/access-guard.js';
import { type AccessToken, challengeProof } from '../access/access-token.js';
import type { Catalog } from '../catalog/catalog.js';
import type { BridgeConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
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
import { RefusalLog } from './refusal.js';
import type { SessionManager } from './session.js';
import { buildStatus, type PublicStatus } from './status.js';

export interface HttpAppOptions {
  readonly config: Pick<
    BridgeConfig,
    'mcpPath' | 'allowedOrigins' | 'allowedHosts' | 'maxBodyBytes' | 'maxBodyBytesInFlight' | 'warnings'
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
  /** `mcp-bridge connectors`: list and revoke the public listener's connectors. */
  readonly connectors?: Router | undefined;
  /** The public listener, for /status (undefined: there is none). */
  readonly publicStatus?: (() => PublicStatus | undefined) | undefined;
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
  app.get('/status', (_req, res) => {
    res.json(
      buildStatus({
        registry,
        sessions: sessions.size,
        startedAt: options.startedAt,
        clashes: options.catalog?.clashes,
        warnings: options.config.warnings,
        public: options.publicStatus?.(),
      }),
    );
  });

  if (options.oauth) app.use(options.oauth);
  if (options.connectors) app.use(options.connectors);

  const bodies = new BodyBudget(
    httpLimits(config).maxBodyBytesInFlight,
    config.maxBodyBytes,
    new RefusalLog(logger),
  );
  app.all(
    config.mcpPath,
    bodies.reserve,
    express.json({ limit: config.maxBodyBytes, type: ['application/json', 'application/*+json'] }),
    refuseDeepJson,
    async (req: Request, res: Response) => {
      try {
        await sessions.handle(req, res);
      } catch (error) {
        logger.error({ err: errorMessage(error) }, 'unexpected error while handling an MCP request');
        sendHttpError(res, 'INTERNAL', `Internal error: ${errorMessage(error)}`);
      }
    },
  );

  app.get('/', (_req, res) => {
    res.type('text/plain').send(`mcp-bridge ${VERSION}\nMCP endpoint: ${config.mcpPath}\nStatus: /status\n`);
  });

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
