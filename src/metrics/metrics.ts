import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { UpstreamState } from '../upstream/state.js';

/** How a finished tools/call ended: a result, a result with `isError`, or a JSON-RPC error. */
export type CallOutcome = 'ok' | 'tool_error' | 'error';
export type RefreshOutcome = 'ok' | 'failed' | 'invalid_grant';

/** What the metrics read at scrape time; nothing here is pushed. */
export interface MetricsSources {
  snapshots(): readonly { readonly name: string; readonly state: string; readonly restarts: number }[];
  /**
   * The tool names clients see (the catalog's exposed names). Called on every toolCall, so it must
   * return something already built (a Set kept by the catalog, or a lookup into its map).
   */
  knownTools(): ReadonlySet<string> | ((name: string) => boolean);
  sessionsByEra(): { readonly '2025': number; readonly '2026-07-28': number };
  /** `expiresAt` in epoch ms; undefined when the token has no known expiry (or there is no token). */
  tokenExpiries(): readonly { readonly upstream: string; readonly expiresAt: number | undefined }[];
}

export interface BridgeMetricsOptions {
  /**
   * Sampling interval of the event-loop delay monitor, ms (default 20, prom-client's is 10): lag
   * worth a dashboard is tens of ms, and an idle daemon should not wake up 100 times a second.
   */
  readonly eventLoopMonitoringPrecisionMs?: number;
}

/** Label value for a call that reached no upstream (unknown tool, refused before routing). */
export const NO_UPSTREAM = 'none';
/** Label value for every tool name the catalog does not expose: clients cannot mint series. */
export const OTHER_TOOL = 'other';

// A Record so that the compiler flags a state added to (or removed from) UpstreamState.
const STATE_SET: Record<UpstreamState, true> = {
  idle: true,
  starting: true,
  ready: true,
  backoff: true,
  needs_auth: true,
  failed: true,
  stopping: true,
  stopped: true,
};
export const UPSTREAM_STATES = Object.keys(STATE_SET) as readonly UpstreamState[];

/** 1 ms to 60 s: local stdio tools answer in a few ms, remote ones and user prompts take seconds. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type CounterChild = Counter.Internal;
type HistogramChild = Histogram.Internal<'upstream'>;

/** One upstream's tool calls since the last scrape, in plain numbers (see toolCall). */
interface UpstreamCalls {
  readonly upstream: string;
  readonly duration: HistogramChild;
  /** Durations (ms) not yet observed by the histogram. */
  durationsMs: number[];
  /** By tool label, then outcome: calls not yet added to the counter, and its child for them. */
  readonly calls: Map<string, Partial<Record<CallOutcome, { child: CounterChild; unscraped: number }>>>;
}

/** Durations an upstream keeps for the next scrape, at most (then they are observed at once). */
const MAX_PENDING_DURATIONS = 1000;

/**
 * The bridge's Prometheus metrics, on a registry of its own (never prom-client's global one, so
 * that two bridges in one test process do not collide). Events are counted as they happen; the
 * states, restarts, sessions and token expiries are read from `sources` on each scrape.
 */
export class BridgeMetrics {
  readonly registry = new Registry();
  readonly contentType: string = this.registry.contentType;
  private readonly calls: Counter<'upstream' | 'tool' | 'outcome'>;
  private readonly durations: Histogram<'upstream'>;
  private readonly reconnects: Counter<'upstream'>;
  private readonly refreshes: Counter<'upstream' | 'outcome'>;
  private readonly byteChildren: Readonly<Record<'in' | 'out', CounterChild>>;
  private readonly byUpstream = new Map<string, UpstreamCalls>();
  private readonly unscrapedBytes = { in: 0, out: 0 };

