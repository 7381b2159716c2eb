import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BridgeMetrics, type MetricsSources, UPSTREAM_STATES } from '../../src/metrics/metrics.js';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

// prom-client spells NaN "Nan" (the event-loop means before the first sample); Prometheus parses
// values with Go's case-insensitive ParseFloat, so it accepts that.
const LINE =
  /^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? ([-+0-9.eE]+|NaN|Nan|[+-]Inf))$/;

function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!;
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

function series(samples: readonly Sample[], name: string): Sample[] {
  return samples.filter((s) => s.name === name);
}

function value(samples: readonly Sample[], name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels);
  const found = series(samples, name).filter(
    (s) => Object.keys(s.labels).length === want.length && want.every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${found.length} series of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

type Snapshot = { name: string; state: string; restarts: number };

function setup(overrides: Partial<MetricsSources> = {}) {
  const state = {
    snapshots: [
      { name: 'fs', state: 'ready', restarts: 0 },
      { name: 'web', state: 'starting', restarts: 0 },
    ] as Snapshot[],
    tools: new Set(['fs__read', 'fs__write', 'web__fetch']),
    sessions: { '2025': 0, '2026-07-28': 0 },
    expiries: [] as { upstream: string; expiresAt: number | undefined }[],
  };
  const metrics = new BridgeMetrics({
    snapshots: () => state.snapshots,
    knownTools: () => state.tools,
    sessionsByEra: () => state.sessions,
    tokenExpiries: () => state.expiries,
    ...overrides,
  });
  const scrape = async () => parse(await metrics.render());
  return { metrics, state, scrape };
}

describe('BridgeMetrics', () => {
  it('counts tool calls by upstream, tool and outcome, and their durations by upstream', async () => {
    const { metrics, scrape } = setup();
    metrics.toolCall('fs', 'fs__read', 'ok', 2);
    metrics.toolCall('fs', 'fs__read', 'ok', 4);
    metrics.toolCall('fs', 'fs__write', 'tool_error', 20);
    metrics.toolCall('web', 'web__fetch', 'error', 1500);
    const samples = await scrape();
    const calls = 'mcp_bridge_tool_calls_total';
    expect(value(samples, calls, { upstream: 'fs', tool: 'fs__read', outcome: 'ok' })).toBe(2);
    expect(value(samples, calls, { upstream: 'fs', tool: 'fs__write', outcome: 'tool_error' })).toBe(1);
    expect(value(samples, calls, { upstream: 'web', tool: 'web__fetch', outcome: 'error' })).toBe(1);
    expect(series(samples, calls)).toHaveLength(3);

    const duration = 'mcp_bridge_tool_call_duration_seconds';
    expect(value(samples, `${duration}_count`, { upstream: 'fs' })).toBe(3);
    expect(value(samples, `${duration}_sum`, { upstream: 'fs' })).toBeCloseTo(0.026, 9);
    expect(value(samples, `${duration}_bucket`, { upstream: 'fs', le: '0.001' })).toBe(0);
    expect(value(samples, `${duration}_bucket`, { upstream: 'fs', le: '0.005' })).toBe(2);
    expect(value(samples, `${duration}_bucket`, { upstream: 'fs', le: '0.025' })).toBe(3);
    expect(value(samples, `${duration}_bucket`, { upstream: 'web', le: '1' })).toBe(0);
    expect(value(samples, `${duration}_bucket`, { upstream: 'web', le: '2.5' })).toBe(1);
    expect(value(samples, `${duration}_bucket`, { upstream: 'web', le: '60' })).toBe(1);
    expect(value(samples, `${duration}_bucket`, { upstream: 'web', le: '+Inf' })).toBe(1);
  });

  it('adds the calls since the last scrape to the counts of the scrapes before', async () => {
    const { metrics, scrape } = setup();
    metrics.toolCall('fs', 'fs__read', 'ok', 2);
    const calls = 'mcp_bridge_tool_calls_total';
    const duration = 'mcp_bridge_tool_call_duration_seconds_count';
    expect(value(await scrape(), calls, { upstream: 'fs', tool: 'fs__read', outcome: 'ok' })).toBe(1);
    expect(value(await scrape(), calls, { upstream: 'fs', tool: 'fs__read', outcome: 'ok' })).toBe(1);
    metrics.toolCall('fs', 'fs__read', 'ok', 2);
    metrics.toolCall('fs', 'fs__read', 'ok', 2);
    const samples = await scrape();
    expect(value(samples, calls, { upstream: 'fs', tool: 'fs__read', outcome: 'ok' })).toBe(3);
    expect(value(samples, duration, { upstream: 'fs' })).toBe(3);
  });

  it('labels a tool the catalog does not expose "other" and a call without upstream "none"', async () => {
    const { metrics, scrape } = setup();
    metrics.toolCall(undefined, 'made_up', 'error', 1);
    metrics.toolCall('fs', 'fs__gone', 'ok', 1);
    const samples = await scrape();
    const calls = 'mcp_bridge_tool_calls_total';
    expect(value(samples, calls, { upstream: 'none', tool: 'other', outcome: 'error' })).toBe(1);
    expect(value(samples, calls, { upstream: 'fs', tool: 'other', outcome: 'ok' })).toBe(1);
    expect(samples.some((s) => s.labels.tool === 'made_up' || s.labels.tool === 'fs__gone')).toBe(false);
  });

  it('keeps the series bounded whatever tool names clients send', async () => {
    const { metrics, scrape } = setup();
    for (let i = 0; i < 10_000; i++) {
      metrics.toolCall(i % 2 ? undefined : 'fs', `x${Math.random().toString(36).slice(2)}`, 'error', 1);
    }
    metrics.toolCall('fs', 'fs__read', 'ok', 1);
    const samples = await scrape();
    const calls = series(samples, 'mcp_bridge_tool_calls_total');
    expect(calls.length).toBeLessThanOrEqual(3);
    expect(new Set(calls.map((s) => s.labels.tool))).toEqual(new Set(['other', 'fs__read']));
    expect(calls.reduce((sum, s) => sum + s.value, 0)).toBe(10_001);
  });

  it('takes the catalog as a predicate too', async () => {
    const { metrics, scrape } = setup({ knownTools: () => (name) => name.startsWith('fs__') });
    metrics.toolCall('fs', 'fs__anything', 'ok', 1);
    metrics.toolCall('web', 'web__fetch', 'ok', 1);
    const samples = await scrape();
    expect(
      value(samples, 'mcp_bridge_tool_calls_total', { upstream: 'fs', tool: 'fs__anything', outcome: 'ok' }),
    ).toBe(1);
    expect(
      value(samples, 'mcp_bridge_tool_calls_total', { upstream: 'web', tool: 'other', outcome: 'ok' }),
    ).toBe(1);
  });

  it('shows every state of every upstream, 1 for the current one, read at each scrape', async () => {
    const { state, scrape } = setup();
    let samples = await scrape();
    const gauge = 'mcp_bridge_upstream_state';
    expect(series(samples, gauge)).toHaveLength(2 * UPSTREAM_STATES.length);
    for (const s of UPSTREAM_STATES) {
      expect(value(samples, gauge, { upstream: 'fs', state: s })).toBe(s === 'ready' ? 1 : 0);
      expect(value(samples, gauge, { upstream: 'web', state: s })).toBe(s === 'starting' ? 1 : 0);
    }

    state.snapshots = [
      { name: 'fs', state: 'backoff', restarts: 0 },
      { name: 'new', state: 'idle', restarts: 0 },
    ];
    samples = await scrape();
    expect(value(samples, gauge, { upstream: 'fs', state: 'ready' })).toBe(0);
    expect(value(samples, gauge, { upstream: 'fs', state: 'backoff' })).toBe(1);
    expect(value(samples, gauge, { upstream: 'new', state: 'idle' })).toBe(1);
    // A removed upstream drops out instead of showing its last state forever.
    expect(series(samples, gauge).filter((s) => s.labels.upstream === 'web')).toEqual([]);
  });

  it('reads restarts from the snapshots and counts reconnects, refreshes and bytes', async () => {
    const { metrics, state, scrape } = setup();
    state.snapshots = [{ name: 'fs', state: 'ready', restarts: 3 }];
    metrics.reconnect('web');
    metrics.reconnect('web');
    metrics.oauthRefresh('web', 'ok');
    metrics.oauthRefresh('web', 'ok');
    metrics.oauthRefresh('web', 'invalid_grant');
    metrics.bytes('in', 100);
    metrics.bytes('in', 50);
    metrics.bytes('out', 2048);
    const samples = await scrape();
    expect(value(samples, 'mcp_bridge_upstream_restarts_total', { upstream: 'fs' })).toBe(3);
    expect(value(samples, 'mcp_bridge_upstream_reconnects_total', { upstream: 'web' })).toBe(2);
    expect(value(samples, 'mcp_bridge_oauth_refreshes_total', { upstream: 'web', outcome: 'ok' })).toBe(2);
    expect(
      value(samples, 'mcp_bridge_oauth_refreshes_total', { upstream: 'web', outcome: 'invalid_grant' }),
    ).toBe(1);
    expect(value(samples, 'mcp_bridge_bytes_total', { direction: 'in' })).toBe(150);
    expect(value(samples, 'mcp_bridge_bytes_total', { direction: 'out' })).toBe(2048);

    state.snapshots = [{ name: 'fs', state: 'ready', restarts: 4 }];
    expect(value(await scrape(), 'mcp_bridge_upstream_restarts_total', { upstream: 'fs' })).toBe(4);
  });

  it('reports sessions by era and the seconds until each known token expiry', async () => {
    const { state, scrape } = setup();
    state.sessions = { '2025': 3, '2026-07-28': 1 };
    state.expiries = [
      { upstream: 'web', expiresAt: Date.now() + 90_000 },
      { upstream: 'old', expiresAt: Date.now() - 10_000 },
      { upstream: 'forever', expiresAt: undefined },
    ];
    const samples = await scrape();
    expect(value(samples, 'mcp_bridge_downstream_sessions', { era: '2025' })).toBe(3);
    expect(value(samples, 'mcp_bridge_downstream_sessions', { era: '2026-07-28' })).toBe(1);
    const expiry = 'mcp_bridge_oauth_token_expiry_seconds';
    expect(value(samples, expiry, { upstream: 'web' })).toBeGreaterThan(85);
    expect(value(samples, expiry, { upstream: 'web' })).toBeLessThanOrEqual(90);
    expect(value(samples, expiry, { upstream: 'old' })).toBeLessThan(-9);
    expect(series(samples, expiry).map((s) => s.labels.upstream)).toEqual(['web', 'old']);
  });

  it('ignores durations and byte counts prom-client would throw on', async () => {
    const { metrics, scrape } = setup();
    expect(() => metrics.toolCall('fs', 'fs__read', 'ok', Number.NaN)).not.toThrow();
    expect(() => metrics.toolCall('fs', 'fs__read', 'ok', -1)).not.toThrow();
    expect(() => metrics.bytes('in', -5)).not.toThrow();
    expect(() => metrics.bytes('in', Number.POSITIVE_INFINITY)).not.toThrow();
    const samples = await scrape();
    expect(
      value(samples, 'mcp_bridge_tool_calls_total', { upstream: 'fs', tool: 'fs__read', outcome: 'ok' }),
    ).toBe(2);
    expect(series(samples, 'mcp_bridge_tool_call_duration_seconds_count')).toEqual([]);
    expect(value(samples, 'mcp_bridge_bytes_total', { direction: 'in' })).toBe(0);
  });

  it('includes the process defaults, on a registry of its own', async () => {
    const { metrics, scrape } = setup();
    const names = new Set((await scrape()).map((s) => s.name));
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_cpu_system_seconds_total',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(names).toContain(name);
    }
    expect(globalRegistry.getSingleMetric('mcp_bridge_tool_calls_total')).toBeUndefined();
    // A second bridge in the same process (tests, restarts in place) must not collide with the first.
    expect(() => setup()).not.toThrow();
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('renders Prometheus text: every line well formed, HELP and TYPE for each own metric', async () => {
    const { metrics, state } = setup();
    state.expiries = [{ upstream: 'web', expiresAt: Date.now() + 1000 }];
    metrics.toolCall('fs', 'fs__read', 'ok', 1);
    metrics.toolCall(undefined, 'a "quoted"\nname', 'error', 1);
    metrics.reconnect('fs');
    metrics.oauthRefresh('web', 'failed');
    metrics.bytes('out', 1);
    const text = await metrics.render();
    const lines = text.split('\n').filter((line) => line !== '');
    for (const line of lines) expect(line).toMatch(LINE);
    const own = [...new Set(parse(text).map((s) => s.name.replace(/_(bucket|sum|count)$/, '')))].filter((n) =>
      n.startsWith('mcp_bridge_'),
    );
    expect(own.sort()).toEqual([
      'mcp_bridge_bytes_total',
      'mcp_bridge_downstream_sessions',
      'mcp_bridge_oauth_refreshes_total',
      'mcp_bridge_oauth_token_expiry_seconds',
      'mcp_bridge_tool_call_duration_seconds',
      'mcp_bridge_tool_calls_total',
      'mcp_bridge_upstream_reconnects_total',
      'mcp_bridge_upstream_restarts_total',
      'mcp_bridge_upstream_state',
    ]);
    for (const name of own) {
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^# HELP ${name} \\S`)));
      expect(lines).toContainEqual(
        expect.stringMatching(new RegExp(`^# TYPE ${name} (counter|gauge|histogram)$`)),
      );
    }
  });
});
