import { describe, expect, it } from 'vitest';
import { jsonByteLength } from '../../src/activity/json-size.js';
import {
  activitySecretsOf,
  DEFAULT_MAX_BYTES,
  NESTED_TOO_DEEP,
  redactValue,
} from '../../src/activity/redact-secrets.js';
import type { UpstreamConfig } from '../../src/config/schema.js';

const R = '[redacted]';
const GHP = `ghp_${'A1b2C3d4E5'.repeat(4)}`;
const PEM = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----';

/** A string argument as redactValue sees it: the value inside `{ text }`. */
function redacted(text: string, known: readonly string[] = []): unknown {
  return (redactValue({ text }, known) as { text: unknown }).text;
}

describe('redactValue: each secret pattern, and a near-miss that stays', () => {
  it.each([
    // [what, secret → redacted, near-miss that must stay as it is]
    ['bearer token', ['Bearer abc.def-123', `Bearer ${R}`], 'Bearer token required'],
    [
      'Authorization value',
      ['Authorization: xyzzy123', `Authorization: ${R}`],
      'authorization failed for user',
    ],
    [
      'Authorization with a scheme',
      ['authorization=Basic dXNlcjpwYXNz', `authorization=Basic ${R}`],
      'Basic auth',
    ],
    ['AWS key id', ['id AKIAIOSFODNN7EXAMPLE', `id ${R}`], 'id AKIAIOSFODNN7EXAMPL'],
    ['AWS key id, one too many', ['ASIAIOSFODNN7EXAMPLE', R], 'AKIAIOSFODNN7EXAMPLEX'],
    [
      'private key block',
      [`key: ${PEM} end`, `key: ${R} end`],
      '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----',
    ],
    ['GitHub classic token', [`use ${GHP}`, `use ${R}`], 'use ghp_abc123'],
    ['GitHub fine-grained token', [`github_pat_${'11ABCDEFG0'.repeat(4)}`, R], 'github_pat_short'],
    ['OpenAI key', ['sk-proj-abcdefghijklmnopqrstuvwx', R], 'task-list-for-the-whole-team-2024'],
    ['Anthropic key', ['sk-ant-api03-abcdefghijklmnopqrstuvwxyz', R], 'pip install sk-learn'],
    ['password= pair', ['password=hunter2 next', `password=${R} next`], 'the password is required'],
    ['secret-named pair', ['db_password=s3cr3t&x=1', `db_password=${R}&x=1`], 'max_tokens=4096'],
  ])('%s', (_what, [secret, expected], nearMiss) => {
    expect(redacted(secret!)).toBe(expected);
    expect(redacted(nearMiss)).toBe(nearMiss);
  });

  it('takes a private key header whose body is cut off, with all that follows it', () => {
    // A key truncated by a size limit is still a key; the header alone costs nothing to hide.
    expect(redacted('x -----BEGIN RSA PRIVATE KEY-----\nMIIEow')).toBe(`x ${R}`);
    expect(redacted('-----BEGIN OPENSSH PRIVATE KEY-----')).toBe(R);
    expect(redacted('a BEGIN PRIVATE KEY marker in prose')).toBe('a BEGIN PRIVATE KEY marker in prose');
  });
});

describe('redactValue: keys that name a secret', () => {
  it('hides the value of secret keys, whatever it looks like', () => {
    expect(
      redactValue(
        {
          password: 'hunter2',
          apiKey: 'plain',
          client_secret: 12345,
          Authorization: 'whatever',
          token: { nested: 'x' },
          'x-api-key': ['a'],
        },
        [],
      ),
    ).toEqual({ password: R, apiKey: R, client_secret: R, Authorization: R, token: R, 'x-api-key': R });
  });

  it('keeps null and booleans under secret keys, and keys that only contain a secret word', () => {
    const value = {
      password: null,
      token: false,
      max_tokens: 4096,
      token_type: 'Bearer',
      author: 'Jane',
      session: 'abc',
      keyword: 'x',
      key: 'user:42',
    };
    expect(redactValue(value, [])).toEqual(value);
  });
});

