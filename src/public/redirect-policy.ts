import { isLoopbackHostname } from '../config/schema.js';

/** Where the hosted connectors send the browser back (exact, as they register them). */
const BUILT_IN = new Set([
  'https://chatgpt.com/connector_platform_oauth_redirect',
  'https://claude.ai/api/mcp/auth_callback',
  'https://claude.com/api/mcp/auth_callback',
]);
/** ChatGPT's per-connector callback, `https://chatgpt.com/connector/oauth/<id>`. */
const CHATGPT_CONNECTOR = /^https:\/\/chatgpt\.com\/connector\/oauth\/[A-Za-z0-9_-]+$/;

/**
 * Whether a client may register `uri` as a redirect: the hosted connectors' callbacks, loopback
 * on any port (the Inspector, Claude Code, mcp-remote: a redirect there never leaves the
 * machine), and the owner's `public.redirectUris`. Everything else could carry a code to a
 * stranger, so it is refused at registration.
 */
export function redirectAllowed(uri: string, extra: readonly string[]): boolean {
  if (BUILT_IN.has(uri) || CHATGPT_CONNECTOR.test(uri) || extra.includes(uri)) return true;
  const url = URL.parse(uri);
  if (!url || url.hash || url.username || url.password) return false;
  return url.protocol === 'http:' && isLoopbackHostname(url.hostname);
}
