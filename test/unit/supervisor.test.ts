import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BridgeError } from '../../src/errors.js';
import { Generation } from '../../src/upstream/generation.js';
import { type EpisodeContext, Supervisor, type SupervisorOptions } from '../../src/upstream/supervisor.js';

type Episode = (context: EpisodeContext) => Promise<void>;

/** A supervisor driven by a fake episode, recording what it was told. */
function harness(episode: Episode, options: Partial<SupervisorOptions> = {}) {
  const calls: { attempt: number; at: number; generation: Generation }[] = [];
  const backoffs: number[] = [];
  const giveUps: unknown[] = [];
  const supervisor = new Supervisor({
    backoff: { minMs: 100, maxMs: 500, factor: 2 },
    stableAfterMs: 1000,
    onBackoff: (attempt) => backoffs.push(attempt),
    onGiveUp: (error) => giveUps.push(error),
    ...options,
    episode: (context) => {
      calls.push({ attempt: context.attempt, at: Date.now(), generation: context.generation });
      return episode(context);
    },
  });
  return { supervisor, calls, backoffs, giveUps };
}

const fail = async () => {
  throw new Error('crashed during start-up');
};
const permanent = async () => {
  throw new BridgeError('COMMAND_NOT_FOUND', 'no such command');
};
/** A connection up for `ms` (fake time), or until its generation ends. */
const upFor = (ms: number, generation: Generation) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms);
    generation.onEnd(resolve);
  });
/** Never returns until its generation ends (a connect in progress), then rejects like one. */
const hang = ({ generation }: EpisodeContext) =>
  new Promise<void>((_, reject) => {
    generation.signal.addEventListener('abort', () => reject(generation.signal.reason));
  });

