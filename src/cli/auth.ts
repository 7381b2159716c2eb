import { createServer, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { assertProven, findLocalDaemon, getJson, type LocalDaemon } from '../access/local-daemon.js';
import { LoginFlows, type LoginStatus, loginTarget } from '../auth/login.js';
import { OAuthManager } from '../auth/oauth-manager.js';
import { TokenStore } from '../auth/token-store.js';
import { loadConfig } from '../config/load.js';
import {
  type BridgeConfig,
  type HttpUpstreamConfig,
  isLoopbackHostname,
  usesOAuth,
} from '../config/schema.js';
import { BridgeError, errorMessage } from '../errors.js';
import { createSilentLogger } from '../log.js';
import { hostGuard } from '../server/guards.js';
import { CALLBACK_PATH, callbackHandler, loopbackRedirectUri } from '../server/oauth-routes.js';
import type { Status } from '../server/status.js';
import { parseCommandArgs } from './args.js';

const POLL_MS = 300;

/**
 * `mcp-bridge auth [NAME...]`: logs in to OAuth upstreams. With a daemon running, the login runs
 * inside it (its /oauth/callback receives the browser, and it uses the tokens at once); without
 * one, this command serves the same callback address itself and writes the token file under lock.
 */
export async function runAuth(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgsWithNames(argv);
  const config = loadConfig({ configPath: values.config });
  const timeoutMs = parseTimeout(values.timeout);
  const open = values['no-open'] !== true;
  const daemon = await findLocalDaemon(config);
  // A browser is only ever opened on a URL from a daemon that proved it is ours.
  if (daemon) assertProven(daemon, config.auth);
  const httpUpstreams = config.upstreams.filter((u): u is HttpUpstreamConfig => u.kind === 'http');

  let names = positionals;
  if (names.length === 0) {
    names = daemon ? await namesNeedingLogin(daemon) : await namesWithoutTokens(config, httpUpstreams);
    if (names.length === 0) {
      out(
        httpUpstreams.length === 0
          ? 'No remote (url) upstreams are configured; nothing to log in to.'
          : 'Every OAuth upstream is logged in; nothing to do. (Name one to log in again: mcp-bridge auth NAME)',
      );
      return 0;
    }
  }
  const targets = names.map((name) => {
    const target = loginTarget(httpUpstreams, config.upstreams, name);
    if (target instanceof BridgeError) throw target;
    return target;
  });

  let failures = 0;
  for (const target of targets) {
    try {
      if (daemon) await loginThroughDaemon(daemon, target, { open, timeoutMs });
      else await loginLocally(config, target, { open, timeoutMs });
    } catch (error) {
      failures++;
      process.stderr.write(`mcp-bridge auth: ${target.name}: ${errorMessage(error)}\n`);
    }
  }
  return failures === 0 ? 0 : 1;
}

function parseArgsWithNames(argv: string[]) {
  return parseCommandArgs(
    'auth',
    argv,
    {
      'no-open': { type: 'boolean' },
      timeout: { type: 'string' },
      config: { type: 'string', short: 'c' },
    },
    true,
  );
}

function parseTimeout(value: string | undefined): number {
  if (value === undefined) return 5 * 60_000;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new BridgeError('USAGE', `auth: --timeout must be a number of seconds, got "${value}"`);
  }
  return seconds * 1000;
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function namesNeedingLogin(daemon: LocalDaemon): Promise<string[]> {
  const status = await getJson<Status>(daemon, '/status');
  return status.upstreams.filter((u) => u.state === 'needs_auth').map((u) => u.name);
}

async function namesWithoutTokens(
  config: BridgeConfig,
  upstreams: readonly HttpUpstreamConfig[],
): Promise<string[]> {
  const state = await new TokenStore(config.configDir, createSilentLogger()).read();
  return upstreams
    .filter(usesOAuth)
    .filter((u) => state.tokens[u.name]?.serverUrl !== u.url)
    .map((u) => u.name);
}

interface LoginOptions {
  readonly open: boolean;
  readonly timeoutMs: number;
}

async function showAuthorizationUrl(name: string, url: string, open: boolean): Promise<void> {
  out(`Log in to "${name}" by opening this URL in a browser:`);
  // On its own line, so it can be copied from an SSH session or a headless machine.
  out(url);
  if (open) {
    try {
      const { default: openUrl } = await import('open');
      await openUrl(url);
    } catch (error) {
      out(`(could not open a browser: ${errorMessage(error)}; open the URL yourself)`);
    }
  }
  out('Waiting for the browser to come back… (Ctrl-C to cancel)');
}

async function loginThroughDaemon(
  daemon: LocalDaemon,
  target: HttpUpstreamConfig,
  options: LoginOptions,
): Promise<void> {
  const { name } = target;
  const response = await daemon.fetch('/oauth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ upstream: name }),
    signal: AbortSignal.timeout(60_000),
  });
  const body = (await response.json()) as {
    authorizationUrl?: string;
    state?: string;
    issuer?: string;
    error?: string | { message?: string };
  };
  if (!response.ok || !body.authorizationUrl || !body.state) {
    const why = typeof body.error === 'string' ? body.error : body.error?.message;
    throw new BridgeError('LOGIN_FAILED', why ?? `the daemon answered HTTP ${response.status}`);
  }
  checkAuthorizationUrl(body.authorizationUrl, body.issuer);
  await showAuthorizationUrl(name, body.authorizationUrl, options.open);
  const state = body.state;
  const final = await waitForLogin(options.timeoutMs, async () => {
    const poll = await daemon.fetch(`/oauth/login/${encodeURIComponent(state)}`, {
      signal: AbortSignal.timeout(5000),
    });
    if (poll.status === 404)
      throw new BridgeError('LOGIN_FAILED', 'the daemon forgot this login (was it restarted?)');
    return (await poll.json()) as LoginStatus;
  });
  reportLogin(final);
  // The daemon reconnects at once; say how that went.
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const status = await getJson<Status>(daemon, '/status');
    const upstream = status.upstreams.find((u) => u.name === name);
    if (upstream?.state === 'ready') {
      out(`"${name}" is ready in the daemon (${upstream.toolCount} tools).`);
      return;
    }
    if (upstream && (upstream.state === 'failed' || upstream.state === 'needs_auth')) {
      throw new BridgeError(
        'LOGIN_FAILED',
        `logged in, but the daemon's connection is ${upstream.state}: ${upstream.lastError?.message ?? 'no error recorded'}`,
      );
    }
    await sleep(POLL_MS);
  }
  out(`"${name}" is not ready yet; check with: mcp-bridge status`);
}

