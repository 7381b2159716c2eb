import { type Tool, UriTemplate } from '@modelcontextprotocol/client';
import { BridgeError } from '../errors.js';
import type { UpstreamRegistry } from '../upstream/registry.js';
import type { Listed } from '../upstream/state.js';
import type { CallOptions, Upstream } from '../upstream/upstream.js';
import { disambiguatedName, exposedToolName } from './naming.js';

export interface Route {
  readonly upstream: string;
  /** The name (or URI) on its upstream. */
  readonly original: string;
}

export type ListKind = 'tools' | 'prompts' | 'resources';

/** Prefix of a resource URI (or template) that two upstreams both serve: `mcp-bridge://<upstream>/<uri>`. */
export const NAMESPACED_URI = 'mcp-bridge://';

interface Entry {
  readonly upstream: string;
  readonly prefixed: boolean;
  readonly original: string;
  readonly item: Listed;
  name: string;
}

/**
 * The merged view clients see: every upstream's tools and prompts under `<upstream>__<name>` (or
 * their own names with `"prefix": false`), every resource under its own URI (namespaced only where
 * two upstreams clash), maps to route each exposed name back, and change events per list.
 */
export class Catalog {
  private tools: Tool[] = [];
  private toolsByName = new Map<string, Tool>();
  private prompts: Listed[] = [];
  private resources: Listed[] = [];
  private templates: Listed[] = [];
  private toolRoutes = new Map<string, Route>();
  private promptRoutes = new Map<string, Route>();
  private resourceRoutes = new Map<string, Route>();
  private templateRoutes = new Map<string, Route>();
  private signatures: Record<ListKind, string> = { tools: '', prompts: '', resources: '' };
  /** Names that clashed and how they were resolved, for /status and the log. */
  clashes: string[] = [];
  private readonly listeners = new Set<(kind: ListKind) => void>();

  constructor(private readonly registry: UpstreamRegistry) {
    const ready = new Map<string, boolean>();
    for (const snapshot of registry.snapshots()) ready.set(snapshot.name, snapshot.state === 'ready');
    this.rebuild();
    // A config reload touches several upstreams: clients hear one list_changed per list for all of it.
    let batch: Set<ListKind> | undefined;
    registry.onSnapshot((snapshot) => {
      // An upstream that comes up or goes away may have changed behind its (cached) list, so clients
      // are told to re-list then too, not only when the merged list differs.
      const isReady = snapshot.state === 'ready';
      const cameOrWent = ready.get(snapshot.name) !== isReady;
      ready.set(snapshot.name, isReady);
      const changed = this.rebuild();
      if (cameOrWent) changed.add('tools');
      if (batch) for (const kind of changed) batch.add(kind);
      else this.emit(changed);
    });
    registry.onBatch((phase) => {
      if (phase === 'begin') {
        batch ??= new Set();
        return;
      }
      const changed = batch ?? new Set<ListKind>();
      batch = undefined;
      for (const kind of this.rebuild()) changed.add(kind);
      this.emit(changed);
    });
  }

  private emit(changed: Set<ListKind>): void {
    for (const kind of changed) for (const listener of this.listeners) listener(kind);
  }

  /** The merged tool list, upstreams in config order. */
  listTools(): readonly Tool[] {
    return this.tools;
  }

  /** A tool as clients see it, by its exposed name. */
  tool(name: string): Tool | undefined {
    return this.toolsByName.get(name);
  }

  listPrompts(): readonly Listed[] {
    return this.prompts;
  }

  listResources(): readonly Listed[] {
    return this.resources;
  }

  listResourceTemplates(): readonly Listed[] {
    return this.templates;
  }

  /** Fires when the merged tool list changed; returns the unsubscribe function. */
  onToolsChanged(listener: () => void): () => void {
    return this.onChanged((kind) => kind === 'tools' && listener());
  }

