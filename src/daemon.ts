import type { AddressInfo } from 'node:net';
import { AccessToken } from './access/access-token.js';
import type { ActivityLog } from './activity/activity-log.js';
import { callRecorder } from './activity/call-recorder.js';
import { openDaemonActivity } from './activity/daemon-activity.js';
import { LoginFlows, loginTarget } from './auth/login.js';
import { OAuthManager } from './auth/oauth-manager.js';
import { watchStoredLogins } from './auth/stored-logins.js';
import { TokenStore } from './auth/token-store.js';
import { Catalog } from './catalog/catalog.js';
import { ServedCacheWriter } from './catalog/served-cache.js';
import { ConfigReloader, type ReloadOutcome } from './config/reloader.js';
import { type BridgeConfig, type HttpUpstreamConfig, usesOAuth } from './config/schema.js';
import { errorMessage } from './errors.js';
import type { Logger } from './log.js';
import { daemonMetrics } from './metrics/daemon-metrics.js';
import type { BridgeMetrics } from './metrics/metrics.js';
import { connectorApi } from './public/connector-api.js';
import { ownerPassword } from './public/owner-password.js';
import { type PublicListener, startPublicListener } from './public/public-listener.js';
import { createHttpApp } from './server/http.js';
import { createLimitedServer, httpLimits, markSocketAuthenticated } from './server/limits.js';
import { listen } from './server/listen.js';
import {
  beginLogin,
  loopbackRedirectUri,
  type OAuthRoutesOptions,
  oauthRoutes,
} from './server/oauth-routes.js';
import { PageSessions } from './server/page/page-sessions.js';
import { SERVER_CAPABILITIES, SessionManager } from './server/session.js';
import { checkConfigDirSync } from './store/file-safety.js';
import { CatalogCache } from './upstream/catalog-cache.js';
import { UpstreamRegistry, type UpstreamRegistryOptions } from './upstream/registry.js';
import { isTransient } from './upstream/state.js';

export interface DaemonOptions {
  readonly config: BridgeConfig;
  readonly logger: Logger;
  /** Overrides for tests (transport factory, timings). */
  readonly createTransport?: UpstreamRegistryOptions['createTransport'];
  readonly upstreamDefaults?: Partial<UpstreamRegistryOptions['upstreamDefaults']>;
  /** Idle sessions are closed after this long (default 30 min). */
  readonly sessionIdleTimeoutMs?: number;
  /** At maxSessions, an idle session makes room after this long (default 60 s). */
  readonly sessionEvictIdleAfterMs?: number;
  /**
   * Reads the config again as at start (the start command's `--config` and environment). Given,
   * the daemon reloads on `reload()` and, unless `watchConfig` is false, when the file changes.
   */
  readonly reloadConfig?: () => BridgeConfig;
  readonly watchConfig?: boolean;
  /** Quiet time after a change to the config file before it is read (default 300 ms). */
  readonly watchDebounceMs?: number;
  /** Called once the port is known, before any upstream starts (the daemon lock records it). */
  readonly onListening?: (port: number) => Promise<void>;
  /** Where the owner password of the public listener is read from (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** Tests: fetch of Client ID Metadata Documents by the public listener's authorization server. */
  readonly cimdFetch?: typeof fetch;
}

export interface Daemon {
  /** The MCP endpoint, e.g. http://127.0.0.1:8769/mcp. */
  readonly url: string;
  readonly port: number;
  readonly registry: UpstreamRegistry;
  /** OAuth tokens of the remote upstreams. */
  readonly oauth: OAuthManager;
  /** One line per tool call, prompt get and resource read (activity-log.ts); off with `activityLog.enabled: false`. */
  readonly activity: ActivityLog | undefined;
  /** What GET /metrics exports; the call path reports tool calls and bytes to it. Off with `metrics.enabled: false`. */
  readonly metrics: BridgeMetrics | undefined;
  /** The listener for ChatGPT and claude.ai connectors; undefined without `public.url`. */
  readonly public: PublicListener | undefined;
  /** The local access token clients must send; undefined with `"auth": "none"`. */
  readonly accessToken: string | undefined;
  /**
   * Reads the config again and applies what changed (see docs/design.md, "Config reload"); a
   * config that does not load changes nothing. Without `reloadConfig`, reports that and does nothing.
   */
  reload(reason?: string): Promise<ReloadOutcome>;
  /** Closes sessions, stops every upstream, stops listening. Idempotent. */
  close(): Promise<void>;
}

