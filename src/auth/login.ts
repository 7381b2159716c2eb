import { resolveOpRefs } from '../config/op-refs.js';
import { type HttpUpstreamConfig, type UpstreamConfig, usesOAuth } from '../config/schema.js';
import { BridgeError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { type Discovery, discover, probeChallenge } from './discovery.js';
import { authorizationRequest, exchangeCode } from './grants.js';
import { type OAuthManager, unionScopes } from './oauth-manager.js';
import { type Registration, type ResolvedClient, resolveClient } from './registration.js';

/** A login waits this long for the browser to come back. */
const LOGIN_TTL_MS = 10 * 60_000;

export type LoginStatus =
  | { readonly status: 'pending' | 'exchanging'; readonly upstream: string }
  | { readonly status: 'done'; readonly upstream: string; readonly scope?: string | undefined }
  | { readonly status: 'failed'; readonly upstream: string; readonly error: string };

interface Flow {
  readonly config: HttpUpstreamConfig;
  readonly discovery: Discovery;
  readonly client: ResolvedClient & { registration?: Registration };
  readonly redirectUri: string;
  readonly codeVerifier: string;
  readonly state: string;
  readonly createdAt: number;
  status: LoginStatus;
}

/**
 * Interactive logins in progress, keyed by their `state`. The same code runs inside the daemon
 * (callback at the daemon's /oauth/callback) and inside `mcp-bridge auth` when no daemon is running.
 */
export class LoginFlows {
  private readonly flows = new Map<string, Flow>();

  constructor(
    private readonly manager: OAuthManager,
    private readonly log: Logger,
  ) {}

  /** Discovers, registers if needed, and returns the authorization URL to open. */
  async begin(
    configured: HttpUpstreamConfig,
    redirectUri: string,
  ): Promise<{ url: string; state: string; issuer: string }> {
    this.expire();
    const config = (await resolveOpRefs(configured)) as HttpUpstreamConfig;
    const challenge = await probeChallenge(config.url);
    const discovery = await discover(config.url, challenge);
    const registered = await this.manager.registeredClient(discovery.issuer, redirectUri);
    const client = await resolveClient(discovery, config.oauth, redirectUri, registered);
    // Configured scopes, else what the server asked for, else all it supports; plus any step-up.
    const base =
      config.oauth.scopes?.join(' ') ??
      unionScopes(challenge?.scope, this.manager.challengeScope(config.name)) ??
      discovery.scopesSupported?.join(' ');
    const scope = unionScopes(base, this.manager.stepUpScope(config.name));
    const request = await authorizationRequest(discovery, client.client, redirectUri, scope);
    this.flows.set(request.state, {
      config,
      discovery,
      client,
      redirectUri,
      codeVerifier: request.codeVerifier,
      state: request.state,
      createdAt: Date.now(),
      status: { status: 'pending', upstream: config.name },
    });
    this.log.info(
      { upstream: config.name, issuer: discovery.issuer, client: client.source, scope },
      'login started; waiting for the browser',
    );
    return { url: request.url, state: request.state, issuer: discovery.issuer };
  }

  /** Handles the browser's return to the redirect URI. Resolves with the upstream logged in. */
  async complete(params: URLSearchParams): Promise<{ upstream: string }> {
    this.expire();
    const state = params.get('state') ?? '';
    const flow = this.flows.get(state);
    if (flow?.status.status !== 'pending') {
      throw new BridgeError(
        'OAUTH_CALLBACK_INVALID',
        'this callback does not belong to a login in progress (unknown or expired "state"); run `npm run auth` again',
      );
    }
    const upstream = flow.config.name;
    // Claimed before the first await: a reloaded or prefetched callback must not spend the code twice.
    flow.status = { status: 'exchanging', upstream };
    try {
      const tokens = await exchangeCode({
        authServer: flow.discovery.authServer,
        client: flow.client,
        callback: params,
        state: flow.state,
        redirectUri: flow.redirectUri,
        codeVerifier: flow.codeVerifier,
        resource: flow.discovery.resource,
      });
      await this.manager.saveLogin(flow.config, flow.discovery, flow.client, tokens, flow.redirectUri);
      flow.status = { status: 'done', upstream, scope: tokens.scope };
      return { upstream };
    } catch (error) {
      flow.status = { status: 'failed', upstream, error: errorMessage(error) };
      this.log.warn({ upstream, err: errorMessage(error) }, 'login failed');
      throw error;
    }
  }

  /** The state of a login started with `begin`. */
  status(state: string): LoginStatus | undefined {
    this.expire();
    return this.flows.get(state)?.status;
  }

  private expire(): void {
    const now = Date.now();
    for (const [state, flow] of this.flows) {
      if (now - flow.createdAt > LOGIN_TTL_MS) this.flows.delete(state);
    }
  }
}

/** The http upstream `name`, if it can log in with OAuth; otherwise an error saying why not. */
export function loginTarget(
  httpUpstreams: readonly HttpUpstreamConfig[],
  all: readonly UpstreamConfig[],
  name: string,
): HttpUpstreamConfig | BridgeError {
  const config = httpUpstreams.find((u) => u.name === name);
  if (config) {
    if (usesOAuth(config)) return config;
    return new BridgeError(
      'USAGE',
      `upstream "${name}" uses a configured Authorization header; it has no OAuth login`,
    );
  }
  const known = all.map((u) => u.name);
  return new BridgeError(
    'USAGE',
    all.some((u) => u.name === name)
      ? `upstream "${name}" is a stdio server; only remote (url) servers log in with OAuth`
      : `no upstream named "${name}" in the config (configured: ${known.join(', ') || 'none'})`,
  );
}
