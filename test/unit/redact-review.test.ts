import { describe, expect, it } from 'vitest';
import { looksRandom, redactSecrets, urlCredentials } from '../../src/config/redact.js';

// The bridge's own local access token: mcpb_ + 32 random bytes in base64url (43 characters).
const MCPB = `mcpb_${'Ab3_-x9Z'.repeat(5)}q7K`;
const SENDGRID = `SG.${'aB3dE6gH9jK2mN5pQ8sT1v'}.${'wX4yZ7bC0eF3hI6kL9nO2qR5tU8wX1zA4cD7fG0iJ3l'}`;
const YA29 = `ya29.${'a0AfH6SMB_x-Yz9'.repeat(8)}`;

describe('redactSecrets: what the review found still visible', () => {
  it.each([
    ['a bare mcpb_ token', `bridge ${MCPB} rejected`, 'bridge [redacted] rejected'],
    ['an mcpb_ token in a header value', `x-bridge: ${MCPB}`, 'x-bridge: [redacted]'],
    ['Basic without digits', 'Authorization: Basic dXNlcjpwYXNz', 'Authorization: Basic [redacted]'],
    ['Basic alone, mixed case', 'sent "Basic dXNlcjpwYXNz" upstream', 'sent "Basic [redacted]" upstream'],
    ['Basic at a sentence end', 'got Basic dXNlcjpwYXNz.', 'got Basic [redacted].'],
    [
      'Basic in a header, whatever it looks like',
      'authorization: Basic dGVzdA',
      'authorization: Basic [redacted]',
    ],
    ['Bearer in a header, even a word', 'Authorization: Bearer abcdefgh', 'Authorization: Bearer [redacted]'],
    ['@ in a URL password', 'mysql://user:p@ssw0rd@db/x failed', 'mysql://[redacted]@db/x failed'],
    ['@ in a URL password, with a port', 'redis://:a@b@c@cache:6379/0', 'redis://[redacted]@cache:6379/0'],
    ['/ in a URL password', 'postgres://u:ab/cd@h/db', 'postgres://[redacted]@h/db'],
    ['/ and @ in a URL password', 'postgres://u:a/b@c@h:5432/db', 'postgres://[redacted]@h:5432/db'],
    ['/ in a password, an @ in the path', 'postgres://u:ab/cd@h/db/x@y', 'postgres://[redacted]@h/db/x@y'],
    ['/ in a password, no user', 'redis://:pa/ss@cache', 'redis://[redacted]@cache'],
    ['two URLs on a line', 'see http://a:b/c,http://x@y', 'see http://a:b/c,http://[redacted]@y'],
    ['Basic with padding', 'Basic dGVzdA== sent', 'Basic [redacted] sent'],
    [
      'Azure AccountKey',
      'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=abc123+/xyz==;EndpointSuffix=core.windows.net',
      'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=[redacted];EndpointSuffix=core.windows.net',
    ],
    [
      'Azure SAS sig',
      'GET https://x.blob.core.windows.net/c/b?sv=2022-11-02&se=2024&sig=abcDEF123%2Bxyz%3D 403',
      'GET https://x.blob.core.windows.net/c/b?sv=2022-11-02&se=2024&sig=[redacted] 403',
    ],
    ['?sig= first', 'https://h/p?sig=word&x=1', 'https://h/p?sig=[redacted]&x=1'],
    [
      '?key=',
      'https://maps.example.com/api?key=whatever&q=1',
      'https://maps.example.com/api?key=[redacted]&q=1',
    ],
    ['&key=', 'GET /x?a=1&key=k123abc HTTP/1.1', 'GET /x?a=1&key=[redacted] HTTP/1.1'],
    [
      'X-Amz-Signature',
      'https://b.s3.amazonaws.com/k?X-Amz-Signature=0a1b2c',
      'https://b.s3.amazonaws.com/k?X-Amz-Signature=[redacted]',
    ],
    [
      'access_token=',
      'redirect to https://h/cb?access_token=abcdef&x=1',
      'redirect to https://h/cb?access_token=[redacted]&x=1',
    ],
    ['token=', 'https://h/cb#token=abcdef', 'https://h/cb#token=[redacted]'],
    ['SendGrid', `key ${SENDGRID} ok`, 'key [redacted] ok'],
    ['Google OAuth access token', `using ${YA29}`, 'using [redacted]'],
    ['password=, a plain word', 'password=hunter', 'password=[redacted]'],
    ['password = x, INI style', 'password = hunter', 'password = [redacted]'],
    ['password=hunter2', 'login password=hunter2 refused', 'login password=[redacted] refused'],
    ['a credential after name:', 'token: abc123def', 'token: [redacted]'],
    ['a quoted value is a value', '{"token": "signature"}', '{"token": "[redacted]"}'],
  ])('%s', (_what, text, expected) => {
    expect(redactSecrets(text)).toBe(expected);
  });

  it('is idempotent: a redacted line stays the same when redacted again', () => {
    for (const text of [
      'mysql://user:p@ssw0rd@db/x',
      'postgres://u:ab/cd@h/db',
      'Authorization: Basic dXNlcjpwYXNz',
    ]) {
      const once = redactSecrets(text);
      expect(redactSecrets(once)).toBe(once);
    }
  });
});

