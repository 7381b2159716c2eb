import { type Tool, UriTemplate } from '@modelcontextprotocol/client';
import { BridgeError } from '../errors.js';
import type { UpstreamSource } from '../upstream/registry-view.js';
import type { Listed } from '../upstream/state.js';
import type { CallOptions, Upstream } from '../upstream/upstream.js';
import { ListChanges, type ListKind } from './list-changes.js';
import { type Merged, mergeUpstreams, NAMESPACED_URI, type Route } from './merge.js';
import { type CallObserver, observed } from './observed.js';

/**
 * The merged view clients see: every upstream's tools and prompts under `<upstream>__<name>` (or
 * their own names with `"prefix": false`), every resource under its own URI (namespaced only where
 * two upstreams clash), maps to route each exposed name back, and change events per list. The
 * names and routes are computed in merge.ts, when clients must re-list in list-changes.ts; this
 * class routes each request by them.
 */
export class Catalog {
  private merged!: Merged;
  private toolsByName = new Map<string, Tool>();
  private signatures: Record<ListKind, string> = { tools: '', prompts: '', resources: '' };
  private readonly changes: ListChanges;

  constructor(
    private readonly registry: UpstreamSource,
    /** Told of every tools/call, prompts/get and resources/read as it ends (activity log, metrics). */
    private readonly onCall?: CallObserver,
  ) {
    this.rebuild();
    this.changes = new ListChanges(registry, () => this.rebuild());
  }

  /** Names that clashed and how they were resolved, for /status and the log. */
  get clashes(): string[] {
    return this.merged.clashes;
  }

  /** The merged tool list, upstreams in config order. */
  listTools(): readonly Tool[] {
    return this.merged.tools;
  }

  /** A tool as clients see it, by its exposed name. */
  tool(name: string): Tool | undefined {
    return this.toolsByName.get(name);
  }

  listPrompts(): readonly Listed[] {
    return this.merged.prompts;
  }

  listResources(): readonly Listed[] {
    return this.merged.resources;
  }

  listResourceTemplates(): readonly Listed[] {
    return this.merged.templates;
  }

  /** Fires when the merged tool list changed; returns the unsubscribe function. */
  onToolsChanged(listener: () => void): () => void {
    return this.onChanged((kind) => kind === 'tools' && listener());
  }

  /** Fires with the list that changed; returns the unsubscribe function. */
  onChanged(listener: (kind: ListKind) => void): () => void {
    return this.changes.on(listener);
  }

