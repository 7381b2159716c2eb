import { SdkError, SdkErrorCode } from '@modelcontextprotocol/client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CallClock } from '../../src/upstream/call-clock.js';

describe('CallClock', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('aborts with the SDK timeout error once the timeout passes', () => {
    const clock = new CallClock(1000, undefined);
    vi.advanceTimersByTime(999);
    expect(clock.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(clock.signal.aborted).toBe(true);
    const reason = clock.signal.reason as SdkError;
    expect(reason).toBeInstanceOf(SdkError);
    expect(reason.code).toBe(SdkErrorCode.RequestTimeout);
  });

  it('starts the full timeout over on progress', () => {
    const clock = new CallClock(1000, undefined);
    vi.advanceTimersByTime(900);
    clock.restart();
    vi.advanceTimersByTime(900);
    clock.restart();
    vi.advanceTimersByTime(999);
    expect(clock.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(clock.signal.aborted).toBe(true);
  });

  it('stands still while waiting for the client, then starts over', async () => {
    const clock = new CallClock(1000, undefined);
    vi.advanceTimersByTime(900);
    let answer: (value: string) => void = () => {};
    const asked = clock.pauseWhile(new Promise<string>((resolve) => (answer = resolve)));
    vi.advanceTimersByTime(60_000);
    // Progress while a person takes their time over an elicitation does not restart the clock.
    clock.restart();
    vi.advanceTimersByTime(60_000);
    expect(clock.signal.aborted).toBe(false);
    answer('accepted');
    await expect(asked).resolves.toBe('accepted');
    vi.advanceTimersByTime(999);
    expect(clock.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(clock.signal.aborted).toBe(true);
  });

  it('stands still until the last of overlapping waits ends, even one that fails', async () => {
    const clock = new CallClock(1000, undefined);
    let first: () => void = () => {};
    let second: (error: Error) => void = () => {};
    const a = clock.pauseWhile(new Promise<void>((resolve) => (first = resolve)));
    const b = clock.pauseWhile(new Promise<void>((_, reject) => (second = reject)));
    first();
    await a;
    vi.advanceTimersByTime(5000);
    expect(clock.signal.aborted).toBe(false);
    second(new Error('the client went away'));
    await expect(b).rejects.toThrow('the client went away');
    vi.advanceTimersByTime(1000);
    expect(clock.signal.aborted).toBe(true);
  });

  it("follows the caller's signal, and forgets it once stopped", () => {
    const outer = new AbortController();
    const clock = new CallClock(1000, outer.signal);
    outer.abort(new Error('cancelled by the client'));
    expect(clock.signal.reason).toEqual(new Error('cancelled by the client'));

    const later = new AbortController();
    const stopped = new CallClock(1000, later.signal);
    stopped.stop();
    later.abort(new Error('too late'));
    vi.advanceTimersByTime(10_000);
    expect(stopped.signal.aborted).toBe(false);
  });

  it('starts aborted when the caller already gave up', () => {
    const outer = new AbortController();
    outer.abort(new Error('gone'));
    const clock = new CallClock(1000, outer.signal);
    expect(clock.signal.reason).toEqual(new Error('gone'));
  });
});
