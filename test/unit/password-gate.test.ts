import { describe, expect, it } from 'vitest';
import { PasswordGate } from '../../src/public/password-gate.js';

const MIN = 60_000;

function clock(start = 1_000_000) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

function failTimes(gate: PasswordGate, n: number): void {
  for (let i = 0; i < n; i++) expect(gate.check('nope').ok).toBe(false);
}

describe('PasswordGate: comparison', () => {
  it('accepts the right password and counts down on wrong ones', () => {
    const gate = new PasswordGate('correct horse');
    expect(gate.check('correct horse')).toEqual({ ok: true });
    expect(gate.check('correct hors')).toEqual({ ok: false, reason: 'wrong', failuresLeft: 4 });
    expect(gate.check('wrong')).toEqual({ ok: false, reason: 'wrong', failuresLeft: 3 });
    expect(gate.lockedForS()).toBe(0);
  });

  it('compares exactly: no trimming, case matters, lengths may differ either way', () => {
    const gate = new PasswordGate('s3cret');
    for (const attempt of ['', ' s3cret', 's3cret ', 'S3cret', 's3cret-and-much-longer-than-it', 's']) {
      expect(new PasswordGate('s3cret').check(attempt).ok).toBe(false);
    }
    expect(gate.check('s3cret').ok).toBe(true);
    const long = 'x'.repeat(10_000);
    expect(new PasswordGate(long).check(long).ok).toBe(true);
    expect(new PasswordGate(long).check(`${long}x`).ok).toBe(false);
  });

  it('accepts a unicode password typed composed or decomposed (NFC on both sides)', () => {
    const composed = 'p\u00e4ss-\u00e9t\u00e9-\u{1f511}'; // "päss-été-🔑"
    const decomposed = 'pa\u0308ss-e\u0301te\u0301-\u{1f511}';
    expect(composed).not.toBe(decomposed);
    expect(new PasswordGate(composed).check(decomposed).ok).toBe(true);
    expect(new PasswordGate(decomposed).check(composed).ok).toBe(true);
    expect(new PasswordGate(composed).check('pass-ete-\u{1f511}').ok).toBe(false);
    expect(new PasswordGate('密码パスワード').check('密码パスワード').ok).toBe(true);
  });

  it('refuses an empty password and nonsense options', () => {
    expect(() => new PasswordGate('')).toThrow(RangeError);
    expect(() => new PasswordGate('x', { maxFailures: 0 })).toThrow(RangeError);
    expect(() => new PasswordGate('x', { maxFailures: 1.5 })).toThrow(RangeError);
    expect(() => new PasswordGate('x', { windowMs: 0 })).toThrow(RangeError);
  });
});

