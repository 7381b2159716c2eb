import { readFileSync } from 'node:fs';
import { isJsonObject as isObject } from '../json-object.js';
import type { Message } from './http-read.js';

/**
 * The daemon's last served surface (`served-cache.json`, written by src/catalog/served-cache.ts):
 * what lets the shim answer initialize, server/discover and the lists at once while the daemon is
 * not up yet, and tell the client, once connected, which of those lists the daemon now answers
 * differently. Plain JSON.parse and a defensive shape check: a missing or corrupt file is no cache, never a
 * crash, and its text is never quoted (tool descriptions can hold anything a server sent).
 */
export interface ServedSurface {
  readonly serverInfo: Record<string, unknown>;
  readonly capabilities: Record<string, unknown>;
  readonly instructions?: string | undefined;
  readonly tools: readonly Record<string, unknown>[];
  readonly prompts: readonly Record<string, unknown>[];
  readonly resources: readonly Record<string, unknown>[];
  readonly resourceTemplates: readonly Record<string, unknown>[];
}

const objects = (value: unknown): value is Record<string, unknown>[] =>
  Array.isArray(value) && value.every(isObject);

export function readServedCache(file: string): ServedSurface | undefined {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(data) || data.version !== 1) return undefined;
  const { serverInfo, capabilities, instructions, tools, prompts, resources, resourceTemplates } = data;
  if (!isObject(serverInfo) || !isObject(capabilities)) return undefined;
  if (!objects(tools) || !objects(prompts) || !objects(resources) || !objects(resourceTemplates))
    return undefined;
  if (!tools.every((t) => typeof t.name === 'string')) return undefined;
  return {
    serverInfo,
    capabilities,
    instructions: typeof instructions === 'string' ? instructions : undefined,
    tools,
    prompts,
    resources,
    resourceTemplates,
  };
}

/** The list a request asks for, from the cache (whole, in one page). */
export function cachedList(surface: ServedSurface, method: string): Record<string, unknown> | undefined {
  switch (method) {
    case 'tools/list':
      return { tools: surface.tools };
    case 'prompts/list':
      return { prompts: surface.prompts };
    case 'resources/list':
      return { resources: surface.resources };
    case 'resources/templates/list':
      return { resourceTemplates: surface.resourceTemplates };
    default:
      return undefined;
  }
}

const KNOWN_2025 = new Set(['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25']);

/** The initialize result from the cache: the client's 2025 revision echoed (else the latest one). */
export function cachedInitializeResult(surface: ServedSurface, requested: unknown): Record<string, unknown> {
  return {
    protocolVersion: typeof requested === 'string' && KNOWN_2025.has(requested) ? requested : '2025-11-25',
    capabilities: surface.capabilities,
    serverInfo: surface.serverInfo,
    ...(surface.instructions ? { instructions: surface.instructions } : {}),
  };
}

/** The stateless revisions the daemon serves (its SDK's), which this shim also speaks. */
const KNOWN_MODERN = new Set(['2026-07-28']);

/**
 * The daemon's server/discover answer from the cache, for a revision it serves; undefined for any
 * other (the daemon's own refusal, naming what it supports, is then awaited).
 */
export function cachedDiscoverResult(
  surface: ServedSurface,
  requested: string,
): Record<string, unknown> | undefined {
  if (!KNOWN_MODERN.has(requested)) return undefined;
  return {
    supportedVersions: [...KNOWN_MODERN],
    capabilities: surface.capabilities,
    ...(surface.instructions ? { instructions: surface.instructions } : {}),
    // What the daemon's SDK adds to every 2026-07-28 discover result (ttlMs 0: nothing to keep).
    resultType: 'complete',
    ttlMs: 0,
    cacheScope: 'private',
    _meta: { 'io.modelcontextprotocol/serverInfo': surface.serverInfo },
  };
}

/**
 * The list_changed kinds (`tools`, `prompts`, `resources`) whose list the daemon answers differently
 * from the cache; `ask` sends one request and resolves with its answer. A failure counts as changed.
 */
export async function changedLists(
  surface: ServedSurface,
  ask: (request: Message) => Promise<Message | undefined>,
): Promise<Set<string>> {
  const lists = [
    ['tools/list', 'tools', surface.tools, 'tools'],
    ['prompts/list', 'prompts', surface.prompts, 'prompts'],
    ['resources/list', 'resources', surface.resources, 'resources'],
    ['resources/templates/list', 'resourceTemplates', surface.resourceTemplates, 'resources'],
  ] as const;
  const changed = new Set<string>();
  for (const [method, key, cached, kind] of lists) {
    try {
      const reply = await ask({ jsonrpc: '2.0', id: `mcp-bridge-shim-compare-${key}`, method });
      const now = reply?.result?.[key];
      if (JSON.stringify(now ?? []) !== JSON.stringify(cached) || reply?.result?.nextCursor)
        changed.add(kind);
    } catch {
      changed.add(kind);
    }
  }
  return changed;
}
