import type { Tool } from '@modelcontextprotocol/client';
import type { Listed } from '../upstream/state.js';
import type { Upstream } from '../upstream/upstream.js';
import { disambiguatedName, exposedToolName } from './naming.js';

export interface Route {
  readonly upstream: string;
  /** The name (or URI) on its upstream. */
  readonly original: string;
}

/** Prefix of a resource URI (or template) that two upstreams both serve: `mcp-bridge://<upstream>/<uri>`. */
export const NAMESPACED_URI = 'mcp-bridge://';

/** Every upstream's lists merged as clients see them, and the routes from each exposed name back. */
export interface Merged {
  readonly tools: Tool[];
  readonly prompts: Listed[];
  readonly resources: Listed[];
  readonly templates: Listed[];
  readonly toolRoutes: Map<string, Route>;
  readonly promptRoutes: Map<string, Route>;
  readonly resourceRoutes: Map<string, Route>;
  readonly templateRoutes: Map<string, Route>;
  /** Names that clashed and how they were resolved, for /status and the log. */
  readonly clashes: string[];
}

interface Entry {
  readonly upstream: string;
  readonly prefixed: boolean;
  readonly original: string;
  readonly item: Listed;
  name: string;
}

/** Names and routes for the upstreams' current (cached) lists, upstreams in config order. Pure. */
export function mergeUpstreams(upstreams: readonly Upstream[]): Merged {
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
  const routes = (list: Entry[]) =>
    new Map(list.map((e) => [e.name, { upstream: e.upstream, original: e.original }]));

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
  return {
    tools: exposed(tools, 'name') as unknown as Tool[],
    prompts: exposed(prompts, 'name'),
    resources: exposed(resources, 'uri'),
    templates: exposed(templates, 'uriTemplate'),
    toolRoutes: routes(tools),
    promptRoutes: routes(prompts),
    resourceRoutes: routes(resources),
    templateRoutes: routes(templates),
    clashes,
  };
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
