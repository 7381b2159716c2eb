import type { Tool } from '@modelcontextprotocol/client';
import { BridgeError } from '../errors.js';
import type { UpstreamRegistry } from '../upstream/registry.js';
import type { CallOptions } from '../upstream/upstream.js';
import { disambiguatedName, exposedToolName } from './naming.js';

export interface ToolRoute {
  readonly upstream: string;
  /** The tool's name on its upstream. */
  readonly tool: string;
}

/**
 * The merged view clients see: every upstream's tools under `<upstream>__<tool>`, a map to route
 * each exposed name back, and a change event whenever the merged list changes.
 */
export class Catalog {
  private tools: Tool[] = [];
  private routes = new Map<string, ToolRoute>();
  private signature = '';
  private readonly sources = new Map<string, readonly Tool[]>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly registry: UpstreamRegistry) {
    const ready = new Map<string, boolean>();
    for (const snapshot of registry.snapshots()) {
      this.sources.set(snapshot.name, snapshot.tools);
      ready.set(snapshot.name, snapshot.state === 'ready');
    }
    this.rebuild();
    registry.onSnapshot((snapshot) => {
      // An upstream that comes up or goes away may have changed behind its (cached) list, so clients
      // are told to re-list then too, not only when the merged list differs.
      const isReady = snapshot.state === 'ready';
      const cameOrWent = ready.get(snapshot.name) !== isReady;
      ready.set(snapshot.name, isReady);
      let changed = false;
      if (this.sources.get(snapshot.name) !== snapshot.tools) {
        this.sources.set(snapshot.name, snapshot.tools);
        changed = this.rebuild();
      }
      if (changed || cameOrWent) for (const listener of this.listeners) listener();
    });
  }

  /** The merged tool list, upstreams in config order. */
  listTools(): readonly Tool[] {
    return this.tools;
  }

  resolveTool(exposedName: string): ToolRoute | undefined {
    return this.routes.get(exposedName);
  }

  /** Fires when the merged tool list changed; returns the unsubscribe function. */
  onToolsChanged(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Routes a tools/call to its upstream and returns the upstream's result unchanged. */
  async callTool(
    params: { name: string } & Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<Record<string, unknown>> {
    const route = this.routes.get(params.name);
    if (!route) {
      throw new BridgeError(
        'UNKNOWN_TOOL',
        `unknown tool "${params.name}"; call tools/list for the available tools`,
        {
          details: { tool: params.name },
        },
      );
    }
    const upstream = this.registry.get(route.upstream);
    if (!upstream)
      throw new BridgeError('UNKNOWN_TOOL', `unknown tool "${params.name}"`, {
        details: { tool: params.name },
      });
    return upstream.callTool({ ...params, name: route.tool }, options);
  }

  /** Recomputes names and routes; returns whether the merged list changed. */
  private rebuild(): boolean {
    const entries: { upstream: string; tool: Tool; name: string }[] = [];
    for (const upstream of this.registry.list()) {
      for (const tool of this.sources.get(upstream.name) ?? []) {
        entries.push({ upstream: upstream.name, tool, name: exposedToolName(upstream.name, tool.name) });
      }
    }
    // Collisions are resolved in a fixed order (by upstream, then tool name) so the same config always
    // yields the same names, whichever upstream came up first.
    const byKey = [...entries].sort((a, b) =>
      a.upstream === b.upstream ? compare(a.tool.name, b.tool.name) : compare(a.upstream, b.upstream),
    );
    const taken = new Set<string>();
    for (const entry of byKey) {
      let round = 0;
      while (taken.has(entry.name))
        entry.name = disambiguatedName(entry.name, entry.upstream, entry.tool.name, ++round);
      taken.add(entry.name);
    }
    const tools = entries.map((e) => (e.name === e.tool.name ? e.tool : { ...e.tool, name: e.name }));
    const routes = new Map(entries.map((e) => [e.name, { upstream: e.upstream, tool: e.tool.name }]));
    const signature = JSON.stringify(tools);
    const changed = signature !== this.signature;
    this.tools = tools;
    this.routes = routes;
    this.signature = signature;
    return changed;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
