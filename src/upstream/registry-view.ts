import type { UpstreamRegistry } from './registry.js';

/** What the catalog and the sessions read of the registry: the upstreams, their changes. */
export type UpstreamSource = Pick<
  UpstreamRegistry,
  'get' | 'list' | 'snapshots' | 'onSnapshot' | 'onBatch' | 'onResourceUpdated'
>;

/**
 * The registry seen through a filter, for a listener that exposes only some upstreams (the public
 * one's `public.upstreams`): the rest are not listed, not routed to and not heard from.
 */
export function registryView(registry: UpstreamSource, include: (name: string) => boolean): UpstreamSource {
  return {
    get: (name) => (include(name) ? registry.get(name) : undefined),
    list: () => registry.list().filter((u) => include(u.name)),
    snapshots: () => registry.snapshots().filter((s) => include(s.name)),
    onSnapshot: (listener) => registry.onSnapshot((s) => include(s.name) && listener(s)),
    onBatch: (listener) => registry.onBatch(listener),
    onResourceUpdated: (listener) =>
      registry.onResourceUpdated((name, uri, params) => include(name) && listener(name, uri, params)),
  };
}
