import type { OAuthManager, TokenInfo } from '../auth/oauth-manager.js';
import type { UpstreamRegistry } from '../upstream/registry.js';
import { BridgeMetrics } from './metrics.js';
import { watchReconnects } from './reconnects.js';

export interface DaemonMetricsParts {
  readonly registry: Pick<UpstreamRegistry, 'snapshots' | 'list' | 'onSnapshot'>;
  readonly catalog: { tool(name: string): unknown };
  /** The 2025 sessions (2026-07-28 clients are stateless: nothing of theirs stays open to count). */
  readonly sessions: { readonly size: number };
  readonly oauth: Pick<OAuthManager, 'tokenInfo'>;
  /** `metrics.enabled`: false makes no metrics (no /metrics, nothing counted); tokens still work. */
  readonly enabled?: boolean;
}

/**
 * The daemon's BridgeMetrics, its sources read from the daemon's parts at scrape time, and the
 * reconnects counted from the registry's snapshots. `tokens` is also what /status and the page show.
 */
export function daemonMetrics(parts: DaemonMetricsParts): {
  metrics: BridgeMetrics | undefined;
  tokens: () => TokenInfo[];
  stop: () => void;
} {
  const { registry, catalog, sessions, oauth } = parts;
  // Only the OAuth upstreams still in the config: a reload may have removed some.
  const tokens = () => {
    const names = new Set(registry.list().map((u) => u.name));
    return oauth.tokenInfo().filter((t) => names.has(t.upstream));
  };
  if (parts.enabled === false) return { metrics: undefined, tokens, stop: () => {} };
  const knownTool = (name: string) => catalog.tool(name) !== undefined;
  const metrics = new BridgeMetrics({
    snapshots: () => registry.snapshots(),
    knownTools: () => knownTool,
    sessionsByEra: () => ({ '2025': sessions.size, '2026-07-28': 0 }),
    tokenExpiries: tokens,
  });
  const stop = watchReconnects(
    (listener) => registry.onSnapshot(listener),
    (name) => metrics.reconnect(name),
  );
  return { metrics, tokens, stop };
}
