#!/usr/bin/env node
// Template for scripts/conformance/auth-client.mjs: the client-under-test command that
// scripts/conformance/run-auth.mjs hands to the MCP conformance suite
// (@modelcontextprotocol/conformance, `conformance client --command ... --scenario auth/...`).
// Copy it to auth-client.mjs and implement createAuthorizedFetch() with the bridge's OAuth engine.
// As shipped it exits with code 3 ("not implemented"), so every scenario fails.
//
// ============================================================================================
// THE CONTRACT (checked against the suite's source, versions 0.1.16 and 0.2.0-alpha.12)
// ============================================================================================
//
// How the suite starts this process, once per scenario
//   - For each scenario the suite starts a mock MCP server (and usually a separate mock
//     authorization server), each on a random port of http://localhost.
//   - It runs `sh -c "<--client command> <serverUrl>"`: the MCP endpoint URL (for example
//     http://localhost:41234/mcp) is appended as the LAST argv entry. Shell quoting in
//     --client works. The working directory and environment are inherited from the runner,
//     plus:
//       MCP_CONFORMANCE_SCENARIO          the scenario name, e.g. "auth/scope-step-up"
//       MCP_CONFORMANCE_CONTEXT           JSON, set only for scenarios that carry data:
//                                           auth/pre-registration ->
//                                             {"name":..., "client_id":"pre-registered-client",
//                                              "client_secret":"pre-registered-secret"}
//                                           (extension scenarios send client_credentials, JWT and IdP data)
//       MCP_CONFORMANCE_PROTOCOL_VERSION  0.2.x only: the MCP protocol version the mock server
//                                         speaks (2025-11-25, or 2026-07-28 for scenarios added in
//                                         that revision; those need an MCP-Protocol-Version header on
//                                         every request, including the first).
//   - stdout and stderr are saved to files and never parsed. Log whatever helps.
//   - Time limit: --timeout (30 s by default). On timeout the process is killed and the scenario fails.
//   - Exit 0 when the session succeeded. A non-zero exit fails the scenario, except in the
//     negative scenarios, where the client is expected to give up: scope-retry-limit and
//     resource-mismatch, plus in 0.2.x iss-supported-missing, iss-wrong-issuer, iss-unexpected,
//     iss-normalized and metadata-issuer-mismatch.
//
// What the client has to do
//   1. Open an MCP Streamable HTTP session to serverUrl: POST initialize, then
//      notifications/initialized. A GET for an SSE stream gets 404; that must be tolerated.
//   2. Most scenarios answer the very first POST (initialize) with
//        401  WWW-Authenticate: Bearer resource_metadata="<PRM url>"[, scope="..."]
//      scope-step-up and scope-retry-limit let initialize through and challenge tools/list instead.
//      On a 401 the client runs OAuth 2.1 authorization code + PKCE (S256):
//        a. Protected Resource Metadata (RFC 9728): the resource_metadata URL from the challenge
//           if there is one. Otherwise /.well-known/oauth-protected-resource/<path>, then
//           /.well-known/oauth-protected-resource. Do NOT probe the root PRM when the challenge
//           named a PRM URL: metadata-default treats that as a failure. 2025-03-26 servers
//           have no PRM at all (see the backcompat scenarios).
//        b. Authorization server metadata for PRM.authorization_servers[0]. For an issuer with a
//           path (http://h/tenant1) try /.well-known/oauth-authorization-server/tenant1, then
//           /.well-known/openid-configuration/tenant1, then /tenant1/.well-known/openid-configuration.
//           Requesting the root /.well-known/oauth-authorization-server for a path issuer is a
//           failure. For a root issuer, oauth-authorization-server comes first, then openid-configuration.
//        c. Get a client: the pre-registered credentials from MCP_CONFORMANCE_CONTEXT if given, else
//           CIMD if the AS metadata has client_id_metadata_document_supported: true
//           (client_id MUST be exactly CONFORMANCE_CIMD_URL below; the suite hard-codes it and never
//           fetches it), else Dynamic Client Registration (POST registration_endpoint -> 201 with
//           client_id, maybe client_secret and token_endpoint_auth_method).
//        d. Scope: the scope from WWW-Authenticate if present, else all of PRM.scopes_supported,
//           else send no scope parameter at all. Add offline_access only if the AS lists it in
//           scopes_supported (draft offline-access-* scenarios).
//        e. Authorization request: response_type=code, client_id, redirect_uri, state,
//           code_challenge + code_challenge_method=S256, resource=<canonical resource URI>
//           (RFC 8707, no fragment), scope as chosen above.
//           The mock AS approves at once: GET /authorize answers 302 to
//           <redirect_uri>?code=test-auth-code&state=<state> (0.2.x also adds &iss=<issuer>).
//           No browser and no listener are needed. Fetch the URL with redirect: 'manual' and read
//           the Location header (completeAuthorizationHeadlessly below). redirect_uri is never
//           checked or contacted, so any loopback URL will do.
//        f. Token request: grant_type=authorization_code, code, redirect_uri, code_verifier, the same
//           resource, and client authentication by the method the AS supports or the registration
//           returned: client_secret_basic, client_secret_post or none (token-endpoint-auth-* and
//           pre-registration check this). The access token is an opaque "test-token..." string
//           (Bearer, expires_in 3600, no refresh_token).
//      Then retry the MCP request with "Authorization: Bearer <token>".
//   3. tools/list, then tools/call name="test-tool" arguments={} (returns text "test").
//      The call matters: in scope-step-up, tools/call answers 403 with
//        WWW-Authenticate: Bearer error="insufficient_scope", scope="mcp:basic mcp:write"
//      and the client must authorize again asking for the union of the old and challenged scopes,
//      then retry the call.
//   4. Close the session and exit 0.
//
// Limits the scenarios enforce
//   - No more than 3 authorization requests (GET /authorize) per run. scope-retry-limit answers
//     403 insufficient_scope for ever, so the client must stop and may exit non-zero.
//   - Each PRM "resource" must match the server URL: the same origin, with a path equal to or a
//     parent of the server URL's path. metadata-var2's PRM says http://localhost:P, without /mcp,
//     and must be accepted. If it doesn't match (resource-mismatch points to
//     https://evil.example.com/mcp), make no authorization request.
//   - In the result, WARNING counts as failure. Several SHOULDs (scope selection, CIMD use) are WARNINGs.
//   - Every endpoint is plain http://localhost:<port>. HTTP libraries that demand https must be
//     allowed insecure requests for loopback hosts (oauth4webapi: [allowInsecureRequests]: true).
//
// ============================================================================================

