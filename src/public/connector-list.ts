import type { AdapterPayload } from 'oidc-provider';
import type { Entry } from './store-file.js';

/** A connector as `mcp-bridge connectors list` shows it. */
export interface ConnectorInfo {
  readonly clientId: string;
  readonly clientName: string | undefined;
  readonly redirectHosts: readonly string[];
  /** Epoch ms. */
  readonly createdAt: number | undefined;
  readonly lastUsedAt: number | undefined;
  readonly scopes: readonly string[];
  /** Live grants (one per consent). */
  readonly grants: number;
}

/** Every connector with a registration or a live grant, oldest first. */
export function listConnectors(
  entries: Iterable<[string, Entry]>,
  lastUsed: ReadonlyMap<string, number>,
): ConnectorInfo[] {
  const byClient = new Map<string, { client?: AdapterPayload; grants: AdapterPayload[] }>();
  const at = (clientId: string) => {
    let found = byClient.get(clientId);
    if (!found) {
      found = { grants: [] };
      byClient.set(clientId, found);
    }
    return found;
  };
  for (const [key, entry] of entries) {
    if (key.startsWith('Client:')) at(String(entry.payload.client_id)).client = entry.payload;
    else if (key.startsWith('Grant:') && entry.payload.clientId)
      at(entry.payload.clientId).grants.push(entry.payload);
  }
  return [...byClient]
    .map(([clientId, { client, grants }]) => ({
      clientId,
      clientName: typeof client?.client_name === 'string' ? client.client_name : undefined,
      redirectHosts: [...new Set((client?.redirect_uris ?? []).map((uri) => URL.parse(uri)?.host ?? uri))],
      createdAt:
        typeof client?.client_id_issued_at === 'number'
          ? client.client_id_issued_at * 1000
          : grants.length > 0
            ? Math.min(...grants.map((g) => (g.iat ?? 0) * 1000))
            : undefined,
      lastUsedAt: lastUsed.get(clientId),
      scopes: [...new Set(grants.flatMap(grantScopes))].sort(),
      grants: grants.length,
    }))
    .sort((a, b) => (a.createdAt ?? 0) - (b.createdAt ?? 0));
}

function grantScopes(grant: AdapterPayload): string[] {
  const g = grant as { openid?: { scope?: string }; resources?: Record<string, string> };
  return [g.openid?.scope ?? '', ...Object.values(g.resources ?? {})]
    .flatMap((s) => s.split(' '))
    .filter(Boolean);
}
