import type { Client, Tool } from '@modelcontextprotocol/client';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { LiveConnection } from './connection.js';
import type { Listed, SnapshotPatch, UpstreamSnapshot } from './state.js';

/** The lists an upstream serves besides tools, with the capability that announces each. */
const LISTS = [
  { method: 'prompts/list', key: 'prompts', capability: 'prompts' },
  { method: 'resources/list', key: 'resources', capability: 'resources' },
  { method: 'resources/templates/list', key: 'resourceTemplates', capability: 'resources' },
] as const;
type ListKey = (typeof LISTS)[number]['key'];

const PageSchema = z.looseObject({ nextCursor: z.string().optional() });
const MAX_TOOL_PAGES = 1000;

/** Every page of tools/list, raw (unknown fields kept). */
export async function listTools(client: Client, timeoutMs: number, log: Logger): Promise<Tool[]> {
  return (await listAll(client, 'tools/list', 'tools', timeoutMs, log)) as unknown as Tool[];
}

/** Prompts, resources and templates, for the lists the server's capabilities announce. */
export async function listOthers(
  client: Client,
  timeoutMs: number,
  log: Logger,
): Promise<Partial<Record<ListKey, Listed[]>>> {
  const capabilities = (client.getServerCapabilities() ?? {}) as Record<string, unknown>;
  const lists: Partial<Record<ListKey, Listed[]>> = {};
  for (const { method, key, capability } of LISTS) {
    if (!capabilities[capability]) continue;
    try {
      lists[key] = await listAll(client, method, key, timeoutMs, log);
    } catch (error) {
      // A server may announce resources but not implement templates: one list failing is no reason
      // to refuse the others.
      log.warn({ method, err: errorMessage(error) }, 'could not list; serving it as empty');
      lists[key] = [];
    }
  }
  return lists;
}

/** Every page of a list method, raw (unknown fields kept). */
async function listAll(
  client: Client,
  method: string,
  key: string,
  timeoutMs: number,
  log: Logger,
): Promise<Listed[]> {
  const items: Listed[] = [];
  const seen = new Set<string>();
  let cursor: string | undefined;
  for (let page = 0; page < MAX_TOOL_PAGES; page++) {
    const result = await client.request(
      { method, params: cursor === undefined ? {} : { cursor } },
      PageSchema,
      { timeout: timeoutMs },
    );
    const pageItems = (result as Record<string, unknown>)[key];
    if (!Array.isArray(pageItems)) throw new Error(`${method} answered without "${key}"`);
    items.push(...(pageItems as Listed[]));
    cursor = result.nextCursor;
    if (cursor === undefined) return items;
    if (seen.has(cursor)) break;
    seen.add(cursor);
  }
  log.warn({ method, pages: MAX_TOOL_PAGES }, 'pagination did not end; keeping what was listed');
  return items;
}

export interface ListRefresherHost {
  readonly log: Logger;
  /** Budget of each list request. */
  readonly timeoutMs: number;
  snapshot(): UpstreamSnapshot;
  update(patch: SnapshotPatch): void;
}

/** Reads a ready upstream's lists again (after list_changed, or a subscriptions/listen stream came back). */
export class ListRefresher {
  private seq = 0;

  constructor(private readonly host: ListRefresherHost) {}

  async refreshTools({ client, generation }: LiveConnection): Promise<void> {
    const { host } = this;
    const seq = ++this.seq;
    try {
      const tools = await listTools(client, host.timeoutMs, host.log);
      // A newer refresh started meanwhile: its answer is at least as fresh as this one.
      if (seq !== this.seq || !generation.live || host.snapshot().state !== 'ready') return;
      host.log.info({ tools: tools.length }, 'upstream tool list changed');
      host.update({ tools, toolsSource: 'live' });
    } catch (error) {
      host.log.warn({ err: errorMessage(error) }, 'could not refresh the tool list after list_changed');
    }
  }

  async refreshLists({ client, generation }: LiveConnection): Promise<void> {
    const { host } = this;
    const lists = await listOthers(client, host.timeoutMs, host.log);
    if (!generation.live || host.snapshot().state !== 'ready') return;
    host.log.info('upstream prompt or resource list changed');
    host.update(lists);
  }
}
