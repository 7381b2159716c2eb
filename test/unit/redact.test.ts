import { describe, expect, it } from 'vitest';
import { looksRandom, redactSecrets, urlCredentials } from '../../src/config/redact.js';
import type { UpstreamConfig } from '../../src/config/schema.js';
import { redactArgs, redactUpstreamConfig, redactUrl, secretValuesOf } from '../../src/config/secrets.js';

const GHP = `ghp_${'A1b2C3d4E5'.repeat(4)}`;

describe('redactSecrets: known token shapes', () => {
  it.each([
    ['GitHub classic', `token is ${GHP} ok`, 'token is [redacted] ok'],
    ['GitHub fine-grained', `github_pat_${'11ABCDEFG0'.repeat(4)}_xyz`, '[redacted]'],
    ['GitLab', 'glpat-abcdefghij0123456789', '[redacted]'],
    ['npm', `npm_${'a1'.repeat(18)}`, '[redacted]'],
    ['OpenAI', 'key sk-proj-abcdefghijklmnopqrstuvwx', 'key [redacted]'],
    ['Anthropic', 'sk-ant-api03-abcdefghijklmnopqrstuvwxyz', '[redacted]'],
    ['Slack', 'xoxb-1234567890-abcdefghij', '[redacted]'],
    ['Stripe', 'sk_live_abcdefghijklmnop1234', '[redacted]'],
    ['AWS key id', 'id=AKIAIOSFODNN7EXAMPLE,', 'id=[redacted],'],
    ['Google', `AIza${'Sy0123456789abcdefghij'.repeat(2)}`, '[redacted]'],
    ['JWT', 'jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig-nature_x', 'jwt [redacted]'],
    ['Bearer', 'Authorization: Bearer abc.def-123', 'Authorization: Bearer [redacted]'],
    ['Basic', 'Basic dXNlcjpwYXNzd29yZA==', 'Basic [redacted]'],
  ])('%s', (_what, text, expected) => {
    expect(redactSecrets(text)).toBe(expected);
  });

  it('hides URL credentials and keeps a marker, the scheme and the host', () => {
    expect(redactSecrets('connect postgres://u:s3cretpw@db.local:5432/app failed')).toBe(
      'connect postgres://[redacted]@db.local:5432/app failed',
    );
    expect(redactSecrets(`git clone https://${GHP}@github.com/a/b`)).toBe(
      'git clone https://[redacted]@github.com/a/b',
    );
  });

  it('hides values assigned to secret names, in env, JSON and flag form', () => {
    expect(redactSecrets('GITHUB_TOKEN=abc123 next')).toBe('GITHUB_TOKEN=[redacted] next');
    expect(redactSecrets('{"password": "hunter2", "user": "me"}')).toBe(
      '{"password": "[redacted]", "user": "me"}',
    );
    // After a bare colon or a flag, a plain word may be prose (see redact-review.test.ts).
    expect(redactSecrets('api_key: xyz123')).toBe('api_key: [redacted]');
    expect(redactSecrets('running: foo --token xyz-1 --verbose')).toBe(
      'running: foo --token [redacted] --verbose',
    );
    expect(redactSecrets('x-api-key:k1')).toBe('x-api-key:[redacted]');
    expect(redactSecrets('Cookie: sid=abc')).toBe('Cookie: [redacted]');
  });

  it('hides a private key block', () => {
    expect(redactSecrets('key: -----BEGIN RSA PRIVATE KEY-----MIIE...')).toBe('key: [redacted]');
  });

  it('replaces known values verbatim, longest first, and ignores values too short to be secrets', () => {
    expect(redactSecrets('login as s3cretpw failed (s3cret)', ['s3cret', 's3cretpw'])).toBe(
      'login as [redacted] failed ([redacted])',
    );
    expect(redactSecrets('mode on', ['on'])).toBe('mode on');
  });

  it('leaves near-misses alone', () => {
    for (const text of [
      'ghp_short',
      'ghp_',
      'sk-learn is installed',
      'task-1234 risk-free whisk-abcdefghijklmnopqrstuvwxyz',
      'AKIA',
      'AKIAshort',
      'xoxo',
      'max_tokens=4096 tokens_used=12',
      'token_type=Bearer',
      'Bearer token required',
      'Basic auth is disabled',
      'mail me@example.com',
      'see https://example.com/a@b and http://localhost:8080/mcp',
      'ssh git@github.com:org/repo.git',
      'PATH=/usr/bin:/bin',
      'keyboard layout: us',
      'the access token expired',
      'eyJ alone',
      'sha256:0123456789abcdef0123456789abcdef',
      '[redacted]',
    ]) {
      expect(redactSecrets(text), text).toBe(text);
    }
  });

  it('stays fast on a pathological long line', () => {
    const line = `${'a.'.repeat(200_000)}${'x'.repeat(200_000)}`;
    expect(redactSecrets(line)).toBe(line);
  });
});

