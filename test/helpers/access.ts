import { readAccessToken } from '../../src/access/access-token.js';

// Test daemons by origin, so helpers given only a URL can send that daemon's local access token, as
// a client configured with `mcp-bridge clients` would.
const tokens = new Map<string, () => string | undefined>();

export function rememberToken(url: string, token: () => string | undefined): void {
  tokens.set(new URL(url).origin, token);
}

/** For a daemon run by the CLI: its token is read from the config dir at each use (it may rotate). */
export function rememberTokenFile(url: string, configDir: string | undefined): void {
  if (configDir) rememberToken(url, () => readAccessToken(configDir));
}

/**
 * The headers a configured local client sends to a test daemon (its local access token). Use these
 * on every raw request to `/mcp`, `/status` or the login API of a daemon started by the helpers.
 */
export function authHeaders(daemon: { readonly url: string } | string): Record<string, string> {
  const url = typeof daemon === 'string' ? daemon : daemon.url;
  const token = tokens.get(new URL(url).origin)?.();
  return token ? { authorization: `Bearer ${token}` } : {};
}
