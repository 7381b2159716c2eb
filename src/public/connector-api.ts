import express, { type Router } from 'express';
import { sendHttpError } from '../server/http-error.js';
import type { PublicListener } from './public-listener.js';

/** The consent page's lock from wrong passwords; null without a public listener. */
export type Lockout = { readonly locked: boolean; readonly lockedForS: number } | null;

/** What POST /connectors/unlock answers: what it cleared (both 0 without a public listener). */
export interface UnlockAnswer {
  readonly public: boolean;
  readonly wasLocked: boolean;
  readonly lockedForS: number;
  readonly failures: number;
}

function lockout(pub: PublicListener): Lockout {
  const lockedForS = pub.lockedForS();
  return { locked: lockedForS > 0, lockedForS };
}

/**
 * `mcp-bridge connectors` talks to the running daemon through these loopback routes (behind the
 * local access token like everything there), so a revocation or an unlock takes effect in memory
 * at once.
 */
export function connectorApi(listener: () => PublicListener | undefined): Router {
  const router = express.Router();
  router.get('/connectors', (_req, res) => {
    const pub = listener();
    res.json(
      pub
        ? {
            public: { url: pub.resource, exposes: pub.exposed() },
            connectors: pub.connectors(),
            lockout: lockout(pub),
          }
        : { public: null, connectors: [], lockout: null },
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
  // The lock lives in this process only: the daemon is the one place it can be cleared.
  router.post('/connectors/unlock', (_req, res) => {
    const pub = listener();
    const cleared = pub?.unlock() ?? { lockedForS: 0, failures: 0 };
    const answer: UnlockAnswer = { public: pub !== undefined, wasLocked: cleared.lockedForS > 0, ...cleared };
    res.json(answer);
  });
  return router;
}
