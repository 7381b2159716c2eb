import { assertProven, findLocalDaemon, getJson, type LocalDaemon } from '../access/local-daemon.js';
import { loadConfig } from '../config/load.js';
import type { BridgeConfig } from '../config/schema.js';
import { runningDaemon, whileNoDaemon } from '../daemon-lock.js';
import { BridgeError, ERROR_CODES, type ErrorCode } from '../errors.js';
import { createSilentLogger } from '../log.js';
import { type ConnectorInfo, OAuthStore } from '../public/oauth-store.js';
import { parseCommandArgs } from './args.js';

/** What GET /connectors answers (connector-api.ts). */
interface ConnectorList {
  readonly public: { readonly url: string; readonly exposes: readonly string[] } | null;
  readonly connectors: readonly ConnectorInfo[];
}

/** The connectors, either in the running daemon or, when it is stopped, in connectors.json. */
interface Connectors {
  /** True when a daemon answers: a revocation also ends its sessions at once. */
  readonly live: boolean;
  list(): Promise<ConnectorList>;
  /** The ids that had a registration, grant or token; CONNECTOR_NOT_FOUND for one unknown id. */
  revoke(target: { clientId: string } | { all: true }): Promise<string[]>;
}

const USAGE =
  'connectors: expected "mcp-bridge connectors list [--json]" or "mcp-bridge connectors revoke <client-id> | --all"';
const DOCS_HINT = 'see docs/connectors.md';

/** `mcp-bridge connectors list | revoke`: the hosted connectors (ChatGPT, claude.ai) the owner approved. */
export async function runConnectors(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'connectors',
    argv,
    { json: { type: 'boolean' }, all: { type: 'boolean' }, config: { type: 'string', short: 'c' } },
    true,
  );
  const [action, ...rest] = positionals;
  const json = values.json === true;
  if (action === 'list' && rest.length === 0 && values.all !== true) {
    const config = loadConfig({ configPath: values.config });
    return withConnectors(config, (connectors) => list(connectors, json));
  }
  if (action === 'revoke' && (values.all === true ? rest.length === 0 : rest.length === 1)) {
    const target = values.all === true ? ({ all: true } as const) : { clientId: rest[0] as string };
    const config = loadConfig({ configPath: values.config });
    return withConnectors(config, (connectors) => revoke(connectors, target, json));
  }
  throw new BridgeError('USAGE', USAGE);
}

async function list(connectors: Connectors, json: boolean): Promise<number> {
  const found = await connectors.list();
  if (json) {
    out(JSON.stringify({ daemonRunning: connectors.live, ...found }, null, 2));
    return 0;
  }
  if (!connectors.live) out('The daemon is not running: these are the connectors in connectors.json.');
  out(
    found.public
      ? `public: ${found.public.url} exposes ${found.public.exposes.join(', ') || 'no upstreams'}`
      : `public: none (public.url is not set; ${DOCS_HINT})`,
  );
  if (found.connectors.length === 0) {
    out(
      found.public
        ? `no connectors yet: add ${found.public.url} as a connector in ChatGPT or claude.ai (${DOCS_HINT})`
        : `no connectors yet (${DOCS_HINT})`,
    );
    return 0;
  }
  out(table(found.connectors));
  return 0;
}

async function revoke(
  connectors: Connectors,
  target: { clientId: string } | { all: true },
  json: boolean,
): Promise<number> {
  const before = (await connectors.list()).connectors;
  const revoked = await connectors.revoke(target);
  if (json) {
    out(JSON.stringify({ daemonRunning: connectors.live, revoked }, null, 2));
    return 0;
  }
  const effect = connectors.live
    ? 'its grants and tokens no longer work, its sessions have ended'
    : 'removed from connectors.json (the daemon is not running; it reads the change when it starts)';
  for (const id of revoked) {
    const info = before.find((c) => c.clientId === id);
    const what = info
      ? `${info.clientName ?? '(unnamed)'} (${info.redirectHosts.join(', ') || 'no redirect'})`
      : '';
    out(`revoked ${id} ${what}: ${effect}`);
  }
  if ('all' in target) out(`${revoked.length} connector(s) revoked`);
  return 0;
}

