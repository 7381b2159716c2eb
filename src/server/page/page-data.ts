import { clientSnippets } from '../../cli/clients.js';
import type { ConnectorInfo } from '../../public/oauth-store.js';
import type { SessionClient } from '../legacy-sessions.js';
import type { Status } from '../status.js';
import { fixFor } from './fixes.js';

/**
 * Stands for the access token in the page's client snippets. The token itself is never in the
 * page or its data: a page is easier to leak (a screenshot, a shared screen, a browser extension)
 * than a file only its owner can read, and `mcp-bridge clients` prints the snippets with it.
 */
export const TOKEN_PLACEHOLDER = '<ACCESS_TOKEN>';

export interface PageDataSources {
  /** What GET /status answers. */
  readonly status: () => Status;
  /** The open 2025 sessions' clients. */
  readonly clients: () => readonly SessionClient[];
  /** The public listener's connectors, when there is one. */
  readonly connectors?: (() => readonly ConnectorInfo[] | undefined) | undefined;
  /** The activity log's newest entries (ActivityEntry), oldest first. */
  readonly recentCalls?: (() => readonly unknown[]) | undefined;
  /** The loopback endpoint needs the access token. */
  readonly tokenRequired: boolean;
}

/** The JSON the page renders: the status, plus the fix for each failing upstream and the rest of the page. */
export function buildPageData(sources: PageDataSources, mcpUrl: string) {
  // Without uptimeMs: the page counts from startedAt, and the data changes only when something did.
  const { uptimeMs: _, ...status } = sources.status();
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    ...status,
    upstreams: status.upstreams.map((u) => ({ ...u, fix: fixFor(u) })),
    clients: sources.clients().map((c) => ({
      name: c.name ?? null,
      version: c.version ?? null,
      protocolVersion: c.protocolVersion ?? null,
      era: '2025',
      since: iso(c.since),
    })),
    connectors:
      sources.connectors?.()?.map((c) => ({
        clientId: c.clientId,
        clientName: c.clientName ?? null,
        redirectHosts: c.redirectHosts,
        createdAt: c.createdAt === undefined ? null : iso(c.createdAt),
        lastUsedAt: c.lastUsedAt === undefined ? null : iso(c.lastUsedAt),
        scopes: c.scopes,
        grants: c.grants,
      })) ?? null,
    recentCalls: sources.recentCalls ? sources.recentCalls().map(callOf).reverse() : null,
    tokenRequired: sources.tokenRequired,
    tokenPlaceholder: sources.tokenRequired ? TOKEN_PLACEHOLDER : null,
    snippets: clientSnippets(mcpUrl, sources.tokenRequired ? TOKEN_PLACEHOLDER : undefined),
  };
}

export type PageData = ReturnType<typeof buildPageData>;

/**
 * The fields of an activity entry the page shows, and only those: recorded arguments and results
 * (when `activityLog.arguments` is on) stay in the log file, and so does the session id.
 */
function callOf(entry: unknown) {
  const e = (entry ?? {}) as Record<string, unknown>;
  const client = (e.client ?? {}) as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === 'string' ? value : null);
  const num = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) ? value : null);
  return {
    time: text(e.time),
    kind: text(e.kind),
    client: { name: text(client.name), era: text(client.era), listener: text(client.listener) },
    name: text(e.name),
    original: text(e.original),
    upstream: text(e.upstream),
    durationMs: num(e.durationMs),
    outcome: text(e.outcome),
    errorCode: text(e.errorCode) ?? (typeof e.errorCode === 'number' ? String(e.errorCode) : null),
    resultBytes: num(e.resultBytes),
  };
}