describe('redactSecrets: near-misses of the new rules stay visible', () => {
  it.each([
    'invalid token: signature expired',
    'token: expired.',
    'Token: Invalid',
    'authorization: denied',
    'missing --api-key option',
    'pass --token or set GITHUB_TOKEN',
    'Basic auth is disabled',
    'Basic Auth failed',
    'Basic HTTP authentication',
    'basic usage: foo --help',
    'BasicAuth dXNlcjpwYXNz',
    'npm ERR! need: Basic realm="GitHub Package Registry"',
    'WWW-Authenticate: Basic realm="x", charset="UTF-8"',
    'basic setup2 failed',
    '{"url":"https://h","email":"me@x.com"}',
    'mcpb_short',
    'mcpb_ is the prefix',
    'SG.short.x',
    'ya29.short',
    'https://example.com:8443/users/@me',
    'http://localhost:3000/a@b',
    'http://[::1]:8080/x@y',
    'https://docs.example.com/guide:intro/x@y',
    'https://example.com/path?monkey=banana&keyboard=us',
    'https://example.com/?q=key=1',
    'cache key=user:42',
    'AccountName=acct;EndpointSuffix=core.windows.net',
    'max_tokens=4096',
    '--max-tokens 4096',
    'signature: sha256 mismatch',
  ])('%s', (text) => {
    expect(redactSecrets(text)).toBe(text);
  });

  it('stays fast on pathological URL-like lines', () => {
    const atSigns = `a://u:${'x@'.repeat(100_000)}`;
    const schemes = 'a://u:b/'.repeat(50_000);
    const slashes = `p://u:${'a/'.repeat(100_000)}@h`;
    for (const line of [atSigns, schemes, slashes]) {
      const started = performance.now();
      redactSecrets(line);
      // Generous: linear work on 200 KB takes milliseconds; quadratic takes minutes.
      expect(performance.now() - started).toBeLessThan(5000);
    }
  });
});

describe('urlCredentials with @ and / in the password', () => {
  it('takes the whole password', () => {
    expect(urlCredentials('mysql://user:p@ssw0rd@db/x')).toEqual(['p@ssw0rd']);
    expect(urlCredentials('postgres://u:ab/cd@h/db')).toEqual(['ab/cd']);
    expect(urlCredentials('https://example.com:8443/users/@me and http://localhost:3000/a@b')).toEqual([]);
  });
});

describe('looksRandom and identifiers', () => {
  it('does not take model names or versions for keys', () => {
    for (const value of [
      'claude-3-5-sonnet-20241022',
      'gpt-4o-mini-2024-07-18',
      'meta-llama/Llama-3.1-8B-Instruct',
      'node-v20.11.1-linux-x64',
    ])
      expect(looksRandom(value), value).toBe(false);
  });

  it('still takes keys with separators', () => {
    for (const value of ['550e8400-e29b-41d4-a716-446655440000', 'A1B2-C3D4-E5F6-G7H8', 'Zq81Lm0Xv4Rt7Yp2'])
      expect(looksRandom(value), value).toBe(true);
  });
});
