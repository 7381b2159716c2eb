import { readFileSync } from 'node:fs';

/**
 * The daemon's last served surface (`served-cache.json`, written by src/catalog/served-cache.ts):
 * what lets the shim answer initialize and the lists at once while the daemon is not up yet.
 * Plain JSON.parse and a defensive shape check: a missing or corrupt file is no cache, never a
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

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);
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
