import { describe, expect, it } from 'vitest';
import { publicConfig } from '../../src/config/public.js';
import type { PublicConfig } from '../../src/config/schema.js';
import { BridgeError } from '../../src/errors.js';
import { ownerPassword } from '../../src/public/owner-password.js';
import { redirectAllowed } from '../../src/public/redirect-policy.js';

const FILE = '/home/me/.config/mcp-bridge/config.json';
const problem = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return error instanceof BridgeError ? `${error.code}: ${error.message}` : String(error);
  }
  return 'no error';
};

describe('public config', () => {
  it('is absent without a URL, and takes the environment over the file', () => {
    expect(publicConfig(undefined, {}, [], FILE)).toBeUndefined();
    expect(publicConfig({ port: 9000 }, {}, [], FILE)).toBeUndefined();
    const fromEnv = publicConfig(
      { url: 'https://file.example', port: 9000 },
      { MCP_BRIDGE_PUBLIC_URL: 'https://env.example/', MCP_BRIDGE_PUBLIC_PORT: '9100' },
      [],
      FILE,
    );
    expect(fromEnv).toMatchObject({
      url: 'https://env.example',
      port: 9100,
      accessTokenTtlSeconds: 3600,
      refreshTokenTtlSeconds: 30 * 86_400,
    });
    expect(publicConfig({ url: 'https://bridge.example.com' }, {}, [], FILE)?.port).toBe(8770);
  });

  it('refuses URLs that cannot be an issuer, naming the key', () => {
    expect(problem(() => publicConfig({ url: 'http://bridge.example.com' }, {}, [], FILE))).toMatch(
      /CONFIG_INVALID: .*public\.url must be https/,
    );
    expect(problem(() => publicConfig({ url: 'https://bridge.example.com/mcp' }, {}, [], FILE))).toMatch(
      /no path/,
    );
    expect(problem(() => publicConfig({ url: 'https://bridge.example.com/?a=1' }, {}, [], FILE))).toMatch(
      /query or fragment/,
    );
    expect(problem(() => publicConfig({ url: 'https://u:p@bridge.example.com' }, {}, [], FILE))).toMatch(
      /user name or password/,
    );
    expect(problem(() => publicConfig(undefined, { MCP_BRIDGE_PUBLIC_URL: 'nope' }, [], FILE))).toMatch(
      /MCP_BRIDGE_PUBLIC_URL is not a URL/,
    );
    expect(
      problem(() =>
        publicConfig(
          undefined,
          { MCP_BRIDGE_PUBLIC_URL: 'https://a.example', MCP_BRIDGE_PUBLIC_PORT: '70000' },
          [],
          FILE,
        ),
      ),
    ).toMatch(/MCP_BRIDGE_PUBLIC_PORT/);
    // Loopback http is fine for trials.
    expect(publicConfig({ url: 'http://127.0.0.1:8770' }, {}, [], FILE)?.url).toBe('http://127.0.0.1:8770');
  });

  it('refuses unknown upstreams and bad redirect URIs', () => {
    expect(
      problem(() =>
        publicConfig({ url: 'https://a.example', upstreams: ['notes', 'nope'] }, {}, ['notes'], FILE),
      ),
    ).toMatch(/public\.upstreams names "nope"/);
    expect(
      problem(() =>
        publicConfig({ url: 'https://a.example', redirectUris: ['http://evil.example/cb'] }, {}, [], FILE),
      ),
    ).toMatch(/redirectUris\[0\]/);
  });
});

describe('owner password', () => {
  const config = { url: 'https://a.example' } as PublicConfig;
  const refusal = async (p: Promise<unknown>) =>
    p.then(
      () => 'no error',
      (e: BridgeError) => `${e.code}: ${e.message}`,
    );

  it('names the three places when there is none, and refuses short ones', async () => {
    const none = await refusal(ownerPassword({ ...config, ownerPassword: undefined }, {}));
    expect(none).toMatch(/^OWNER_PASSWORD_REQUIRED: /);
    for (const place of [
      'MCP_BRIDGE_OWNER_PASSWORD',
      'MCP_BRIDGE_OWNER_PASSWORD_OP_REF',
      'public.ownerPassword',
    ])
      expect(none).toContain(place);
    expect(await refusal(ownerPassword(config, { MCP_BRIDGE_OWNER_PASSWORD: 'short' }))).toMatch(
      /shorter than 12/,
    );
  });

  it('reads env, then the op:// reference, then the config value', async () => {
    const read = async (ref: string) => `secret from ${ref}`;
    expect(
      await ownerPassword(
        { ...config, ownerPassword: 'from the config file' },
        { MCP_BRIDGE_OWNER_PASSWORD: 'from the environment' },
        read,
      ),
    ).toBe('from the environment');
    expect(await ownerPassword(config, { MCP_BRIDGE_OWNER_PASSWORD_OP_REF: 'op://v/i/f' }, read)).toBe(
      'secret from op://v/i/f',
    );
    expect(await ownerPassword({ ...config, ownerPassword: 'op://v/i/p' }, {}, read)).toBe(
      'secret from op://v/i/p',
    );
    expect(await ownerPassword({ ...config, ownerPassword: 'a literal password' }, {}, read)).toBe(
      'a literal password',
    );
    const failing = async () => {
      throw new Error('not signed in');
    };
    expect(
      await refusal(ownerPassword(config, { MCP_BRIDGE_OWNER_PASSWORD_OP_REF: 'op://v/i/f' }, failing)),
    ).toMatch(/SECRET_UNAVAILABLE: MCP_BRIDGE_OWNER_PASSWORD_OP_REF: not signed in/);
  });
});

describe('redirect allow-list', () => {
  it('takes the hosted connectors, loopback on any port and the extra list, nothing else', () => {
    for (const uri of [
      'https://chatgpt.com/connector_platform_oauth_redirect',
      'https://chatgpt.com/connector/oauth/Abc-123_x',
      'https://claude.ai/api/mcp/auth_callback',
      'https://claude.com/api/mcp/auth_callback',
      'http://127.0.0.1:6274/oauth/callback',
      'http://localhost:1/x',
      'http://[::1]:33418/cb',
    ])
      expect(redirectAllowed(uri, []), uri).toBe(true);
    for (const uri of [
      'https://chatgpt.com/connector_platform_oauth_redirect/',
      'https://chatgpt.com/connector/oauth/a/b',
      'https://claude.ai/api/mcp/auth_callback?x=1',
      'https://evil.example/cb',
      'https://127.0.0.1:5/cb',
      'http://127.0.0.1.evil.example/cb',
      'http://user@127.0.0.1:5/cb',
      'http://127.0.0.1:5/cb#frag',
      'javascript:alert(1)',
    ])
      expect(redirectAllowed(uri, []), uri).toBe(false);
    expect(
      redirectAllowed('https://my-own-client.example/callback', ['https://my-own-client.example/callback']),
    ).toBe(true);
  });
});
