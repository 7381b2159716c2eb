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
 * What a reload applies: the upstream entries (including the top-level callTimeoutMs, which is
 * copied into each entry), plus facts about the file itself. Every other key is read once at
 * start (the listener, its guards and limits, the logger, defaults baked into every Upstream and
 * transport), so a change to it is reported, not half-applied; a key added to BridgeConfig later
 * is restart-only until it is listed here.
 */
const LIVE_KEYS = new Set<keyof BridgeConfig>([
  'upstreams',
  'callTimeoutMs',
  'file',
  'fileExists',
  'configDir',
  'warnings',
]);

/** The restart-only keys whose value in `next` differs from the one the daemon started with. */
export function restartNeeded(started: BridgeConfig, next: BridgeConfig): string[] {
  const keys = new Set([...Object.keys(started), ...Object.keys(next)] as (keyof BridgeConfig)[]);
  return [...keys].filter((key) => !LIVE_KEYS.has(key) && !isDeepStrictEqual(started[key], next[key]));
}
