import { assertProven, findLocalDaemon, getJson, type LocalDaemon } from '../access/local-daemon.js';
import { loadConfig } from '../config/load.js';
import type { BridgeConfig } from '../config/schema.js';
import { type DaemonRecord, runningDaemon, whileNoDaemon } from '../daemon-lock.js';
import { BridgeError, ERROR_CODES, type ErrorCode } from '../errors.js';
import { createSilentLogger } from '../log.js';
import type { Lockout, UnlockAnswer } from '../public/connector-api.js';
import { type ConnectorInfo, OAuthStore } from '../public/oauth-store.js';
import { parseCommandArgs } from './args.js';

/** What GET /connectors answers (connector-api.ts). */
interface ConnectorList {
  readonly public: { readonly url: string; readonly exposes: readonly string[] } | null;
  readonly connectors: readonly ConnectorInfo[];
  /** Absent from a daemon older than `connectors unlock`. */
  readonly lockout?: Lockout;
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
  'connectors: expected "mcp-bridge connectors list [--json]", "mcp-bridge connectors revoke <client-id> | --all" or "mcp-bridge connectors unlock [--json]"';
const DOCS_HINT = 'see docs/connectors.md';

/**
 * `mcp-bridge connectors list | revoke | unlock`: the hosted connectors (ChatGPT, claude.ai) the
 * owner approved, and the lock that wrong passwords put on the consent page.
 */
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
  if (action === 'unlock' && rest.length === 0 && values.all !== true) {
    return unlock(loadConfig({ configPath: values.config }), json);
  }
  throw new BridgeError('USAGE', USAGE);
}

async function list(connectors: Connectors, json: boolean): Promise<number> {
  const found = await connectors.list();
  if (json) {
    out(
      JSON.stringify({ daemonRunning: connectors.live, ...found, lockout: found.lockout ?? null }, null, 2),
    );
    return 0;
  }
  if (!connectors.live) out('The daemon is not running: these are the connectors in connectors.json.');
  out(
    found.public
      ? `public: ${found.public.url} exposes ${found.public.exposes.join(', ') || 'no upstreams'}`
      : `public: none (public.url is not set; ${DOCS_HINT})`,
  );
  if (found.lockout) {
    out(
      found.lockout.locked
        ? `consent page: LOCKED for ${seconds(found.lockout.lockedForS)} more (too many wrong passwords); "mcp-bridge connectors unlock" clears it`
        : 'consent page: not locked',
    );
  }
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

/** Clears the consent page's lock in the running daemon; without one there is no lock to clear. */
async function unlock(config: BridgeConfig, json: boolean): Promise<number> {
  const daemon = await reachDaemon(config);
  if (!daemon) {
    const running = await runningDaemon(config.configDir);
    if (running) throw unreachable(running, 'nothing was unlocked');
  }
  const answer: UnlockAnswer = daemon
    ? await postJson<UnlockAnswer>(daemon, '/connectors/unlock', {})
    : { public: config.public !== undefined, wasLocked: false, lockedForS: 0, failures: 0 };
  if (json) {
    out(JSON.stringify({ daemonRunning: daemon !== undefined, ...answer }, null, 2));
    return 0;
  }
  out(
    !daemon
      ? "the daemon is not running: there is nothing to unlock (the count of wrong passwords lives in the daemon's memory; it starts with none)"
      : !answer.public
        ? `there is no public listener (public.url is not set), so there is no consent page to unlock (${DOCS_HINT})`
        : answer.wasLocked
          ? `unlocked: the consent page was locked for ${seconds(answer.lockedForS)} more after ${answer.failures} wrong passwords; it accepts the owner password again.\nIf those were not your typos, someone knows your public URL: consider a new owner password and "mcp-bridge connectors revoke --all".`
          : `the consent page was not locked: nothing to unlock${answer.failures > 0 ? ` (${answer.failures} recent wrong password(s) forgotten)` : ''}`,
  );
  return 0;
}

/** The daemon of this config dir if one answers, proven when the config asks for the token. */
async function reachDaemon(config: BridgeConfig): Promise<LocalDaemon | undefined> {
  const record = await runningDaemon(config.configDir);
  // The daemon of this config dir may listen elsewhere than the config says (port 0, a changed port).
  const target = record?.port
    ? { host: record.host, port: record.port, configDir: config.configDir }
    : config;
  const daemon = await findLocalDaemon(target);
  // Without its proof, a program on the port could claim a revocation or an unlock it never made.
  if (daemon) assertProven(daemon, config.auth);
  return daemon;
}

function unreachable({ pid, host, port }: DaemonRecord, leftAlone: string): BridgeError {
  return new BridgeError(
    'DAEMON_UNREACHABLE',
    port === null
      ? `the daemon (pid ${pid}) is still starting; try again in a moment`
      : `the daemon (pid ${pid}) runs but does not answer at ${host}:${port}; ${leftAlone}. Check it with "mcp-bridge status"`,
    { details: { pid, port } },
  );
}

/**
 * Runs `work` against the daemon when one answers. Only when no daemon runs with this config dir
 * (its lock says so) is connectors.json read or changed directly, under that lock: a running daemon
 * holds the file in memory and would write over a change made behind its back.
 */
async function withConnectors<T>(config: BridgeConfig, work: (c: Connectors) => Promise<T>): Promise<T> {
  const daemon = await reachDaemon(config);
  if (daemon) return work(daemonConnectors(daemon));
  const outcome = await whileNoDaemon(config.configDir, async () =>
    work(fileConnectors(config, await OAuthStore.open(config.configDir, createSilentLogger()))),
  );
  if (outcome.ran) return outcome.value;
  throw unreachable(outcome.running, 'connectors.json was left alone (the daemon would write over a change)');
}

function daemonConnectors(daemon: LocalDaemon): Connectors {
  return {
    live: true,
    list: () => getJson<ConnectorList>(daemon, '/connectors'),
    async revoke(target) {
      const { revoked } = await postJson<{ revoked?: unknown }>(daemon, '/connectors/revoke', target);
      if (Array.isArray(revoked)) return revoked as string[];
      throw new BridgeError('DAEMON_UNREACHABLE', 'the daemon answered /connectors/revoke without "revoked"');
    },
  };
}

/** A POST to the daemon: its answer, or its error with the daemon's own code and message. */
async function postJson<T>(daemon: LocalDaemon, path: string, body: unknown): Promise<T> {
  const response = await daemon.fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const answer = (await response.json().catch(() => ({}))) as T & {
    error?: { message?: string; data?: { code?: string } };
  };
  if (response.ok) return answer;
  const code = answer.error?.data?.code;
  // A daemon started by an older mcp-bridge has the route of no newer command.
  if (code === 'ROUTE_NOT_FOUND') {
    throw new BridgeError(
      'DAEMON_UNREACHABLE',
      `the running daemon is older than this mcp-bridge and has no ${path}: restart it`,
    );
  }
  throw new BridgeError(
    code && code in ERROR_CODES ? (code as ErrorCode) : 'DAEMON_UNREACHABLE',
    answer.error?.message ?? `the daemon answered ${path} with HTTP ${response.status}`,
  );
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

/** "14 min 3 s", "45 s": how long a lock lasts, for people. */
function seconds(s: number): string {
  const min = Math.floor(s / 60);
  return min > 0 ? `${min} min ${s % 60} s` : `${s} s`;
}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}