describe('PasswordGate: global lockout', () => {
  it('locks after 5 wrong passwords, even for the right one, and does not count tries while locked', () => {
    const c = clock();
    const gate = new PasswordGate('right', { now: c.now });
    for (let left = 4; left >= 0; left--) {
      expect(gate.check('wrong')).toEqual({ ok: false, reason: 'wrong', failuresLeft: left });
      c.advance(1000);
    }
    // The fifth failure was 1 s ago, the first 5 s ago: the lock ends 15 min after the first.
    expect(gate.check('right')).toEqual({ ok: false, reason: 'locked', retryAfterS: 15 * 60 - 5 });
    expect(gate.lockedForS()).toBe(15 * 60 - 5);
    // Hammering while locked does not extend the lock.
    for (let i = 0; i < 50; i++) expect(gate.check('wrong')).toMatchObject({ reason: 'locked' });
    expect(gate.lockedForS()).toBe(15 * 60 - 5);
  });

  it('retryAfterS decreases with the clock, is rounded up and never below 1', () => {
    const c = clock();
    const gate = new PasswordGate('right', { now: c.now });
    failTimes(gate, 5);
    expect(gate.lockedForS()).toBe(900);
    c.advance(10 * MIN);
    expect(gate.check('right')).toEqual({ ok: false, reason: 'locked', retryAfterS: 300 });
    c.advance(299_500);
    expect(gate.check('right')).toEqual({ ok: false, reason: 'locked', retryAfterS: 1 });
    c.advance(499);
    expect(gate.lockedForS()).toBe(1);
    c.advance(1);
    expect(gate.lockedForS()).toBe(0);
    expect(gate.check('right')).toEqual({ ok: true });
  });

  it('is a sliding window: once the oldest failure ages out, one more guess is allowed', () => {
    const c = clock();
    const gate = new PasswordGate('right', { now: c.now });
    gate.check('wrong');
    c.advance(5 * MIN);
    failTimes(gate, 4);
    expect(gate.lockedForS()).toBe(10 * 60);
    c.advance(10 * MIN);
    expect(gate.check('wrong')).toEqual({ ok: false, reason: 'wrong', failuresLeft: 0 });
    // The four failures from minute 5 are now the oldest: locked until minute 20.
    expect(gate.check('right')).toEqual({ ok: false, reason: 'locked', retryAfterS: 5 * 60 });
    c.advance(5 * MIN);
    expect(gate.check('wrong')).toEqual({ ok: false, reason: 'wrong', failuresLeft: 3 });
    expect(gate.check('right')).toEqual({ ok: true });
  });

  it('failures older than the window do not count', () => {
    const c = clock();
    const gate = new PasswordGate('right', { now: c.now });
    failTimes(gate, 4);
    c.advance(15 * MIN);
    expect(gate.check('wrong')).toEqual({ ok: false, reason: 'wrong', failuresLeft: 4 });
  });

  it('a success keeps earlier failures, so a guesser gets no more than maxFailures per window', () => {
    const c = clock();
    const gate = new PasswordGate('right', { now: c.now });
    failTimes(gate, 4);
    expect(gate.check('right')).toEqual({ ok: true });
    expect(gate.check('wrong')).toEqual({ ok: false, reason: 'wrong', failuresLeft: 0 });
    expect(gate.check('right')).toMatchObject({ ok: false, reason: 'locked' });
  });

  it('honours maxFailures and windowMs', () => {
    const c = clock();
    const gate = new PasswordGate('right', { maxFailures: 2, windowMs: 10_000, now: c.now });
    expect(gate.check('a')).toEqual({ ok: false, reason: 'wrong', failuresLeft: 1 });
    c.advance(2500);
    expect(gate.check('b')).toEqual({ ok: false, reason: 'wrong', failuresLeft: 0 });
    expect(gate.check('right')).toEqual({ ok: false, reason: 'locked', retryAfterS: 8 });
    c.advance(7500);
    expect(gate.check('right')).toEqual({ ok: true });
  });
});

describe('PasswordGate.unlock', () => {
  it('opens a locked gate at once, for the right password, and says how long it had left', () => {
    const c = clock();
    const gate = new PasswordGate('right', { now: c.now });
    failTimes(gate, 5);
    c.advance(2 * MIN);
    expect(gate.check('right')).toMatchObject({ ok: false, reason: 'locked' });
    expect(gate.unlock()).toEqual({ lockedForS: 13 * 60, failures: 5 });
    expect(gate.lockedForS()).toBe(0);
    expect(gate.check('right')).toEqual({ ok: true });
  });

  it('forgets the failures: a full count of tries again, and a second unlock clears nothing', () => {
    const c = clock();
    const gate = new PasswordGate('right', { now: c.now });
    failTimes(gate, 5);
    gate.unlock();
    expect(gate.unlock()).toEqual({ lockedForS: 0, failures: 0 });
    expect(gate.check('wrong')).toEqual({ ok: false, reason: 'wrong', failuresLeft: 4 });
    failTimes(gate, 4);
    // Locked again by five new failures, for a whole window from the first of them.
    expect(gate.lockedForS()).toBe(15 * 60);
  });

  it('not locked: resets the count of recent failures, not the ones that aged out', () => {
    const c = clock();
    const gate = new PasswordGate('right', { now: c.now });
    failTimes(gate, 2);
    c.advance(15 * MIN);
    failTimes(gate, 3);
    expect(gate.unlock()).toEqual({ lockedForS: 0, failures: 3 });
    expect(gate.check('wrong')).toEqual({ ok: false, reason: 'wrong', failuresLeft: 4 });
  });

  it('a new gate has nothing to unlock', () => {
    expect(new PasswordGate('right').unlock()).toEqual({ lockedForS: 0, failures: 0 });
  });
});
