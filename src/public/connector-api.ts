import express, { type Router } from 'express';
import { sendHttpError } from '../server/http-error.js';
import type { PublicListener } from './public-listener.js';

/**
 * `mcp-bridge connectors` talks to the running daemon through these loopback routes (behind the
 * local access token like everything there), so a revocation takes effect in memory at once.
 */
export function connectorApi(listener: () => PublicListener | undefined): Router {
  const router = express.Router();
  router.get('/connectors', (_req, res) => {
    const pub = listener();
    res.json(
      pub
        ? { public: { url: pub.resource, exposes: pub.exposed() }, connectors: pub.connectors() }
        : { public: null, connectors: [] },
    );
  });
  router.post('/connectors/revoke', express.json({ limit: '16kb' }), async (req, res) => {
    const pub = listener();
    const body = (req.body ?? {}) as { clientId?: unknown; all?: unknown };
    if (!pub) {
      sendHttpError(
        res,
        'CONNECTOR_NOT_FOUND',
        'there is no public listener (public.url is not set), so there are no connectors',
      );
      return;
    }
    const ids =
      body.all === true
        ? pub.connectors().map((c) => c.clientId)
        : typeof body.clientId === 'string'
          ? [body.clientId]
          : undefined;
    if (!ids) {
      sendHttpError(res, 'USAGE', 'send {"clientId": "..."} or {"all": true}', { status: 400 });
      return;
    }
    const revoked: string[] = [];
    for (const id of ids) if (await pub.revoke(id)) revoked.push(id);
    if (body.all !== true && revoked.length === 0) {
      sendHttpError(
        res,
        'CONNECTOR_NOT_FOUND',
        `no connector has the client id "${ids[0]}"; mcp-bridge connectors list shows them`,
        { status: 404 },
      );
      return;
    }
    res.json({ revoked });
  });
  return router;
}