/**
 * The browser is opened only on the authorization server the daemon discovered: an http(s) URL on
 * the issuer's origin (or, for servers whose endpoints live elsewhere, at least not a loopback
 * address unless the issuer is one too). Defence in depth: the daemon already proved who it is.
 */
function checkAuthorizationUrl(url: string, issuer: string | undefined): void {
  let target: URL;
  let expected: URL;
  try {
    target = new URL(url);
    expected = new URL(issuer ?? '');
  } catch {
    throw new BridgeError(
      'LOGIN_FAILED',
      'the daemon returned an authorization URL that cannot be checked; not opening it',
    );
  }
  const secure =
    target.protocol === 'https:' || (target.protocol === 'http:' && isLoopbackHostname(target.hostname));
  if (!secure || target.origin !== expected.origin) {
    throw new BridgeError(
      'LOGIN_FAILED',
      `the authorization URL (${target.origin}) is not on the authorization server the daemon discovered (${expected.origin}); not opening it`,
    );
  }
}

async function loginLocally(
  config: BridgeConfig,
  target: HttpUpstreamConfig,
  options: LoginOptions,
): Promise<void> {
  const logger = createSilentLogger();
  const manager = new OAuthManager(new TokenStore(config.configDir, logger), logger);
  const flows = new LoginFlows(manager, logger);
  const app = express();
  app.use(hostGuard(config.allowedHosts));
  app.get(CALLBACK_PATH, callbackHandler(flows, logger));
  const server = await listenForCallback(app, config);
  try {
    const redirectUri = target.oauth.redirectUri ?? loopbackRedirectUri(config.host, config.port);
    const { url, state, issuer } = await flows.begin(target, redirectUri);
    checkAuthorizationUrl(url, issuer);
    await showAuthorizationUrl(target.name, url, options.open);
    const final = await waitForLogin(options.timeoutMs, async () => {
      const status = flows.status(state);
      if (!status) throw new BridgeError('LOGIN_FAILED', 'the login expired');
      return status;
    });
    reportLogin(final);
    out('The daemon is not running; it will use the login when it starts (npm start).');
  } finally {
    manager.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function listenForCallback(app: express.Express, config: BridgeConfig): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(app);
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new BridgeError(
          'PORT_IN_USE',
          error.code === 'EADDRINUSE'
            ? `cannot receive the login callback: port ${config.port} on ${config.host} is in use by something that is not mcp-bridge`
            : `cannot listen on ${config.host}:${config.port} for the login callback: ${error.message}`,
          { cause: error },
        ),
      ),
    );
    server.listen(config.port, config.host, () => resolve(server));
  });
}

async function waitForLogin(timeoutMs: number, poll: () => Promise<LoginStatus>): Promise<LoginStatus> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await poll();
    if (status.status === 'done' || status.status === 'failed') return status;
    await sleep(POLL_MS);
  }
  throw new BridgeError(
    'LOGIN_FAILED',
    `no answer from the browser within ${Math.round(timeoutMs / 1000)} s; run the command again (--timeout SECONDS to wait longer)`,
  );
}

function reportLogin(status: LoginStatus): void {
  if (status.status === 'failed') throw new BridgeError('LOGIN_FAILED', status.error);
  if (status.status === 'done')
    out(`Logged in to "${status.upstream}"${status.scope ? ` (scope: ${status.scope})` : ''}.`);
}
