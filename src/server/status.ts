import type { TokenInfo } from '../auth/oauth-manager.js';
import type { UpstreamRegistry } from '../upstream/registry.js';
import { VERSION } from '../version.js';

export interface StatusInput {
  readonly registry: UpstreamRegistry;
  readonly sessions: number;
  /** Epoch ms. */
  readonly startedAt: number;
  /** Names that clashed between upstreams and how they were resolved. */
  readonly clashes?: readonly string[];
  /** Problems found at start (a config file others can write), for a person to fix. */
  readonly warnings?: readonly string[] | undefined;
  /** The public listener for connectors, when public.url is set. */
  readonly public?: PublicStatus | undefined;
  /** The OAuth upstreams' token times (never a token). */
  readonly tokens?: readonly TokenInfo[] | undefined;
}

/** What /status says of the public listener: what is exposed, and to how many connectors. */
export interface PublicStatus {
  /** The protected resource connectors use (public.url + mcpPath). */
  readonly url: string;
  readonly port: number;
  readonly exposes: readonly string[];
  readonly connectors: number;
}

/** The JSON of GET /status: the daemon and every upstream, as `mcp-bridge status` prints it. */
export function buildStatus(input: StatusInput) {
  const iso = (ms: number) => new Date(ms).toISOString();
  const { configError } = input.registry.reloadStatus;
  const tokens = new Map(input.tokens?.map((t) => [t.upstream, t]));
  const isoOrNull = (ms: number | undefined) => (ms === undefined ? null : iso(ms));
  return {
    version: VERSION,
    pid: process.pid,
    startedAt: iso(input.startedAt),
    uptimeMs: Date.now() - input.startedAt,
    sessions: input.sessions,
    clashes: input.clashes ?? [],
    warnings: input.warnings ?? [],
    // A saved config that did not load (the running one stays) and keys that wait for a restart.
    configError: configError ? { message: configError.message, at: iso(configError.at) } : null,
    restartNeeded: [...input.registry.reloadStatus.restartNeeded],
    public: input.public ?? null,
    upstreams: input.registry.snapshots().map((s) => ({
      name: s.name,
      kind: s.kind,
      state: s.state,
      since: iso(s.since),
      toolCount: s.tools.length,
      // null: not listed (yet); lists other than tools are read once the upstream is ready.
      promptCount: s.prompts?.length ?? null,
      resourceCount: s.resources?.length ?? null,
      resourceTemplateCount: s.resourceTemplates?.length ?? null,
      toolsSource: s.toolsSource,
      pid: s.pid ?? null,
      restarts: s.restarts,
      attempt: s.attempt,
      lastError: s.lastError ? { ...s.lastError, at: iso(s.lastError.at) } : null,
      lastExit: s.lastExit ? { ...s.lastExit, at: iso(s.lastExit.at) } : null,
      serverInfo: s.serverInfo ?? null,
      transport: s.transport ?? null,
      protocolVersion: s.protocolVersion ?? null,
      // What fixes needs_auth, so /status and `mcp-bridge status` can say it.
      action: s.state === 'needs_auth' ? `npm run auth -- ${s.name}` : null,
      oauth: oauthOf(tokens.get(s.name), isoOrNull),
    })),
  };
}

function oauthOf(info: TokenInfo | undefined, iso: (ms: number | undefined) => string | null) {
  if (!info) return null;
  const last = info.lastRefresh;
  return {
    loggedIn: info.loggedIn,
    expiresAt: iso(info.expiresAt),
    obtainedAt: iso(info.obtainedAt),
    refreshable: info.refreshable,
    lastRefresh: last ? { at: iso(last.at), outcome: last.outcome } : null,
  };
}

export type Status = ReturnType<typeof buildStatus>;