  /** Routes a tools/call to its upstream and returns the upstream's result unchanged. */
  async callTool(
    params: { name: string } & Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<Record<string, unknown>> {
    const route = this.merged.toolRoutes.get(params.name);
    const run = () => {
      if (!route) {
        throw new BridgeError(
          'UNKNOWN_TOOL',
          `unknown tool "${params.name}"; call tools/list for the available tools`,
          { details: { tool: params.name } },
        );
      }
      return this.upstream(route).callTool({ ...params, name: route.original }, options);
    };
    if (!this.onCall) return run();
    return observed(
      this.onCall,
      { kind: 'tool', name: params.name, route, arguments: params.arguments, options },
      run,
    );
  }

  async getPrompt(
    params: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<Record<string, unknown>> {
    const name = String(params.name ?? '');
    const route = this.merged.promptRoutes.get(name);
    const run = () => {
      if (!route) {
        throw new BridgeError(
          'UNKNOWN_PROMPT',
          `unknown prompt "${name}"; call prompts/list for the available prompts`,
          { details: { prompt: name } },
        );
      }
      return this.upstream(route).forward('prompts/get', { ...params, name: route.original }, options);
    };
    if (!this.onCall) return run();
    return observed(this.onCall, { kind: 'prompt', name, route, arguments: params.arguments, options }, run);
  }

  /** resources/read, resources/subscribe and resources/unsubscribe, routed by URI. */
  async resourceRequest(
    method: 'resources/read' | 'resources/subscribe' | 'resources/unsubscribe',
    params: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<Record<string, unknown>> {
    const uri = String(params.uri ?? '');
    const run = () => {
      const route = this.routeUri(uri);
      return this.upstream(route).forward(method, { ...params, uri: route.original }, options);
    };
    if (!this.onCall || method !== 'resources/read') return run();
    let route: Route | undefined;
    try {
      route = this.routeUri(uri);
    } catch {
      // Unknown: recorded as such when run() throws the same error.
    }
    return observed(this.onCall, { kind: 'resource', name: uri, route, arguments: undefined, options }, run);
  }

  /** completion/complete, routed by the prompt or resource template it refers to. */
  async complete(
    params: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<Record<string, unknown>> {
    const ref = (params.ref ?? {}) as Record<string, unknown>;
    let route: Route | undefined;
    let upstreamRef: Record<string, unknown> = ref;
    if (ref.type === 'ref/prompt') {
      route = this.merged.promptRoutes.get(String(ref.name));
      if (route) upstreamRef = { ...ref, name: route.original };
    } else if (ref.type === 'ref/resource') {
      const uri = String(ref.uri);
      route =
        this.merged.templateRoutes.get(uri) ?? this.merged.resourceRoutes.get(uri) ?? this.namespaced(uri);
      if (route) upstreamRef = { ...ref, uri: route.original };
    }
    if (!route) {
      throw new BridgeError(
        ref.type === 'ref/resource' ? 'UNKNOWN_RESOURCE' : 'UNKNOWN_PROMPT',
        `completion/complete refers to an unknown ${String(ref.type)}`,
        {
          details: { ref },
        },
      );
    }
    return this.upstream(route).forward('completion/complete', { ...params, ref: upstreamRef }, options);
  }

  /** logging/setLevel goes to every ready upstream that logs (the last level set wins). */
  async setLogLevel(level: string): Promise<void> {
    const loggers = this.registry.list().filter((u) => {
      const s = u.snapshot();
      return s.state === 'ready' && s.capabilities?.logging;
    });
    await Promise.allSettled(loggers.map((u) => u.forward('logging/setLevel', { level })));
  }

  /** The bridge's instructions: its own line, then each upstream's, under its name. */
  instructions(): string {
    const parts = [
      'Tools, prompts and resources from several MCP servers; tools and prompts are named <server>__<name>.',
    ];
    for (const s of this.registry.snapshots()) {
      if (s.instructions) parts.push(`## ${s.name}\n${s.instructions}`);
    }
    return parts.join('\n\n');
  }

  /** The URI clients see for a resource of `upstream` (for resources/updated). */
  exposedUri(upstream: string, uri: string): string {
    for (const [exposed, route] of this.merged.resourceRoutes) {
      if (route.upstream === upstream && route.original === uri) return exposed;
    }
    // Not listed (e.g. from a template): namespaced only if another upstream has the same URI.
    return this.merged.resourceRoutes.get(uri)?.upstream === upstream || !this.merged.resourceRoutes.has(uri)
      ? uri
      : `${NAMESPACED_URI}${upstream}/${uri}`;
  }

  /**
   * An exposed URI back to its upstream: a listed resource, a namespaced URI, else the one upstream
   * whose resource templates match it (first in config order), else the only upstream with resources.
   */
  private routeUri(uri: string): Route {
    const route = this.merged.resourceRoutes.get(uri) ?? this.namespaced(uri);
    if (route) return route;
    for (const template of this.merged.templates) {
      const templateRoute = this.merged.templateRoutes.get(String(template.uriTemplate));
      if (!templateRoute) continue;
      try {
        if (new UriTemplate(templateRoute.original).match(uri))
          return { upstream: templateRoute.upstream, original: uri };
      } catch {
        // An invalid template never matches.
      }
    }
    const withResources = this.registry.snapshots().filter((s) => s.capabilities?.resources);
    if (withResources.length === 1) return { upstream: withResources[0]!.name, original: uri };
    throw new BridgeError(
      'UNKNOWN_RESOURCE',
      `unknown resource "${uri}"; call resources/list for the available resources`,
      {
        details: { uri },
      },
    );
  }

  private namespaced(uri: string): Route | undefined {
    if (!uri.startsWith(NAMESPACED_URI)) return undefined;
    const rest = uri.slice(NAMESPACED_URI.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) return undefined;
    const upstream = rest.slice(0, slash);
    return this.registry.get(upstream) ? { upstream, original: rest.slice(slash + 1) } : undefined;
  }

  private upstream(route: Route): Upstream {
    const upstream = this.registry.get(route.upstream);
    if (!upstream) throw new BridgeError('UNKNOWN_TOOL', `unknown upstream "${route.upstream}"`);
    return upstream;
  }

  /** Recomputes names and routes; returns the lists that changed. */
  private rebuild(): Set<ListKind> {
    const merged = mergeUpstreams(this.registry.list());
    this.merged = merged;
    this.toolsByName = new Map(merged.tools.map((t) => [t.name, t]));
    const changed = new Set<ListKind>();
    const next: Record<ListKind, string> = {
      tools: JSON.stringify(merged.tools),
      prompts: JSON.stringify(merged.prompts),
      resources: JSON.stringify([merged.resources, merged.templates]),
    };
    for (const kind of Object.keys(next) as ListKind[]) {
      if (next[kind] !== this.signatures[kind]) changed.add(kind);
    }
    this.signatures = next;
    return changed;
  }
}
