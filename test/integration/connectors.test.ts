import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authHeaders, makeTempDir } from '../helpers/bridge.js';
import {
  authorize,
  CHATGPT_REDIRECT,
  connectLikeChatGPT,
  discover,
  exchange,
  type PublicDaemon,
  registerClient,
  startPublicDaemon,
} from '../helpers/connector.js';
import { FAKE_TOOL_COUNT, fakeUpstream } from '../helpers/fake-server.js';
import { waitFor } from '../helpers/wait.js';

/** An SDK v2 client on the public listener with a bearer token, as ChatGPT's backend would be. */
async function bearerClient(url: string, token: string, version?: string): Promise<Client> {
  const client = new Client({ name: 'chatgpt-like', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
      ...(version ? { protocolVersion: version } : {}),
    }),
  );
  return client;
}

describe('public listener: a ChatGPT-like connector end to end', () => {
  const tmp = makeTempDir();
  let pub: PublicDaemon;

  beforeAll(async () => {
    pub = await startPublicDaemon(tmp.dir, [fakeUpstream('notes'), fakeUpstream('secret')], {
      public: { upstreams: ['notes'] },
    });
    await waitFor(() => pub.daemon.registry.get('notes')!.snapshot().state === 'ready', 'notes');
  });
  afterAll(async () => {
    await pub?.daemon.close();
    tmp.cleanup();
  });

  it('publishes RFC 9728 and RFC 8414 metadata naming the issuer byte for byte', async () => {
    const { as, prm } = await discover(pub.resource);
    expect(prm.resource).toBe(pub.resource);
    expect(prm.authorization_servers).toEqual([pub.issuer]);
    expect(as.issuer).toBe(pub.issuer);
    expect(as.code_challenge_methods_supported).toEqual(['S256']);
    expect(as.registration_endpoint).toBe(`${pub.issuer}/register`);
    expect(as.authorization_response_iss_parameter_supported).toBe(true);
    expect(as.client_id_metadata_document_supported).toBe(true);
    expect(as.token_endpoint_auth_methods_supported).toContain('none');
    const root = await (await fetch(`${pub.issuer}/.well-known/oauth-protected-resource`)).json();
    expect(root.resource).toBe(pub.resource);
  });

  it('registers, consents with the password, gets code + state + iss, and calls tools with the bearer', async () => {
    const conn = await registerClient(pub.resource);
    const result = await authorize(conn);
    expect(result.consent?.status).toBe(303);
    expect(result.location?.origin + result.location!.pathname).toBe(CHATGPT_REDIRECT);
    expect(result.location?.searchParams.get('code')).toBeTruthy();
    expect(result.location?.searchParams.get('state')).toBe(result.state);
    expect(result.location?.searchParams.get('iss')).toBe(pub.issuer);
    const tokens = await exchange(conn, result);
    expect(tokens.refresh_token).toBeTruthy();
    expect(tokens.expires_in).toBeGreaterThan(3000);
    const client = await bearerClient(pub.resource, tokens.access_token);
    const { tools } = await client.listTools();
    // Only public.upstreams: "secret" is not exposed.
    expect(tools).toHaveLength(FAKE_TOOL_COUNT);
    expect(tools.every((t) => t.name.startsWith('notes__'))).toBe(true);
    const echoed = await client.callTool({ name: 'notes__echo', arguments: { text: 'hi' } });
    expect(JSON.stringify(echoed.content)).toContain('hi');
    await client.close();
  });

  it('the loopback listener is unchanged: no bearer from the AS, no AS endpoints', async () => {
    const { tokens } = await connectLikeChatGPT(pub.resource);
    const local = pub.daemon.url;
    const asToken = await fetch(local, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(asToken.status).toBe(401);
    for (const path of [
      '/.well-known/oauth-authorization-server',
      '/.well-known/oauth-protected-resource/mcp',
      '/register',
      '/authorize',
      '/token',
    ]) {
      const res = await fetch(new URL(path, local), { headers: authHeaders(local) });
      expect(res.status, path).toBe(404);
    }
  });
});
