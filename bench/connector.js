// The bench's stand-in for ChatGPT: registers with the daemon's own authorization server, consents
// with the owner password and returns an access token for the public listener. Plain fetch, the
// flow test/helpers/connector.ts drives with oauth4webapi in the tests.
import { createHash, randomBytes } from 'node:crypto';

const REDIRECT = 'https://chatgpt.com/connector_platform_oauth_redirect';

export async function connectorToken(issuer, resource, password) {
  const cookies = new Map();
  const browse = async (url, init = {}) => {
    const headers = new Headers(init.headers);
    if (cookies.size > 0) headers.set('cookie', [...cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return response;
  };
  const registered = await fetch(`${issuer}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'bench',
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'none',
    }),
  });
  const { client_id } = await registered.json();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const authorize = new URL(`${issuer}/authorize`);
  for (const [k, v] of Object.entries({
    client_id,
    redirect_uri: REDIRECT,
    response_type: 'code',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'bench',
    resource,
    scope: 'mcp',
  }))
    authorize.searchParams.set(k, v);
  let next = authorize.href;
  for (let hop = 0; hop < 10; hop++) {
    const response = await browse(next);
    let location = response.headers.get('location');
    if (!location) {
      const csrf = /name="csrf" value="([^"]+)"/.exec(await response.text())?.[1];
      const posted = await browse(next, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: issuer },
        body: new URLSearchParams({ csrf, password, decision: 'allow' }),
      });
      location = posted.headers.get('location');
    }
    const target = new URL(location, next);
    if (target.href.startsWith(REDIRECT)) {
      const token = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code: target.searchParams.get('code'),
          redirect_uri: REDIRECT,
          code_verifier: verifier,
          client_id,
          resource,
        }),
      });
      return (await token.json()).access_token;
    }
    next = target.href;
  }
  throw new Error('the connector flow did not reach the redirect URI');
}

/** A port that was free a moment ago: the issuer (public.url) must name it before the daemon starts. */
export async function freePort() {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
