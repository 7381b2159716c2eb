import { isDeepStrictEqual } from 'node:util';
import type { BridgeConfig, UpstreamConfig } from './schema.js';

/** What a new config does to the running upstreams, by name. */
export interface UpstreamDiff {
  /** Same resolved entry: the running upstream is left alone. */
  readonly unchanged: readonly string[];
  /** Same name, different entry: stopped, then started from the new entry. */
  readonly changed: readonly UpstreamConfig[];
  /** Gone from the config (or disabled): stopped. */
  readonly removed: readonly string[];
  readonly added: readonly UpstreamConfig[];
}

/**
 * Compares the *resolved* entries (env refs expanded, defaults and the top-level callTimeoutMs
 * applied), so an edit that changes nothing an upstream sees does not restart it.
 */
export function diffUpstreams(
  running: readonly UpstreamConfig[],
  next: readonly UpstreamConfig[],
): UpstreamDiff {
  const before = new Map(running.map((u) => [u.name, u]));
  const after = new Set(next.map((u) => u.name));
  const unchanged: string[] = [];
  const changed: UpstreamConfig[] = [];
  const added: UpstreamConfig[] = [];
  for (const entry of next) {
    const old = before.get(entry.name);
    if (old === undefined) added.push(entry);
    else if (isDeepStrictEqual(old, entry)) unchanged.push(entry.name);
    else changed.push(entry);
  }
  const removed = running.map((u) => u.name).filter((name) => !after.has(name));
  return { unchanged, changed, removed, added };
}

/**
 * Keys that are read once at start (the listener, its guards and limits, the logger, defaults
 * baked into every Upstream and transport). A change to one of them is reported, not half-applied.
 * Everything an upstream entry holds (including the top-level callTimeoutMs, which is copied into
 * each entry) applies live through `diffUpstreams`.
 */
export const RESTART_KEYS = [
  'port',
  'host',
  'mcpPath',
  'auth',
  'allowedOrigins',
  'allowedHosts',
  'maxBodyBytes',
  'pingIntervalMs',
  'pageSize',
  'logLevel',
  'logPath',
  'maxStdoutLineBytes',
  'maxStderrLineBytes',
  'bodyTimeoutMs',
  'maxConnections',
  'maxBodyBytesInFlight',
  'maxSessions',
] as const satisfies readonly (keyof BridgeConfig)[];

/** The restart-only keys whose value in `next` differs from the one the daemon started with. */
export function restartNeeded(started: BridgeConfig, next: BridgeConfig): string[] {
  return RESTART_KEYS.filter((key) => !isDeepStrictEqual(started[key], next[key]));
}
