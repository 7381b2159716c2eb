import type { HttpUpstreamConfig } from '../../src/config/schema.js';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders } from './access.js';
import { completeConsent } from './oauth-server.js';

/** An http upstream entry as loadConfig would produce it. */
export function httpUpstream(
  name: string,
  url: string,
  extra: Partial<HttpUpstreamConfig> = {},
): HttpUpstreamConfig {
  return {
    kind: 'http',
    name,
    url,
    headers: {},
    transport: 'streamable-http',
    oauth: {},
    callTimeoutMs: 10_000,
    ...extra,
  };
}

export function daemonBase(daemon: Pick<Daemon, 'port'>): string {
  return `http://127.0.0.1:${daemon.port}`;
}

/** Starts a login through the daemon's API, as `mcp-bridge auth` does; returns the authorization URL. */
export async function beginLogin(
  base: string,
  upstream: string,
): Promise<{ authorizationUrl: string; state: string }> {
  const response = await fetch(`${base}/oauth/login`, {
    method: 'POST',
    headers: { ...authHeaders(base), 'content-type': 'application/json' },
    body: JSON.stringify({ upstream }),
  });
  const body = (await response.json()) as { authorizationUrl?: string; state?: string; error?: string };
  if (!response.ok || !body.authorizationUrl || !body.state) {
    throw new Error(`login did not start: HTTP ${response.status} ${body.error ?? ''}`);
  }
  return { authorizationUrl: body.authorizationUrl, state: body.state };
}

/** The whole browser round trip: consent at the authorization server, then the bridge's callback page. */
export async function loginThroughDaemon(
  base: string,
  upstream: string,
): Promise<{ status: number; page: string }> {
  const { authorizationUrl } = await beginLogin(base, upstream);
  const callback = await completeConsent(authorizationUrl);
  const response = await fetch(callback);
  return { status: response.status, page: await response.text() };
}