describe('redactArgs', () => {
  it('hides the values of secret long flags, the listed short flags and secret NAME=value args', () => {
    expect(
      redactArgs([
        '-y',
        '@scope/server',
        '-p',
        'hunter2',
        '-t',
        'xyz',
        '-phunter3',
        '-k=abc',
        '--token',
        'tok',
        '--client-secret=cs',
        '-e',
        'GH_PAT=pat1',
        '--db',
        'postgres://u:pw@h/db',
        GHP,
        '--port',
        '80',
        '-v',
        'verbose-arg',
      ]),
    ).toEqual([
      '-y',
      '@scope/server',
      '-p',
      '[redacted]',
      '-t',
      '[redacted]',
      '-p[redacted]',
      '-k=[redacted]',
      '--token',
      '[redacted]',
      '--client-secret=[redacted]',
      '-e',
      'GH_PAT=[redacted]',
      '--db',
      'postgres://[redacted]@h/db',
      '[redacted]',
      '--port',
      '80',
      '-v',
      'verbose-arg',
    ]);
  });

  it('does not take the next flag for a value', () => {
    expect(redactArgs(['-p', '--verbose', '--token', '-x'])).toEqual(['-p', '--verbose', '--token', '-x']);
  });
});

describe('redactUpstreamConfig', () => {
  it('logs env and header names only, whatever the name', () => {
    const stdio: UpstreamConfig = {
      kind: 'stdio',
      name: 's',
      command: 'node',
      args: ['server.js', '-p', 'hunter2'],
      env: { GH_PAT: GHP, DATABASE_URL: 'postgres://u:s3cretpw@h/db', NODE_ENV: 'production' },
      callTimeoutMs: 1000,
    };
    const text = JSON.stringify(redactUpstreamConfig(stdio));
    for (const secret of [GHP, 's3cretpw', 'hunter2', 'production']) expect(text).not.toContain(secret);
    expect(redactUpstreamConfig(stdio).env).toEqual({
      GH_PAT: '[redacted]',
      DATABASE_URL: '[redacted]',
      NODE_ENV: '[redacted]',
    });
    const http: UpstreamConfig = {
      kind: 'http',
      name: 'h',
      url: 'https://user:pw@api.example.com/mcp?key=abc',
      headers: { 'X-Whatever': 'v1' },
      transport: 'streamable-http',
      oauth: {},
      callTimeoutMs: 1000,
    };
    expect(redactUpstreamConfig(http)).toEqual({
      url: 'https://[redacted]@api.example.com/mcp?[redacted]',
      headers: { 'X-Whatever': '[redacted]' },
    });
  });

  it('redactUrl keeps a URL without secrets as it is', () => {
    expect(redactUrl('https://api.example.com/mcp')).toBe('https://api.example.com/mcp');
  });
});

describe('secretValuesOf', () => {
  it('collects secret env values, URL passwords, hidden args, random-looking values and op:// results', () => {
    const original: UpstreamConfig = {
      kind: 'stdio',
      name: 's',
      command: 'node',
      // A short flag's value is hidden in the start line only (secret-values.test.ts).
      args: ['--password', 'hunter2', '--url=https://u:argpass@h'],
      env: {
        GH_PAT: 'pat-value',
        DATABASE_URL: 'postgres://u:s3cretpw@h/db',
        NODE_ENV: 'production',
        SOME_ID: 'a8Fk29dKx0qPz7Lm',
        VAULT: 'op://vault/item/field',
      },
      callTimeoutMs: 1000,
    };
    const resolved: UpstreamConfig = { ...original, env: { ...original.env, VAULT: 'from-1password' } };
    const secrets = secretValuesOf(resolved, original);
    for (const secret of [
      'pat-value',
      's3cretpw',
      'hunter2',
      'argpass',
      'a8Fk29dKx0qPz7Lm',
      'from-1password',
    ]) {
      expect(secrets).toContain(secret);
    }
    expect(secrets).not.toContain('production');
  });

  it('takes every header value of an http upstream, and the token of a Bearer header', () => {
    const secrets = secretValuesOf({
      kind: 'http',
      name: 'h',
      url: 'https://api.example.com/mcp?api_key=q1',
      headers: { Authorization: 'Bearer tok-123456', 'X-Team': 'team-a' },
      transport: 'streamable-http',
      oauth: { clientSecret: 'cs-999' },
      callTimeoutMs: 1000,
    });
    expect(secrets).toEqual(
      expect.arrayContaining(['Bearer tok-123456', 'tok-123456', 'team-a', 'q1', 'cs-999']),
    );
  });
});

describe('helpers', () => {
  it('urlCredentials takes the password, or the user name when it is the token', () => {
    expect(urlCredentials('postgres://user:p%40ss@h and https://tok@h')).toEqual(['p%40ss', 'p@ss', 'tok']);
  });

  it('looksRandom spots keys, not words, paths or URLs', () => {
    expect(looksRandom('a8Fk29dKx0qPz7Lm')).toBe(true);
    for (const value of [
      'production',
      '/usr/local/bin/node1234',
      'https://example.com/x1',
      'v1.2.3',
      '1234567890123456',
    ])
      expect(looksRandom(value), value).toBe(false);
  });
});
