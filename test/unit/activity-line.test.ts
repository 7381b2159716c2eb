import { describe, expect, it } from 'vitest';
import { ActivityLine, isoTime } from '../../src/activity/activity-line.js';
import type { ActivityEntry } from '../../src/activity/activity-log.js';

type Untimed = Omit<ActivityEntry, 'time'>;

// In the order the call recorder makes them (ActivityEntry's order): the line must equal what
// JSON.stringify writes for them, byte for byte.
function entry(overrides: Partial<Untimed> = {}, client: Partial<Untimed['client']> = {}): Untimed {
  return {
    kind: 'tool',
    client: {
      name: 'claude-ai',
      version: '1.2.3',
      session: '6f1c2a3e-9b7d-4e21-8c55-0a1b2c3d4e5f',
      era: '2025',
      listener: 'local',
      requestId: 7,
      ...client,
    },
    name: 'notes__search',
    original: 'search',
    upstream: 'notes',
    durationMs: 12.3,
    outcome: 'ok',
    errorCode: undefined,
    resultBytes: 1234,
    arguments: undefined,
    result: undefined,
    ...overrides,
  };
}

const TIME = '2026-12-04T03:59:12.045Z';
const expected = (e: Untimed) => `${JSON.stringify({ time: TIME, ...e })}\n`;

describe('ActivityLine', () => {
  it('writes what JSON.stringify writes, for every kind of field', () => {
    const line = new ActivityLine();
    const cases: Untimed[] = [
      entry(),
      entry({}, { requestId: 'req "1" \\ \n' }),
      entry({}, { requestId: undefined, session: undefined, name: undefined, version: undefined }),
      entry({}, { era: '2026-07-28', listener: 'public', name: 'ChatGPT ✓ \u2028 \u0001 "q"' }),
      entry({ original: undefined, upstream: undefined, outcome: 'error', errorCode: 'UNKNOWN_TOOL' }),
      entry({ name: 'weird "name" \\ \t é 😀', original: 'x\u0000y' }),
      entry({ kind: 'resource', name: 'file:///tmp/a b.txt', resultBytes: undefined }),
      entry({ kind: 'prompt', outcome: 'tool_error', durationMs: 0 }),
      entry({ durationMs: Number.NaN, resultBytes: Number.POSITIVE_INFINITY }),
      entry({
        arguments: { q: 'x', n: [1, null, true] },
        result: { content: [{ type: 'text', text: 'hé' }] },
      }),
      entry({ arguments: 'not-recorded note', result: undefined }),
    ];
    for (const e of cases) expect(line.of(TIME, e)).toBe(expected(e));
  });

  it('notices every change of the client or route it remembers', () => {
    const line = new ActivityLine();
    const first = entry();
    expect(line.of(TIME, first)).toBe(expected(first));
    // Each field alone, then back: a stale remembered part would show as a wrong line.
    const changes: [Partial<Untimed>, Partial<Untimed['client']>][] = [
      [{}, { name: 'other' }],
      [{}, { version: '2' }],
      [{}, { session: 's-2' }],
      [{}, { era: '2026-07-28' }],
      [{}, { listener: 'public' }],
      [{ name: 'notes__list' }, {}],
      [{ original: 'list' }, {}],
      [{ upstream: 'other' }, {}],
      [{ original: undefined }, {}],
    ];
    for (const [fields, client] of changes) {
      const changed = entry(fields, client);
      expect(line.of(TIME, changed)).toBe(expected(changed));
      expect(line.of(TIME, first)).toBe(expected(first));
    }
  });

  it('throws where JSON.stringify throws (the log then drops that entry only)', () => {
    expect(() => new ActivityLine().of(TIME, entry({ arguments: { n: 1n } }))).toThrow(TypeError);
  });
});

describe('isoTime', () => {
  it('is Date#toISOString for integer epoch milliseconds', () => {
    const samples = [
      0, 1, 9, 10, 99, 100, 999, 1000, 1_764_820_752_045, 1_764_820_752_999, 1_764_820_753_000,
    ];
    // Out of order too: the remembered second must not leak into another one.
    for (const ms of [...samples, ...samples.reverse()]) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    const now = Date.now();
    for (let ms = now - 2500; ms < now + 2500; ms += 7) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });
});
