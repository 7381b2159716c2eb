import { createHmac, timingSafeEqual } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import type Provider from 'oidc-provider';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { describeRedirect, pageHeaders, renderConsentPage, renderMessagePage } from './consent-page.js';
import type { PasswordGate } from './password-gate.js';
import { CONSENT_PATH, MCP_SCOPE, OWNER_ACCOUNT } from './provider.js';

export interface ConsentRoutesOptions {
  readonly provider: Provider;
  readonly gate: PasswordGate;
  /** Signs the per-interaction CSRF token (a provider cookie key). */
  readonly csrfKey: string;
  /** The public origin: a form POST must come from it. */
  readonly origin: string;
  readonly resource: string;
  /** What the public listener exposes, for the page. */
  readonly exposed: () => readonly { readonly name: string; readonly tools: number }[];
  readonly logger: Logger;
}

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

/**
 * The owner's consent: GET shows who asks and what it will reach, POST checks the CSRF token and
 * the password (PasswordGate: constant time, global lockout) and finishes the interaction with a
 * grant for the MCP resource, or with access_denied.
 */
export function consentRoutes(options: ConsentRoutesOptions): Router {
  const { provider, gate, logger } = options;
  const router = express.Router();
  const csrfFor = (uid: string) =>
    createHmac('sha256', options.csrfKey).update(`consent ${uid}`).digest('base64url');

  const send = (
    res: Response,
    status: number,
    html: string,
    redirectOrigin?: string,
    retryAfterS?: number,
  ) => {
    res.status(status).set(pageHeaders(redirectOrigin ? [redirectOrigin] : []));
    if (retryAfterS !== undefined) res.set('Retry-After', String(retryAfterS));
    res.send(html);
  };
  const message = (res: Response, status: number, title: string, text: string, retryAfterS?: number) =>
    send(res, status, renderMessagePage({ title, message: text }), undefined, retryAfterS);

  /** The interaction this browser is in (its cookie), or an answer saying why there is none. */
  const interaction = async (req: Request, res: Response): Promise<Details | undefined> => {
    try {
      const details = await provider.interactionDetails(req, res);
      if (details.uid === req.params.uid) return details;
    } catch (error) {
      logger.debug({ err: errorMessage(error) }, 'consent page without a valid interaction');
    }
    message(
      res,
      400,
      'This link has expired',
      'Open the connection again from the app you are connecting (ChatGPT, Claude…), in this browser. A consent link works for 10 minutes, in the browser that started it.',
    );
    return undefined;
  };

  const render = async (res: Response, details: Details, status: number, error?: string) => {
    const clientId = String(details.params.client_id);
    const client = await provider.Client.find(clientId);
    const redirectUri = String(details.params.redirect_uri ?? client?.redirectUris?.[0] ?? '');
    const { host } = describeRedirect(redirectUri);
    const html = renderConsentPage({
      clientName: client?.clientName,
      clientId,
      redirectHost: host,
      upstreams: options.exposed(),
      action: `${CONSENT_PATH}/${details.uid}`,
      csrf: csrfFor(details.uid),
      error,
    });
    send(res, status, html, URL.parse(redirectUri)?.origin);
  };

  const locked = (res: Response, retryAfterS: number) => {
    logger.warn({ retryAfterS }, 'consent refused: too many wrong owner passwords in 15 minutes');
    message(
      res,
      429,
      'Too many wrong passwords',
      `Five wrong passwords were typed in the last 15 minutes, so every try is refused for ${Math.ceil(retryAfterS / 60)} more minute(s). If that was not you, someone knows your public address.`,
      retryAfterS,
    );
  };

  router.get(`${CONSENT_PATH}/:uid`, async (req, res) => {
    const details = await interaction(req, res);
    if (!details) return;
    const retryAfterS = gate.lockedForS();
    if (retryAfterS > 0) {
      locked(res, retryAfterS);
      return;
    }
    await render(res, details, 200);
  });

  router.post(
    `${CONSENT_PATH}/:uid`,
    express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 }),
    async (req, res) => {
      // The page's no-referrer policy makes browsers send `Origin: null` on its own form; their
      // Sec-Fetch-Site still says whether it came from this origin.
      const origin = req.headers.origin;
      const site = req.headers['sec-fetch-site'];
      const sameOrigin =
        origin === options.origin ||
        (origin === 'null' && site === 'same-origin') ||
        (origin === undefined && (site === undefined || site === 'same-origin'));
      if (!sameOrigin) {
        message(res, 403, 'Refused', 'This form can only be sent from the page the bridge served.');
        return;
      }
      const details = await interaction(req, res);
      if (!details) return;
      const body = (req.body ?? {}) as Record<string, unknown>;
      const csrf = typeof body.csrf === 'string' ? Buffer.from(body.csrf) : Buffer.alloc(0);
      const expected = Buffer.from(csrfFor(details.uid));
      if (csrf.length !== expected.length || !timingSafeEqual(csrf, expected)) {
        message(
          res,
          403,
          'Refused',
          'The form was not the one this page served. Reload the page and try again.',
        );
        return;
      }
      const clientId = String(details.params.client_id);
      const redirectHost = describeRedirect(String(details.params.redirect_uri ?? '')).host;
      if (body.decision === 'deny') {
        logger.info({ clientId, redirectHost }, 'connector consent denied by the owner');
        await provider.interactionFinished(
          req,
          res,
          { error: 'access_denied', error_description: 'the owner declined the connection' },
          { mergeWithLastSubmission: false },
        );
        return;
      }
      const result = gate.check(typeof body.password === 'string' ? body.password : '');
      if (!result.ok && result.reason === 'locked') {
        locked(res, result.retryAfterS);
        return;
      }
      if (!result.ok) {
        logger.warn(
          { clientId, redirectHost, failuresLeft: result.failuresLeft },
          'consent: wrong owner password',
        );
        await render(
          res,
          details,
          401,
          `Wrong password. ${result.failuresLeft} ${result.failuresLeft === 1 ? 'try' : 'tries'} left before a 15-minute lock.`,
        );
        return;
      }
      const grant = new provider.Grant({ accountId: OWNER_ACCOUNT, clientId });
      grant.addResourceScope(options.resource, MCP_SCOPE);
      const asked = typeof details.params.scope === 'string' ? details.params.scope.split(' ') : [];
      // `mcp` is also an AS-level scope (clients register with it), so it is granted at both levels.
      const oidc = asked.filter((s) => s === 'openid' || s === 'offline_access' || s === MCP_SCOPE);
      if (oidc.length > 0) grant.addOIDCScope(oidc);
      const grantId = await grant.save();
      logger.info({ clientId, redirectHost, grantId }, 'connector consent given by the owner');
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: OWNER_ACCOUNT, remember: false }, consent: { grantId } },
        { mergeWithLastSubmission: false },
      );
    },
  );
  return router;
}