import process from 'node:process';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

/** client_id that the conformance AS expects when it advertises CIMD support (hard-coded in the suite). */
export const CONFORMANCE_CIMD_URL = 'https://conformance-test.local/client-metadata.json';
/** Any loopback URL works: the mock AS only echoes it back in its 302 Location header. */
export const REDIRECT_URI = 'http://127.0.0.1:33418/callback';

function readInputs() {
  const serverUrl = process.argv.at(-1);
  if (!serverUrl || !/^https?:\/\//.test(serverUrl)) {
    throw new Error(`expected the MCP server URL as the last argument, got ${JSON.stringify(serverUrl)}`);
  }
  const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? '';
  const context = process.env.MCP_CONFORMANCE_CONTEXT ? JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT) : {};
  const preRegistered =
    typeof context.client_id === 'string'
      ? { clientId: context.client_id, clientSecret: context.client_secret }
      : undefined;
  return {
    serverUrl,
    scenario,
    preRegistered,
    protocolVersion: process.env.MCP_CONFORMANCE_PROTOCOL_VERSION,
  };
}

/**
 * Headless stand-in for the browser step: requests the authorization URL without following
 * redirects and returns the callback URL the AS redirected to. Its searchParams carry
 * code, state and possibly iss (or error). Hand this URL to the engine's callback handling
 * (state check, RFC 9207 iss check, code exchange).
 */
export async function completeAuthorizationHeadlessly(authorizationUrl) {
  const res = await fetch(authorizationUrl, { redirect: 'manual' });
  const location = res.headers.get('location');
  if (res.status < 300 || res.status > 399 || !location) {
    throw new Error(`authorization endpoint answered HTTP ${res.status} without a redirect`);
  }
  return new URL(location, authorizationUrl);
}

class NotImplementedError extends Error {}

/**
 * TODO(engine): return a fetch-compatible function for requests to serverUrl that:
 *   - sends "Authorization: Bearer <access token>" once it has one;
 *   - on 401 (and on 403 with error="insufficient_scope") reads WWW-Authenticate, runs
 *     discovery, registration or CIMD, and the authorization code + PKCE flow with the bridge's
 *     oauth4webapi engine, using `authorize` as the user agent, then retries the request once;
 *   - caps authorization attempts at 3 and throws once they are used up;
 *   - keeps tokens in memory (or a temp dir): each scenario is a fresh process and a fresh AS.
 *
 * @param {object} options
 * @param {string} options.serverUrl          MCP endpoint (the protected resource)
 * @param {string} options.redirectUri        REDIRECT_URI
 * @param {string} options.clientMetadataUrl  CONFORMANCE_CIMD_URL (use only if the AS advertises CIMD)
 * @param {{clientId: string, clientSecret?: string} | undefined} options.preRegistered
 * @param {(url: URL) => Promise<URL>} options.authorize  completeAuthorizationHeadlessly
 * @param {boolean} options.allowInsecureLoopback  true: every suite endpoint is http://localhost
 * @returns {Promise<typeof fetch>}
 */
async function createAuthorizedFetch(_options) {
  throw new NotImplementedError(
    'auth-client.example.mjs: createAuthorizedFetch() is a placeholder; implement it in auth-client.mjs',
  );
}

async function runMcpSession(serverUrl, authorizedFetch, protocolVersion) {
  // The 2026-07-28 scenarios (0.2.x) expect the client to speak that protocol revision.
  const versionNegotiation =
    protocolVersion && protocolVersion > '2025-11-25' ? { mode: { pin: protocolVersion } } : undefined;
  const client = new Client(
    { name: 'mcp-bridge-conformance', version: '0.0.0' },
    { capabilities: {}, versionNegotiation },
  );
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { fetch: authorizedFetch });
  try {
    await client.connect(transport);
    const { tools } = await client.listTools();
    console.error(`tools: ${tools.map((t) => t.name).join(', ')}`);
    const result = await client.callTool({ name: 'test-tool', arguments: {} });
    console.error(`test-tool: ${JSON.stringify(result.content)}`);
  } finally {
    await transport.close().catch(() => {});
  }
}

async function main() {
  const inputs = readInputs();
  console.error(`scenario=${inputs.scenario} server=${inputs.serverUrl}`);
  const authorizedFetch = await createAuthorizedFetch({
    serverUrl: inputs.serverUrl,
    redirectUri: REDIRECT_URI,
    clientMetadataUrl: CONFORMANCE_CIMD_URL,
    preRegistered: inputs.preRegistered,
    authorize: completeAuthorizationHeadlessly,
    allowInsecureLoopback: true,
  });
  await runMcpSession(inputs.serverUrl, authorizedFetch, inputs.protocolVersion);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err?.stack ?? String(err));
    process.exit(err instanceof NotImplementedError ? 3 : 1);
  },
);