/** The composition root: cache, registry, catalog, sessions and the HTTP server, wired together. */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const { config, logger } = options;
  const startedAt = Date.now();
  // loadConfig checked it too; a daemon built from another config must not read a foreign cache either.
  checkConfigDirSync(config.configDir);
  // Before anything starts: without its password the public listener must not open, nor the daemon.
  const password = config.public ? await ownerPassword(config.public, options.env ?? process.env) : undefined;
  const tokenWasExposed = config.auth === 'token' && AccessToken.tightenMode(config.configDir);
  const accessToken = config.auth === 'token' ? await AccessToken.load(config.configDir) : undefined;
  const cache = new CatalogCache({ configDir: config.configDir, logger });
  await cache.load();
  const oauth = new OAuthManager(new TokenStore(config.configDir, logger), logger, {
    // The registry is built right after load(); no event can fire before (each follows an await).
    events: {
      onNeedsAuth: (name, error) => registry.get(name)?.requireAuth(error),
      onAuthorized: (name) => registry.get(name)?.retryNow(),
      onRefresh: (name, outcome) => metrics?.oauthRefresh(name, outcome),
    },
  });
  await oauth.load(config.upstreams.filter(usesOAuth));
  const registry = new UpstreamRegistry({
    upstreams: config.upstreams,
    logger,
    cache,
    oauth,
    createTransport: options.createTransport,
    stateDir: config.configDir,
    maxStdoutLineBytes: config.maxStdoutLineBytes,
    maxStderrLineBytes: config.maxStderrLineBytes,
    upstreamDefaults: { pingIntervalMs: config.pingIntervalMs, ...options.upstreamDefaults },
  });
  const stopWatchingLogins = watchStoredLogins(registry, oauth, logger);
  const reloader = options.reloadConfig
    ? new ConfigReloader({ started: config, load: options.reloadConfig, registry, oauth, logger })
    : undefined;
  const flows = new LoginFlows(oauth, logger);
  let redirectPort = config.port;
  const activity = openDaemonActivity(
    config,
    logger,
    () => (reloader?.current ?? config).upstreams,
    password,
  );
  // Made after the catalog (it reads its tool names): the recorder looks it up when a call ends.
  let metrics: BridgeMetrics | undefined;
  // With both off, calls are not observed at all (the bench's baseline, `npm run bench`).
  const recordCalls = (listener: 'local' | 'public') =>
    activity || config.metrics?.enabled !== false
      ? callRecorder({ activity, metrics: () => metrics, listener })
      : undefined;
  const catalog = new Catalog(registry, recordCalls('local'));
  const servedCache = new ServedCacheWriter({
    configDir: config.configDir,
    catalog,
    capabilities: SERVER_CAPABILITIES,
    logger,
    settled: () => registry.snapshots().every((s) => !isTransient(s.state) || s.state === 'backoff'),
    onStateChange: (listener) => registry.onSnapshot(listener),
  });
  const sessions = new SessionManager({
    catalog,
    registry,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    pageSize: config.pageSize,
    idleTimeoutMs: options.sessionIdleTimeoutMs,
    maxSessions: httpLimits(config).maxSessions,
    evictIdleAfterMs: options.sessionEvictIdleAfterMs,
  });
  // /metrics and the status page (whose logins end with the access token).
  const observed = daemonMetrics({ registry, catalog, sessions, oauth, enabled: config.metrics?.enabled });
  const bridgeMetrics = observed.metrics;
  metrics = bridgeMetrics;
  const traffic = bridgeMetrics
    ? (received: number, sent: number) => {
        bridgeMetrics.bytes('in', received);
        bridgeMetrics.bytes('out', sent);
      }
    : undefined;
  const pageSessions = new PageSessions();
  const stopEndingPageSessions = accessToken?.onChange(() => pageSessions.endAll());
  const oauthOptions: OAuthRoutesOptions = {
    flows,
    logger,
    upstream: (name) => {
      // Logins follow the config as reloaded.
      const { upstreams } = reloader?.current ?? config;
      const http = upstreams.filter((u): u is HttpUpstreamConfig => u.kind === 'http');
      return loginTarget(http, upstreams, name);
    },
    redirectUri: (upstream) => upstream.oauth.redirectUri ?? loopbackRedirectUri(config.host, redirectPort),
  };
  const oauthApi = oauthRoutes(oauthOptions);
  const app = createHttpApp({
    config,
    sessions,
    registry,
    catalog,
    logger,
    startedAt,
    oauth: oauthApi,
    accessToken,
    onAuthenticated: (req) => markSocketAuthenticated(req.socket),
    connectors: connectorApi(() => publicListener),
    warnings: () => (reloader?.current ?? config).warnings,
    publicStatus: () =>
      publicListener && {
        url: publicListener.resource,
        port: publicListener.port,
        exposes: publicListener.exposed(),
        connectors: publicListener.connectors().length,
      },
    metrics: bridgeMetrics,
    tokens: observed.tokens,
    page: {
      sessions: pageSessions,
      login: (name) => beginLogin(oauthOptions, name),
      connectors: () => publicListener?.connectors(),
    },
    recentCalls: activity && (() => activity.recent(50)),
  });
  let publicListener: PublicListener | undefined;
  let reportedClashes = '';
  const reportClashes = () => {
    const now = JSON.stringify(catalog.clashes);
    if (now === reportedClashes) return;
    reportedClashes = now;
    if (catalog.clashes.length > 0)
      logger.warn({ clashes: catalog.clashes }, 'names clash between upstreams');
  };
  reportClashes();
  catalog.onChanged(reportClashes);
  const server = createLimitedServer(app, httpLimits(config), logger, {
    tokenRequired: accessToken !== undefined,
    onTraffic: traffic,
  });

  await listen(
    server,
    config.port,
    config.host,
    `is another mcp-bridge running? (check http://${config.host}:${config.port}/status, or set MCP_BRIDGE_PORT)`,
  );
  // A failed accept (EMFILE when every descriptor is taken) is emitted on the server; without a
  // listener it would end the daemon. The connection is lost, the daemon goes on.
  server.on('error', (error) => logger.warn({ err: errorMessage(error) }, 'HTTP server error'));
  const port = (server.address() as AddressInfo).port;
  redirectPort = port;
  await options.onListening?.(port);
  if (config.public && password !== undefined) {
    try {
      publicListener = await startPublicListener({
        config,
        public: config.public,
        password,
        registry,
        logger,
        sessionIdleTimeoutMs: options.sessionIdleTimeoutMs,
        cimdFetch: options.cimdFetch,
        onCall: recordCalls('public'),
        onTraffic: traffic,
      });
    } catch (error) {
      server.close();
      server.closeAllConnections();
      throw error;
    }
  }
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}${config.mcpPath}`;
  logger.info(
    { url, upstreams: config.upstreams.map((u) => u.name), config: config.file },
    'mcp-bridge listening',
  );
  for (const warning of config.warnings ?? []) logger.warn({ config: config.file }, warning);
  if (tokenWasExposed) {
    logger.warn(
      { file: accessToken?.file },
      'the access token file was readable by other users; it is 0600 again, but run `mcp-bridge token rotate` in case it was read',
    );
  }
  const stopWatchingToken = accessToken?.onChange(() => sessions.endSessions('the access token was rotated'));
  if (!accessToken) {
    logger.warn(
      { auth: 'none' },
      'the local access token is off ("auth": "none"): any local process, any other user of this machine and any web page on an allowed origin can use your tools and logins',
    );
  }
  // Children that a killed daemon left running go before ours start (never the other way round).
  await registry.reapLeftovers();
  registry.start();
  if (reloader && options.watchConfig !== false) reloader.watch(options.watchDebounceMs);

  let closing: Promise<void> | undefined;
  return {
    activity,
    metrics: bridgeMetrics,
    url,
    port,
    registry,
    oauth,
    get public() {
      return publicListener;
    },
    get accessToken() {
      return accessToken?.current();
    },
    reload(reason = 'requested') {
      if (!reloader)
        return Promise.resolve({ ok: false, error: 'this daemon cannot reload', restartNeeded: [] });
      return reloader.reload(reason);
    },
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        stopWatchingToken?.();
        stopEndingPageSessions?.();
        observed.stop();
        await reloader?.close();
        await publicListener?.close();
        await sessions.closeAll();
        server.closeAllConnections();
        stopWatchingLogins();
        await servedCache.close();
        await registry.stop();
        oauth.close();
        await activity?.close();
        await stopped;
        logger.info('mcp-bridge stopped');
      })();
      return closing;
    },
  };
}