  /** Fires with the list that changed; returns the unsubscribe function. */
  onChanged(listener: (kind: ListKind) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Routes a tools/call to its upstream and returns the upstream's result unchanged. */
  async callTool(
    params: { name: string } & Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<Record<string, unknown>> {
    const route = this.toolRoutes.get(params.name);
    if (!route) {
      throw new BridgeError(
        'UNKNOWN_TOOL',
        `unknown tool "${params.name}"; call tools/list for the available tools`,
        {
          details: { tool: params.name },
        },
      );
    }
    return this.upstream(route).callTool({ ...params, name: route.original }, options);
  }

  async getPrompt(
    params: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<Record<string, unknown>> {
    const name = String(params.name ?? '');
    const route = this.promptRoutes.get(name);
    if (!route) {
      throw new BridgeError(
        'UNKNOWN_PROMPT',
        `unknown prompt "${name}"; call prompts/list for the available prompts`,
        {
          details: { prompt: name },
        },
      );
    }
    return this.upstream(route).forward('prompts/get', { ...params, name: route.original }, options);
  }

  /** resources/read, resources/subscribe and resources/unsubscribe, routed by URI. */
  async resourceRequest(
    method: 'resources/read' | 'resources/subscribe' | 'resources/unsubscribe',
    params: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<Record<string, unknown>> {
    const route = this.routeUri(String(params.uri ?? ''));
    return this.upstream(route).forward(method, { ...params, uri: route.original }, options);
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
      route = this.promptRoutes.get(String(ref.name));
      if (route) upstreamRef = { ...ref, name: route.original };
    } else if (ref.type === 'ref/resource') {
      const uri = String(ref.uri);
      route = this.templateRoutes.get(uri) ?? this.resourceRoutes.get(uri) ?? this.namespaced(uri);
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
    for (const [exposed, route] of this.resourceRoutes) {
      if (route.upstream === upstream && route.original === uri) return exposed;
    }
    // Not listed (e.g. from a template): namespaced only if another upstream has the same URI.
    return this.resourceRoutes.get(uri)?.upstream === upstream || !this.resourceRoutes.has(uri)
      ? uri
      : `${NAMESPACED_URI}${upstream}/${uri}`;
  }

  /**
   * An exposed URI back to its upstream: a listed resource, a namespaced URI, else the one upstream
   * whose resource templates match it (first in config order), else the only upstream with resources.
   */
  private routeUri(uri: string): Route {
    const route = this.resourceRoutes.get(uri) ?? this.namespaced(uri);
    if (route) return route;
    for (const template of this.templates) {
      const templateRoute = this.templateRoutes.get(String(template.uriTemplate));
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
    const upstreams = this.registry.list();
    const clashes: string[] = [];
    const entries = (
      pick: (s: ReturnType<Upstream['snapshot']>) => readonly Listed[] | undefined,
      key: string,
    ) =>
      upstreams.flatMap((upstream) =>
        (pick(upstream.snapshot()) ?? []).map((item) => ({
          upstream: upstream.name,
          prefixed: upstream.prefixed,
          original: String(item[key]),
          item,
          name: '',
        })),
      );
    /** The items as clients see them: renamed (under `key`) where their exposed name differs. */
    const exposed = (list: Entry[], key: string) =>
      list.map((e) => (e.name === e.original ? e.item : { ...e.item, [key]: e.name }));

    const tools = nameEntries(
      entries((s) => s.tools as unknown as Listed[], 'name'),
      'tool',
      clashes,
    );
    const prompts = nameEntries(
      entries((s) => s.prompts, 'name'),
      'prompt',
      clashes,
    );
    const resources = uriEntries(
      entries((s) => s.resources, 'uri'),
      'resource',
      clashes,
    );
    const templates = uriEntries(
      entries((s) => s.resourceTemplates, 'uriTemplate'),
      'resource template',
      clashes,
    );
    this.tools = exposed(tools, 'name') as unknown as Tool[];
    this.toolsByName = new Map(this.tools.map((t) => [t.name, t]));
    this.prompts = exposed(prompts, 'name');
    this.resources = exposed(resources, 'uri');
    this.templates = exposed(templates, 'uriTemplate');
    const routes = (list: Entry[]) =>
      new Map(list.map((e) => [e.name, { upstream: e.upstream, original: e.original }]));
    this.toolRoutes = routes(tools);
    this.promptRoutes = routes(prompts);
    this.resourceRoutes = routes(resources);
    this.templateRoutes = routes(templates);
    this.clashes = clashes;

    const changed = new Set<ListKind>();
    const next: Record<ListKind, string> = {
      tools: JSON.stringify(this.tools),
      prompts: JSON.stringify(this.prompts),
      resources: JSON.stringify([this.resources, this.templates]),
    };
    for (const kind of Object.keys(next) as ListKind[]) {
      if (next[kind] !== this.signatures[kind]) changed.add(kind);
    }
    this.signatures = next;
    return changed;
  }
}

/**
 * Names for tools or prompts: `<upstream>__<name>`, or the name itself for `"prefix": false`. A
 * pass-through name that clashes keeps its prefix instead (the later upstream in config order, or the
 * pass-through one against a prefixed name), and the clash is reported. Remaining collisions (after
 * shortening) get hash suffixes in a fixed order, so the same config always yields the same names.
 */
function nameEntries(entries: Entry[], what: string, clashes: string[]): Entry[] {
  for (const e of entries) e.name = e.prefixed ? exposedToolName(e.upstream, e.original) : e.original;
  const owners = new Map<string, Entry>();
  for (const e of entries.filter((x) => x.prefixed)) if (!owners.has(e.name)) owners.set(e.name, e);
  for (const e of entries.filter((x) => !x.prefixed)) {
    const owner = owners.get(e.name);
    if (owner && owner.upstream !== e.upstream) {
      const kept = exposedToolName(e.upstream, e.original);
      clashes.push(
        `${what} "${e.original}" of "${e.upstream}" clashes with "${owner.upstream}"; exposed as "${kept}"`,
      );
      e.name = kept;
    } else owners.set(e.name, e);
  }
  const ordered = [...entries].sort((a, b) =>
    a.upstream === b.upstream ? compare(a.original, b.original) : compare(a.upstream, b.upstream),
  );
  const taken = new Set<string>();
  for (const entry of ordered) {
    let round = 0;
    while (taken.has(entry.name))
      entry.name = disambiguatedName(entry.name, entry.upstream, entry.original, ++round);
    taken.add(entry.name);
  }
  return entries;
}

/** URIs stay as they are; where two upstreams serve the same one, later upstreams' get namespaced. */
function uriEntries(entries: Entry[], what: string, clashes: string[]): Entry[] {
  const owners = new Map<string, string>();
  for (const e of entries) {
    const owner = owners.get(e.original);
    if (owner === undefined || owner === e.upstream) {
      owners.set(e.original, e.upstream);
      e.name = e.original;
    } else {
      e.name = `${NAMESPACED_URI}${e.upstream}/${e.original}`;
      clashes.push(
        `${what} "${e.original}" of "${e.upstream}" is also served by "${owner}"; exposed as "${e.name}"`,
      );
    }
  }
  return entries;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
