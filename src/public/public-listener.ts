import type { AddressInfo } from 'node:net';
import { Catalog } from '../catalog/catalog.js';
import type { CallObserver } from '../catalog/observed.js';
import type { BridgeConfig, PublicConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { createLimitedServer, httpLimits, markSocketAuthenticated } from '../server/limits.js';
import { listen } from '../server/listen.js';
import { SessionManager } from '../server/session.js';
import type { UpstreamRegistry } from '../upstream/registry.js';
import { registryView } from '../upstream/registry-view.js';
import { BearerCheck, resourceMetadataUrl } from './bearer.js';
import { consentRoutes } from './consent-routes.js';
import type { ConnectorInfo } from './oauth-store.js';
import { OAuthStore } from './oauth-store.js';
import { PasswordGate, type Unlocked } from './password-gate.js';
import { createProvider } from './provider.js';
import { loadProviderKeys } from './provider-keys.js';
import { createPublicApp, grantOf } from './public-app.js';

export interface PublicListenerOptions {
  readonly config: BridgeConfig;
  readonly public: PublicConfig;
  /** Already read (owner-password.ts), so a missing one stops the daemon before anything starts. */
  readonly password: string;
  readonly registry: UpstreamRegistry;
  readonly logger: Logger;
  readonly sessionIdleTimeoutMs?: number | undefined;
  /** Bytes received and sent, for the metrics. */
  readonly onTraffic?: ((received: number, sent: number) => void) | undefined;
  /** Told of every call on this listener (the activity log, the metrics). */
  readonly onCall?: CallObserver | undefined;
  /** Tests: fetch of Client ID Metadata Documents (see ProviderOptions.fetch). */
  readonly cimdFetch?: typeof fetch | undefined;
}

export interface PublicListener {
  /** The issuer (public.url). */
  readonly url: string;
  /** The protected resource, public.url + mcpPath. */
  readonly resource: string;
  /** Where it listens (the tunnel's target), e.g. 127.0.0.1:8770. */
  readonly port: number;
  /** The upstreams it exposes. */
  exposed(): string[];
  connectors(): ConnectorInfo[];
  /** Ends a connector's registration, grants, tokens and sessions; false if it had none. */
  revoke(clientId: string): Promise<boolean>;
  /** Seconds the consent page stays locked by wrong passwords, 0 when it is not locked. */
  lockedForS(): number;
  /** Clears that lock and the count of wrong passwords (`mcp-bridge connectors unlock`). */
  unlock(): Unlocked;
  close(): Promise<void>;
}

/**
 * The second listener, for ChatGPT and claude.ai through a tunnel: the bridge's own authorization
 * server in front of its own catalog of the upstreams in `public.upstreams`, with its own sessions.
 */
export async function startPublicListener(options: PublicListenerOptions): Promise<PublicListener> {
  const { config, logger } = options;
  const pub = options.public;
  const log = logger.child({ listener: 'public' });
  const resource = `${pub.url}${config.mcpPath}`;
  const [store, keys] = await Promise.all([
    OAuthStore.open(config.configDir, log),
    loadProviderKeys(config.configDir, log),
  ]);
  const provider = await createProvider({
    config: pub,
    resource,
    store,
    keys,
    logger: log,
    fetch: options.cimdFetch,
  });
  const view = registryView(options.registry, (name) => !pub.upstreams || pub.upstreams.includes(name));
  const catalog = new Catalog(view, options.onCall);
  const sessions = new SessionManager({
    catalog,
    registry: view,
    logger: log,
    maxBodyBytes: config.maxBodyBytes,
    pageSize: config.pageSize,
    idleTimeoutMs: options.sessionIdleTimeoutMs,
    maxSessions: httpLimits(config).maxSessions,
    ownerOf: grantOf,
    alwaysResumable: true,
  });
  const stopEnding = store.onGrantsRevoked((grantIds) =>
    sessions.endSessions('a connector was revoked', grantIds),
  );
  const gate = new PasswordGate(options.password);
  const consent = consentRoutes({
    provider,
    gate,
    csrfKey: keys.cookieKeys[0] as string,
    origin: pub.url,
    resource,
    exposed: () => view.snapshots().map((s) => ({ name: s.name, tools: s.tools.length })),
    logger: log,
  });
  const app = createPublicApp({
    config,
    public: pub,
    resource,
    provider,
    bearer: new BearerCheck(store, resource, resourceMetadataUrl(pub.url, config.mcpPath)),
    sessions,
    consent,
    logger: log,
    onAuthenticated: (req) => markSocketAuthenticated(req.socket),
  });
  const server = createLimitedServer(app, httpLimits(config), log, {
    tokenRequired: true,
    onTraffic: options.onTraffic,
  });
  try {
    await listen(server, pub.port, config.host, 'set public.port or MCP_BRIDGE_PUBLIC_PORT to a free one');
  } catch (error) {
    stopEnding();
    await sessions.closeAll();
    throw error;
  }
  server.on('error', (error) => log.warn({ err: String(error) }, 'public HTTP server error'));
  const port = (server.address() as AddressInfo).port;
  const exposed = () => view.list().map((u) => u.name);
  log.warn(
    { url: resource, listening: `${config.host}:${port}`, exposes: exposed() },
    `public listener open: ${exposed().length} upstream(s) are reachable from ${pub.url} by every connector the owner approves`,
  );

  let closing: Promise<void> | undefined;
  return {
    url: pub.url,
    resource,
    port,
    exposed,
    connectors: () => store.connectors(),
    async revoke(clientId) {
      const found = await store.revoke(clientId);
      if (found) log.warn({ clientId }, 'connector revoked by the owner');
      return found;
    },
    lockedForS: () => gate.lockedForS(),
    unlock() {
      const cleared = gate.unlock();
      if (cleared.lockedForS > 0) {
        log.warn(cleared, 'consent page unlocked by the owner: the lock from wrong passwords is cleared');
      } else if (cleared.failures > 0) {
        log.info(cleared, 'consent page: the count of wrong passwords was reset by the owner');
      }
      return cleared;
    },
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        stopEnding();
        await sessions.closeAll();
        server.closeAllConnections();
        await store.flush().catch(() => {});
        store.close();
        await stopped;
      })();
      return closing;
    },
  };
}