describe('redactValue: known secrets', () => {
  it('replaces every occurrence of a known value of 6 characters or more, longest first', () => {
    const out = redactValue(
      { q: 'use hunter22 and hunter22-extended', list: ['hunter22'], ['hunter22']: 'key too' },
      ['hunter22', 'hunter22-extended'],
    );
    expect(out).toEqual({ q: `use ${R} and ${R}`, list: [R], [R]: 'key too' });
  });

  it('leaves short known values alone: "1" or "on" would be everywhere', () => {
    expect(redactValue({ n: 'page 12345 of on' }, ['12345', 'on', '1'])).toEqual({ n: 'page 12345 of on' });
    expect(redactValue({ n: 'page 123456' }, ['123456'])).toEqual({ n: `page ${R}` });
  });

  it('takes every env and header value of the upstreams, whatever its name', () => {
    const upstreams = [
      { kind: 'stdio', name: 'a', command: 'x', args: [], env: { NODE_ENV: 'production', X: 'abcdef1' } },
      { kind: 'http', name: 'b', url: 'https://h/mcp', headers: { 'X-Tenant': 'tenant-7' }, oauth: {} },
    ] as unknown as UpstreamConfig[];
    expect(activitySecretsOf(upstreams)).toEqual(
      expect.arrayContaining(['production', 'abcdef1', 'tenant-7']),
    );
  });
});

describe('redactValue: structure and bounds', () => {
  it('copies deep objects and arrays, redacting at every level, never changing the input', () => {
    const input = { a: [{ b: { c: [`token ${GHP}`, 1, true, null] } }], d: 'plain' };
    const snapshot = structuredClone(input);
    expect(redactValue(input, [])).toEqual({ a: [{ b: { c: [`token ${R}`, 1, true, null] } }], d: 'plain' });
    expect(input).toEqual(snapshot);
  });

  it('drops what JSON drops and keeps a __proto__ key as data', () => {
    const parsed = JSON.parse('{"__proto__": {"polluted": true}, "f": 1}') as Record<string, unknown>;
    const out = redactValue({ ...parsed, u: undefined, fn: () => 1, list: [undefined] }, []) as Record<
      string,
      unknown
    >;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify(out))).toEqual({
      ['__proto__']: { polluted: true },
      f: 1,
      list: [null],
    });
  });

  it('replaces levels past the depth cap', () => {
    const deep = { a: { b: { c: { d: 'x' } } } };
    expect(redactValue(deep, [], { maxDepth: 2 })).toEqual({ a: { b: NESTED_TOO_DEEP } });
  });

  it('stops at the size cap and records a note instead', () => {
    const big = { text: 'x'.repeat(DEFAULT_MAX_BYTES + 1) };
    expect(redactValue(big, [])).toBe(`[not recorded: more than ${DEFAULT_MAX_BYTES} bytes]`);
    expect(redactValue(['a', 'b', 'c'], [], { maxBytes: 8 })).toBe('[not recorded: more than 8 bytes]');
    // A known size over the cap: said in the note, and the value is not walked at all.
    expect(
      redactValue(
        {
          get boom() {
            throw new Error('walked');
          },
        },
        [],
        { knownBytes: 10 ** 7 },
      ),
    ).toBe('[not recorded: 10000000 bytes]');
  });

  it('stays bounded on a value that refers to itself', () => {
    const loop: Record<string, unknown> = { name: 'loop' };
    loop.self = loop;
    loop.again = loop;
    expect(redactValue(loop, [])).toMatch(/^\[not recorded: more than \d+ bytes\]$/);
  });
});

describe('jsonByteLength', () => {
  it('is the byte length of JSON.stringify, without building the string', () => {
    const values: unknown[] = [
      { content: [{ type: 'text', text: 'héllo "wörld"\n\t\u0001 ✓ 😀' }], isError: false },
      [1, -2.5, 1e21, null, undefined, () => 1, Number.NaN, 'x'],
      { a: undefined, b: { c: [] }, d: {}, e: new Date(0) },
      'plain',
      42,
      // Short strings are checked char by char first; each way out of that check, and both sides of its length limit.
      [
        'a"b',
        'a\\b',
        'tab\there',
        '\u007f',
        '~',
        ' ',
        'é',
        'x'.repeat(64),
        'x'.repeat(65),
        `${'x'.repeat(63)}"`,
      ],
    ];
    for (const value of values) {
      expect(jsonByteLength(value)).toBe(Buffer.byteLength(JSON.stringify(value)));
    }
    expect(jsonByteLength(undefined)).toBe(0);
  });
});
