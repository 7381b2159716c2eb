import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Catalog } from '../catalog/catalog.js';
import type { BridgeConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { UpstreamRegistry } from '../upstream/registry.js';
import { VERSION } from '../version.js';
import { corsForAllowedOrigins, DEFAULT_ALLOWED_ORIGINS, hostGuard, originGuard } from './guards.js';
import { sendJsonRpcError } from './json-rpc-error.js';
import type { SessionManager } from './session.js';
import { buildStatus } from './status.js';

export interface HttpAppOptions {
  readonly config: Pick<BridgeConfig, 'mcpPath' | 'allowedOrigins' | 'allowedHosts' | 'maxBodyBytes'>;
  readonly sessions: SessionManager;
  readonly registry: UpstreamRegistry;
  readonly logger: Logger;
  /** Epoch ms the daemon started, for /status. */
  readonly startedAt: number;
  /** For the name clashes in /status. */
  readonly catalog?: Catalog | undefined;
  /** The login API and the OAuth callback page. */
  readonly oauth?: Router | undefined;
}

/** The daemon's HTTP surface: guards first, then /mcp, /healthz and /status. */
export function createHttpApp(options: HttpAppOptions): express.Express {
  const { config, sessions, registry, logger } = options;
  const origins = [...DEFAULT_ALLOWED_ORIGINS, ...config.allowedOrigins];
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use(hostGuard(config.allowedHosts));
  app.use(originGuard(origins));
  app.use(corsForAllowedOrigins(origins));

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, version: VERSION });
  });
  app.get('/status', (_req, res) => {
    res.json(
      buildStatus({
        registry,
        sessions: sessions.size,
        startedAt: options.startedAt,
        clashes: options.catalog?.clashes,
      }),
    );
  });

  if (options.oauth) app.use(options.oauth);

  app.all(
    config.mcpPath,
    express.json({ limit: config.maxBodyBytes, type: ['application/json', 'application/*+json'] }),
    async (req: Request, res: Response) => {
      try {
        await sessions.handle(req, res);
      } catch (error) {
        logger.error({ err: errorMessage(error) }, 'unexpected error while handling an MCP request');
        sendJsonRpcError(res, 500, -32603, `Internal error: ${errorMessage(error)}`);
      }
    },
  );

  app.get('/', (_req, res) => {
    res.type('text/plain').send(`mcp-bridge ${VERSION}\nMCP endpoint: ${config.mcpPath}\nStatus: /status\n`);
  });

  app.use((req: Request, res: Response) => {
    sendJsonRpcError(
      res,
      404,
      -32601,
      `Not found: ${req.method} ${req.path} (the MCP endpoint is ${config.mcpPath})`,
    );
  });

  // Express's default error page is HTML; body-parser failures must be JSON-RPC errors instead.
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const type = (error as { type?: string }).type;
    if (type === 'entity.too.large') {
      sendJsonRpcError(
        res,
        413,
        -32600,
        `Request body too large: the limit is ${config.maxBodyBytes} bytes (set "maxBodyBytes" in the config to change it)`,
      );
      return;
    }
    if (type === 'entity.parse.failed') {
      sendJsonRpcError(
        res,
        400,
        -32700,
        `Parse error: the request body is not valid JSON (${errorMessage(error)})`,
      );
      return;
    }
    if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
      sendJsonRpcError(res, 415, -32600, `Unsupported request encoding: ${errorMessage(error)}`);
      return;
    }
    logger.error({ err: errorMessage(error) }, 'unexpected HTTP error');
    sendJsonRpcError(res, 500, -32603, `Internal error: ${errorMessage(error)}`);
  });

  return app;
}