  constructor(
    private readonly sources: MetricsSources,
    options: BridgeMetricsOptions = {},
  ) {
    const registers = [this.registry];
    collectDefaultMetrics({
      register: this.registry,
      eventLoopMonitoringPrecision: options.eventLoopMonitoringPrecisionMs ?? 20,
    });
    this.calls = new Counter({
      collect: () => this.addUnscrapedCalls(),
      name: 'mcp_bridge_tool_calls_total',
      help: 'Finished tools/call requests, by upstream, exposed tool name ("other" if not in the catalog) and outcome (ok, tool_error = result with isError, error = JSON-RPC error).',
      labelNames: ['upstream', 'tool', 'outcome'] as const,
      registers,
    });
    this.durations = new Histogram({
      collect: () => {
        for (const calls of this.byUpstream.values()) this.observeDurations(calls);
      },
      name: 'mcp_bridge_tool_call_duration_seconds',
      help: 'Time from a tools/call request to its answer, by upstream.',
      labelNames: ['upstream'] as const,
      buckets: DURATION_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'mcp_bridge_upstream_state',
      help: `Upstream lifecycle state: 1 for the current state, 0 for the others (${UPSTREAM_STATES.join(', ')}).`,
      labelNames: ['upstream', 'state'] as const,
      registers,
      collect() {
        // Reset first: an upstream removed by a reload must drop out, not keep its last value.
        this.reset();
        for (const snapshot of sources.snapshots()) {
          for (const state of UPSTREAM_STATES) this.set({ upstream: snapshot.name, state }, 0);
          this.set({ upstream: snapshot.name, state: snapshot.state }, 1);
        }
      },
    });
    // A counter although it is read from the snapshot: it only grows while an upstream lives, and a
    // reload that replaces the upstream starts it at 0 again, which rate()/increase() treat as a
    // counter reset, just like a daemon restart.
    new Counter({
      name: 'mcp_bridge_upstream_restarts_total',
      help: 'Connections to the upstream re-established after the first one (starts over when a reload replaces the upstream).',
      labelNames: ['upstream'] as const,
      registers,
      collect() {
        this.reset();
        for (const snapshot of sources.snapshots()) this.inc({ upstream: snapshot.name }, snapshot.restarts);
      },
    });
    this.reconnects = new Counter({
      name: 'mcp_bridge_upstream_reconnects_total',
      help: 'Times the bridge reconnected to an upstream after its connection dropped.',
      labelNames: ['upstream'] as const,
      registers,
    });
    this.refreshes = new Counter({
      name: 'mcp_bridge_oauth_refreshes_total',
      help: 'OAuth access-token refreshes, by upstream and outcome (invalid_grant: the grant is gone and a new login is needed).',
      labelNames: ['upstream', 'outcome'] as const,
      registers,
    });
    new Gauge({
      name: 'mcp_bridge_oauth_token_expiry_seconds',
      help: 'Seconds until the upstream OAuth access token expires (negative once expired); absent when its expiry is unknown.',
      labelNames: ['upstream'] as const,
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const { upstream, expiresAt } of sources.tokenExpiries()) {
          if (expiresAt !== undefined) this.set({ upstream }, (expiresAt - now) / 1000);
        }
      },
    });
    new Gauge({
      name: 'mcp_bridge_downstream_sessions',
      help: 'Open client sessions, by protocol era (2025: Mcp-Session-Id sessions; 2026-07-28: stateless).',
      labelNames: ['era'] as const,
      registers,
      collect() {
        const byEra = sources.sessionsByEra();
        this.set({ era: '2025' }, byEra['2025']);
        this.set({ era: '2026-07-28' }, byEra['2026-07-28']);
      },
    });
    const bytes = new Counter({
      // Added up in plain numbers per response, handed to prom-client at the scrape (see toolCall).
      collect: () => {
        for (const direction of ['in', 'out'] as const) {
          if (this.unscrapedBytes[direction] > 0)
            this.byteChildren[direction].inc(this.unscrapedBytes[direction]);
          this.unscrapedBytes[direction] = 0;
        }
      },
      name: 'mcp_bridge_bytes_total',
      help: 'Bytes the HTTP listeners received from and sent to clients (headers included), counted as each response finishes.',
      labelNames: ['direction'] as const,
      registers,
    });
    this.byteChildren = { in: bytes.labels('in'), out: bytes.labels('out') };
    // Both series from the start, so that rate() has a 0 to begin with.
    this.byteChildren.in.inc(0);
    this.byteChildren.out.inc(0);
  }

  /**
   * One finished tools/call. On the hot path, so it only adds to plain numbers: prom-client hashes
   * the labels on every update, which cost a call more than the rest of its recording. They are
   * handed to prom-client before each scrape (the counters' and the histogram's `collect`).
   */
  toolCall(upstream: string | undefined, tool: string, outcome: CallOutcome, durationMs: number): void {
    const known = this.sources.knownTools();
    const isKnown = typeof known === 'function' ? known(tool) : known.has(tool);
    const calls = this.upstreamCalls(upstream ?? NO_UPSTREAM);
    const label = isKnown ? tool : OTHER_TOOL;
    let byOutcome = calls.calls.get(label);
    if (!byOutcome) {
      byOutcome = {};
      calls.calls.set(label, byOutcome);
    }
    let counted = byOutcome[outcome];
    if (!counted) {
      counted = { child: this.calls.labels(calls.upstream, label, outcome), unscraped: 0 };
      byOutcome[outcome] = counted;
    }
    counted.unscraped++;
    // prom-client throws on NaN; a bad clock reading must not fail the call it describes.
    if (Number.isFinite(durationMs) && durationMs >= 0) {
      calls.durationsMs.push(durationMs);
      if (calls.durationsMs.length >= MAX_PENDING_DURATIONS) this.observeDurations(calls);
    }
  }

  private addUnscrapedCalls(): void {
    for (const calls of this.byUpstream.values()) {
      for (const byOutcome of calls.calls.values()) {
        for (const counted of Object.values(byOutcome)) {
          if (counted.unscraped === 0) continue;
          counted.child.inc(counted.unscraped);
          counted.unscraped = 0;
        }
      }
    }
  }

  private observeDurations(calls: UpstreamCalls): void {
    const durations = calls.durationsMs;
    calls.durationsMs = [];
    for (const ms of durations) calls.duration.observe(ms / 1000);
  }

  /** The connection to `upstream` dropped and was made again. */
  reconnect(upstream: string): void {
    this.reconnects.inc({ upstream });
  }

  oauthRefresh(upstream: string, outcome: RefreshOutcome): void {
    this.refreshes.inc({ upstream, outcome });
  }

  bytes(direction: 'in' | 'out', n: number): void {
    if (Number.isFinite(n) && n > 0) this.unscrapedBytes[direction] += n;
  }

  /** The Prometheus text exposition of every metric, sources read now. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  private upstreamCalls(upstream: string): UpstreamCalls {
    let calls = this.byUpstream.get(upstream);
    if (!calls) {
      calls = { upstream, duration: this.durations.labels(upstream), durationsMs: [], calls: new Map() };
      this.byUpstream.set(upstream, calls);
    }
    return calls;
  }
}
