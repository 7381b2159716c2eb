import { describe, expect, it } from 'vitest';
import { redactSecrets } from '../../src/config/redact.js';
import type { StdioUpstreamConfig } from '../../src/config/schema.js';
import { redactArgs, secretValuesOf } from '../../src/config/secrets.js';

function stdio(args: string[], env: Record<string, string> = {}): StdioUpstreamConfig {
  return { kind: 'stdio', name: 's', command: 'node', args, env, callTimeoutMs: 1000 };
}

/** What the bridge shows of a line the upstream printed. */
function shown(config: StdioUpstreamConfig, line: string): string {
  return redactSecrets(line, secretValuesOf(config));
}

describe('secretValuesOf: ordinary arguments stay visible in what the upstream prints', () => {
  it('keeps the values of short flags and broad-matching long flags (the start log still hides them)', () => {
    const config = stdio(
      ['-p', '8080', '-t', 'stdio', '--max-tokens', '4096', '--session-dir', '/home/me/data'],
      {
        MODEL: 'claude-3-5-sonnet-20241022',
      },
    );
    const line =
      'fatal: cannot bind port 8080 (transport stdio, data dir /home/me/data, max 4096 tokens, model claude-3-5-sonnet-20241022)';
    expect(shown(config, line)).toBe(line);
    expect(redactArgs(config.args)).toEqual([
      '-p',
      '[redacted]',
      '-t',
      '[redacted]',
      '--max-tokens',
      '[redacted]',
      '--session-dir',
      '[redacted]',
    ]);
  });

  it('keeps "invalid token: signature expired" readable', () => {
    expect(shown(stdio(['--token-file', '/run/tok']), 'invalid token: signature expired')).toBe(
      'invalid token: signature expired',
    );
  });

  it.each([
    [['--token-file', '/run/secrets/tok'], '/run/secrets/tok'],
    [['--token-type', 'bearer'], 'bearer'],
    [['--max-tokens=4096'], '4096'],
    [['--no-auth', 'server.js'], 'server.js'],
    [['--auth', 'oauth'], 'oauth'],
    [['--keyboard', 'dvorak'], 'dvorak'],
    [['-k', 'insecure-mode'], 'insecure-mode'],
    [['-e', 'MAX_TOKENS=4096'], '4096'],
    [['-phunter'], 'hunter'],
    [['--tls-key', '/etc/ssl/key.pem'], '/etc/ssl/key.pem'],
    [['--private-key=./keys/id.pem'], './keys/id.pem'],
  ])('%j: %s is not a secret everywhere', (args, value) => {
    expect(secretValuesOf(stdio(args))).not.toContain(value);
  });

  it('keeps innocent values of broad env names, hides the rest', () => {
    const secrets = secretValuesOf(
      stdio([], {
        MAX_TOKENS: '4096',
        SESSION_DIR: '/home/me/data',
        AUTH_MODE: 'oauth',
        SESSION: 'sess-4f2a9b',
      }),
    );
    expect(secrets).not.toContain('4096');
    expect(secrets).not.toContain('/home/me/data');
    expect(secrets).not.toContain('oauth');
    expect(secrets).toContain('sess-4f2a9b');
  });
});

describe('secretValuesOf: argument secrets are still hidden everywhere', () => {
  it.each([
    [['--token', 'tok-value'], 'tok-value'],
    [['--api-key', 'plainword'], 'plainword'],
    [['--apiKey', 'plainword'], 'plainword'],
    [['--sessionKey', 'plainword'], 'plainword'],
    [['--access-key=AKIAxyz'], 'AKIAxyz'],
    [['--client-secret=cs-1'], 'cs-1'],
    [['--password', 'hunter2'], 'hunter2'],
    [['-pass', 'hunter2'], 'hunter2'],
    [['--key', 'hunter2'], 'hunter2'],
    [['--auth', 'user:pass'], 'user:pass'],
    [['--basic-auth', 'user:pass'], 'user:pass'],
    [['--credentials', 'c-val'], 'c-val'],
    [['--passphrase', 'plainword'], 'plainword'],
    [['--pw', 'plainword'], 'plainword'],
    [['-e', 'DB_PW=plainword'], 'plainword'],
    [['-e', 'GH_PAT=pat-value'], 'pat-value'],
    [['-e', 'OPENAI_API_KEY=oai-value'], 'oai-value'],
    // A short flag's value counts when it looks random.
    [['-p', 'hU7n2Ter9pWx4Qz1'], 'hU7n2Ter9pWx4Qz1'],
    [['-phU7n2Ter9pWx4Qz1'], 'hU7n2Ter9pWx4Qz1'],
  ])('%j: %s', (args, value) => {
    expect(secretValuesOf(stdio(args))).toContain(value);
  });

  it('takes a scheme value of any env name, and URL passwords with @ and /', () => {
    const secrets = secretValuesOf(
      stdio(['--db', 'postgres://u:ab/cd@h/db'], {
        BASIC: 'Basic dXNlcjpwYXNz',
        MYSQL_URL: 'mysql://user:p@ssw0rd@db/x',
      }),
    );
    expect(secrets).toEqual(expect.arrayContaining(['dXNlcjpwYXNz', 'p@ssw0rd', 'ab/cd']));
    const config = stdio([], { BASIC: 'Basic dXNlcjpwYXNz', UPSTREAM_HEADER: 'Bearer abcdefghij' });
    expect(shown(config, 'sending dXNlcjpwYXNz')).toBe('sending [redacted]');
    // Too plain for the free-text Bearer rule: only the scheme says it is a credential.
    expect(shown(config, 'token abcdefghij rejected')).toBe('token [redacted] rejected');
  });
});
