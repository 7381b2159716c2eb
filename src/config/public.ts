import { BridgeError } from '../errors.js';
import { isLoopbackHostname, type PublicFile } from './schema.js';

/** The default port of the public listener (the one a tunnel forwards to). */
export const DEFAULT_PUBLIC_PORT = 8770;
const HOUR = 60 * 60;

export interface PublicConfig {
  /** The tunnel's public base URL without a trailing slash: the OAuth issuer, byte for byte. */
  readonly url: string;
  readonly port: number;
  /** As written (a literal, `${env:X}` already expanded, or an `op://` reference); read at start. */
  readonly ownerPassword: string | undefined;
  /** Upstreams the public listener exposes; undefined means all. */
  readonly upstreams: readonly string[] | undefined;
  /** Exact redirect URIs allowed on top of the built-in ones. */
  readonly redirectUris: readonly string[];
  readonly accessTokenTtlSeconds: number;
  /** Sliding: every refresh starts it again. */
  readonly refreshTokenTtlSeconds: number;
}

/**
 * The public listener's settings from the file's `public` block and `MCP_BRIDGE_PUBLIC_URL` /
 * `MCP_BRIDGE_PUBLIC_PORT` (which win); undefined without a URL (no public listener). Throws
 * CONFIG_INVALID naming the key for a URL that cannot be an issuer or an unknown upstream.
 */
export function publicConfig(
  block: PublicFile | undefined,
  env: NodeJS.ProcessEnv,
  upstreamNames: readonly string[],
  file: string,
): PublicConfig | undefined {
  const fromEnv = env.MCP_BRIDGE_PUBLIC_URL || undefined;
  const raw = fromEnv ?? block?.url;
  if (raw === undefined) return undefined;
  const where = fromEnv ? 'MCP_BRIDGE_PUBLIC_URL' : `${file}: public.url`;
  const url = issuerUrl(raw, where);
  const port = publicPort(env.MCP_BRIDGE_PUBLIC_PORT, block?.port);
  const unknown = (block?.upstreams ?? []).filter((name) => !upstreamNames.includes(name));
  if (unknown.length > 0) {
    throw new BridgeError(
      'CONFIG_INVALID',
      `${file}: public.upstreams names ${unknown.map((n) => `"${n}"`).join(', ')}, not in mcpServers (known: ${upstreamNames.join(', ') || 'none'})`,
      { details: { file, key: 'public.upstreams' } },
    );
  }
  for (const [i, uri] of (block?.redirectUris ?? []).entries())
    redirectUri(uri, `${file}: public.redirectUris[${i}]`);
  return {
    url,
    port,
    ownerPassword: block?.ownerPassword,
    upstreams: block?.upstreams,
    redirectUris: block?.redirectUris ?? [],
    accessTokenTtlSeconds: block?.accessTokenTtlSeconds ?? HOUR,
    refreshTokenTtlSeconds: block?.refreshTokenTtlSeconds ?? 30 * 24 * HOUR,
  };
}

/** https (or http on a loopback host, for trials), an origin only: it is the issuer and the tunnel's root. */
function issuerUrl(raw: string, where: string): string {
  const url = URL.parse(raw);
  const problem = !url
    ? 'is not a URL'
    : url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHostname(url.hostname))
      ? 'must be https:// (a tunnel gives you one; http:// only on a loopback host, for trials)'
      : url.username || url.password
        ? 'must not hold a user name or password'
        : url.search || url.hash || raw.includes('#') || raw.includes('?')
          ? 'must not have a query or fragment'
          : url.pathname !== '/'
            ? "must be the tunnel's root (no path): the OAuth metadata lives at /.well-known/ of that origin"
            : undefined;
  if (problem || !url) {
    throw new BridgeError('CONFIG_INVALID', `${where} ${problem}, got "${raw}"`, {
      details: { key: 'public.url' },
    });
  }
  return url.origin;
}

function publicPort(fromEnv: string | undefined, fromFile: number | undefined): number {
  if (fromEnv === undefined || fromEnv === '') return fromFile ?? DEFAULT_PUBLIC_PORT;
  const port = Number(fromEnv);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new BridgeError(
      'CONFIG_INVALID',
      `MCP_BRIDGE_PUBLIC_PORT must be a port number 0-65535, got "${fromEnv}"`,
    );
  }
  return port;
}

function redirectUri(raw: string, where: string): void {
  const url = URL.parse(raw);
  if (
    !url ||
    (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHostname(url.hostname))) ||
    url.hash
  ) {
    throw new BridgeError(
      'CONFIG_INVALID',
      `${where} must be an https:// URL (or http:// on a loopback host) without a fragment, got "${raw}"`,
      { details: { key: 'public.redirectUris' } },
    );
  }
}