/**
 * Runs `work` against the daemon when one answers. Only when no daemon runs with this config dir
 * (its lock says so) is connectors.json read or changed directly, under that lock: a running daemon
 * holds the file in memory and would write over a change made behind its back.
 */
async function withConnectors<T>(config: BridgeConfig, work: (c: Connectors) => Promise<T>): Promise<T> {
  const record = await runningDaemon(config.configDir);
  // The daemon of this config dir may listen elsewhere than the config says (port 0, a changed port).
  const target = record?.port
    ? { host: record.host, port: record.port, configDir: config.configDir }
    : config;
  const daemon = await findLocalDaemon(target);
  if (daemon) {
    // Without its proof, a program on the port could claim a revocation it never made.
    assertProven(daemon, config.auth);
    return work(daemonConnectors(daemon));
  }
  const outcome = await whileNoDaemon(config.configDir, async () =>
    work(fileConnectors(config, await OAuthStore.open(config.configDir, createSilentLogger()))),
  );
  if (outcome.ran) return outcome.value;
  const { pid, host, port } = outcome.running;
  throw new BridgeError(
    'DAEMON_UNREACHABLE',
    port === null
      ? `the daemon (pid ${pid}) is still starting; try again in a moment`
      : `the daemon (pid ${pid}) runs but does not answer at ${host}:${port}; connectors.json was left alone (the daemon would write over a change). Check it with "mcp-bridge status"`,
    { details: { pid, port } },
  );
}

function daemonConnectors(daemon: LocalDaemon): Connectors {
  return {
    live: true,
    list: () => getJson<ConnectorList>(daemon, '/connectors'),
    async revoke(target) {
      const response = await daemon.fetch('/connectors/revoke', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(target),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await response.json().catch(() => ({}))) as {
        revoked?: string[];
        error?: { message?: string; data?: { code?: string } };
      };
      if (response.ok && Array.isArray(body.revoked)) return body.revoked;
      const code = body.error?.data?.code;
      throw new BridgeError(
        code && code in ERROR_CODES ? (code as ErrorCode) : 'DAEMON_UNREACHABLE',
        body.error?.message ?? `the daemon answered /connectors/revoke with HTTP ${response.status}`,
      );
    },
  };
}

function fileConnectors(config: BridgeConfig, store: OAuthStore): Connectors {
  const pub = config.public;
  return {
    live: false,
    async list() {
      return {
        public: pub
          ? {
              url: `${pub.url}${config.mcpPath}`,
              exposes: [...(pub.upstreams ?? config.upstreams.map((u) => u.name))],
            }
          : null,
        connectors: store.connectors(),
      };
    },
    async revoke(target) {
      const ids = 'all' in target ? store.connectors().map((c) => c.clientId) : [target.clientId];
      const revoked: string[] = [];
      for (const id of ids) if (await store.revoke(id)) revoked.push(id);
      await store.flush();
      if ('clientId' in target && revoked.length === 0) {
        throw new BridgeError(
          'CONNECTOR_NOT_FOUND',
          `no connector has the client id "${target.clientId}"; mcp-bridge connectors list shows them`,
        );
      }
      return revoked;
    },
  };
}

function table(connectors: readonly ConnectorInfo[]): string {
  const rows = [
    ['NAME', 'CLIENT ID', 'REDIRECT HOST', 'CREATED', 'LAST USED', 'SCOPES'],
    ...connectors.map((c) => [
      c.clientName ?? '(unnamed)',
      c.clientId,
      c.redirectHosts.join(', ') || '-',
      when(c.createdAt),
      when(c.lastUsedAt, 'never'),
      c.scopes.join(' ') || '-',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Local time to the minute: for people reading a table. */
function when(ms: number | undefined, none = '-'): string {
  if (ms === undefined) return none;
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}