describe('Supervisor', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    // p-retry randomizes each delay by 1–2×: pinned to 1× so the delays can be checked exactly.
    vi.spyOn(Math, 'random').mockReturnValue(0);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('backs off exponentially from minMs, capped at maxMs, counting the attempts', async () => {
    const { supervisor, calls, backoffs } = harness(fail);
    supervisor.start();
    await vi.advanceTimersByTimeAsync(100 + 200 + 400 + 500 + 500);
    const gaps = calls.slice(1).map((call, i) => call.at - calls[i]!.at);
    expect(gaps).toEqual([100, 200, 400, 500, 500]);
    expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(backoffs).toEqual([1, 2, 3, 4, 5, 6]);
    await supervisor.stop();
  });

  it('gives every episode a new generation, ended once the episode is over', async () => {
    const { supervisor, calls } = harness(fail);
    supervisor.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.generation.id)).toEqual([1, 2]);
    expect(calls[0]!.generation.ended).toEqual({ generation: 1, kind: 'failed' });
    expect(supervisor.current).toBe(calls[1]!.generation);
    await supervisor.stop();
    expect(calls[1]!.generation.ended?.kind).toBe('stopped');
  });

  it('starts a fresh attempt budget at once after a connection that stayed up for stableAfterMs', async () => {
    const episode: Episode = async ({ attempt, generation, ready }) => {
      if (attempt === 1 && calls.length === 1) throw new Error('first start-up failed');
      ready();
      await upFor(1000, generation);
      generation.end({ kind: 'closed' });
      throw new Error('connection lost');
    };
    const { supervisor, calls, backoffs } = harness(episode);
    supervisor.start();
    await vi.advanceTimersByTimeAsync(100); // attempt 2 connects
    await vi.advanceTimersByTimeAsync(1000); // … stays up 1 s, drops
    expect(calls.map((c) => c.attempt)).toEqual([1, 2, 1]);
    expect(calls[2]!.at - calls[1]!.at).toBe(1000);
    expect(backoffs).toEqual([1]);
    await supervisor.stop();
  });

  it('backs off after a connection that dropped before stableAfterMs', async () => {
    const episode: Episode = async ({ generation, ready }) => {
      ready();
      await upFor(999, generation);
      generation.end({ kind: 'closed' });
      throw new Error('connection lost');
    };
    const { supervisor, calls, backoffs } = harness(episode);
    supervisor.start();
    await vi.advanceTimersByTimeAsync(999 + 100);
    expect(calls.map((c) => c.attempt)).toEqual([1, 2]);
    expect(backoffs).toEqual([1]);
    await supervisor.stop();
  });

  it('does not count a stable connection that ended for a lost grant as a success', async () => {
    const error = new BridgeError('NEEDS_AUTH', 'the grant is gone');
    const episode: Episode = async ({ generation, ready }) => {
      ready();
      await upFor(5000, generation);
      generation.end({ kind: 'auth', error });
      throw error;
    };
    const { supervisor, calls, giveUps } = harness(episode);
    supervisor.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toHaveLength(1);
    expect(giveUps).toEqual([error]);
    await supervisor.stop();
  });

  it('waits after a failure retrying cannot fix, until retryNow()', async () => {
    const { supervisor, calls, giveUps, backoffs } = harness(permanent);
    supervisor.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toHaveLength(1);
    expect(giveUps).toHaveLength(1);
    expect(backoffs).toEqual([]);
    supervisor.retryNow();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.attempt)).toEqual([1, 1]);
    expect(giveUps).toHaveLength(2);
    await supervisor.stop();
  });

  it('does not lose a retryNow() that comes while it is giving up', async () => {
    const { supervisor, calls } = harness(permanent, {
      onGiveUp: () => {
        if (calls.length === 1) supervisor.retryNow();
      },
    });
    supervisor.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(2);
    await supervisor.stop();
  });

  it('lets a backoff delay run its course on retryNow(), and remembers it for the next wait', async () => {
    let failures = 0;
    const episode: Episode = async () => {
      failures++;
      if (failures === 1) throw new Error('retryable');
      throw new BridgeError('COMMAND_NOT_FOUND', 'no such command');
    };
    const { supervisor, calls } = harness(episode);
    supervisor.start();
    await vi.advanceTimersByTimeAsync(0);
    supervisor.retryNow(); // in backoff
    await vi.advanceTimersByTimeAsync(99);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1); // the delay is over: attempt 2 fails for good …
    // … and the wake-up that came meanwhile starts a new streak at once.
    expect(calls.map((c) => c.attempt)).toEqual([1, 2, 1]);
    await supervisor.stop();
  });

  it('stops during a connect: the episode is aborted, nothing is retried or reported', async () => {
    const { supervisor, calls, backoffs, giveUps } = harness(hang);
    supervisor.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(1);
    await supervisor.stop();
    expect(calls[0]!.generation.ended?.kind).toBe('stopped');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toHaveLength(1);
    expect(backoffs).toEqual([]);
    expect(giveUps).toEqual([]);
  });

  it('stops during a backoff delay without another attempt', async () => {
    const { supervisor, calls } = harness(fail);
    supervisor.start();
    await vi.advanceTimersByTimeAsync(0);
    await supervisor.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toHaveLength(1);
  });

  it('stops while waiting for retryNow(), and never starts again', async () => {
    const { supervisor, calls } = harness(permanent);
    supervisor.start();
    await vi.advanceTimersByTimeAsync(0);
    await supervisor.stop();
    supervisor.retryNow();
    supervisor.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toHaveLength(1);
  });

  it('ends only a live generation with invalidate()', async () => {
    const { supervisor, calls } = harness(hang);
    supervisor.start();
    await vi.advanceTimersByTimeAsync(0);
    const first = calls[0]!.generation;
    expect(supervisor.invalidate({ kind: 'reconnect' })).toBe(true);
    expect(supervisor.invalidate({ kind: 'reconnect' }, first)).toBe(false);
    expect(first.ended).toEqual({ generation: 1, kind: 'reconnect' });
    await supervisor.stop();
  });
});

describe('Generation', () => {
  it('keeps the first reason, unless a lost grant or a stop comes after it', () => {
    const generation = new Generation(7);
    const error = new BridgeError('NEEDS_AUTH', 'the grant is gone');
    expect(generation.end({ kind: 'closed' })).toBe(true);
    expect(generation.end({ kind: 'reconnect' })).toBe(false);
    expect(generation.end({ kind: 'auth', error })).toBe(true);
    expect(generation.ended).toEqual({ generation: 7, kind: 'auth', error });
    expect(generation.end({ kind: 'stopped' })).toBe(true);
    expect(generation.end({ kind: 'auth', error })).toBe(false);
    expect(generation.ended?.kind).toBe('stopped');
  });

  it('runs its cleanups once, when it ends, and at once when added after', () => {
    const generation = new Generation(1);
    const ran: string[] = [];
    generation.onEnd(() => ran.push('timer'));
    const cancel = generation.onEnd(() => ran.push('cancelled'));
    generation.onEnd(() => {
      throw new Error('a failing cleanup');
    });
    generation.onEnd(() => ran.push('transport'));
    cancel();
    expect(generation.live).toBe(true);
    generation.end({ kind: 'failed' });
    generation.end({ kind: 'stopped' });
    expect(ran).toEqual(['timer', 'transport']);
    expect(generation.signal.aborted).toBe(true);
    generation.onEnd(() => ran.push('late'));
    expect(ran).toEqual(['timer', 'transport', 'late']);
  });
});
