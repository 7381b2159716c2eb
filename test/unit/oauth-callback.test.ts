// What a bad authorization callback is reported as: oauth4webapi's error classes and codes, read
// with the callback's parameters, decide between an error answer, an `iss` mix-up and a bad `state`.
import * as oauth from 'oauth4webapi';
import { describe, expect, it } from 'vitest';
import { exchangeCode } from '../../src/auth/grants.js';
import { isBridgeError } from '../../src/errors.js';

const as: oauth.AuthorizationServer = {
  issuer: 'https://as.example',
  authorization_endpoint: 'https://as.example/authorize',
  token_endpoint: 'https://as.example/token',
  authorization_response_iss_parameter_supported: true,
};

/** The error exchangeCode throws for `callback` (none of these reach the token endpoint). */
async function problem(callback: string): Promise<string> {
  const error = await exchangeCode({
    authServer: as,
    client: { client: { client_id: 'c' }, auth: oauth.None(), source: 'registered' },
    callback: new URLSearchParams(callback),
    state: 'S',
    redirectUri: 'http://127.0.0.1:1/oauth/callback',
    codeVerifier: 'v'.repeat(43),
    resource: 'https://rs.example/mcp',
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isBridgeError(error, 'OAUTH_CALLBACK_INVALID')).toBe(true);
  return (error as Error).message;
}

describe('authorization callback problems', () => {
  it('leaves other invalid responses (here a JARM one) as oauth4webapi describes them', async () => {
    expect(await problem('response=x.y.z&code=x&state=T&iss=https://evil.example')).toMatch(
      /^invalid authorization response: .*JARM/,
    );
  });

  it('names an error the authorization server sent back', async () => {
    expect(await problem('error=access_denied&error_description=no&state=S&iss=https://as.example')).toBe(
      'the authorization server returned an error: access_denied (no)',
    );
  });

  it('treats a wrong, missing or repeated iss as a possible mix-up', async () => {
    for (const iss of ['iss=https://evil.example', '', 'iss=https://as.example&iss=https://as.example']) {
      expect(await problem(`code=x&state=S&${iss}`)).toContain('(RFC 9207)');
    }
  });

  it('reports a wrong, missing or repeated state as not this login', async () => {
    for (const state of ['state=T', '', 'state=S&state=S']) {
      expect(await problem(`code=x&iss=https://as.example&${state}`)).toContain(
        'does not match the login in progress',
      );
    }
  });
});
