import { describe, expect, it } from 'vitest';
import { createSilentLogger } from '../../src/log.js';
import { ResourceSubscriptions } from '../../src/server/resource-subscriptions.js';

/** A fake upstream: records each request and answers only when the test says so. */
function fakeUpstream() {
  const calls: string[] = [];
  const waiting: { resolve: () => void; reject: (error: Error) => void }[] = [];
  const request = (method: string, params: { uri: string }) => {
    calls.push(`${method} ${params.uri}`);
    return new Promise<unknown>((resolve, reject) => {
      waiting.push({ resolve: () => resolve({}), reject });
    });
  };
  return {
    calls,
    subscriptions: new ResourceSubscriptions(request, createSilentLogger()),
    /** Answers the oldest request still waiting. */
    answer: async (error?: Error) => {
      const next = waiting.shift();
      if (!next) throw new Error('no upstream request is waiting');
      if (error) next.reject(error);
      else next.resolve();
      await flush();
    },
    get waiting() {
      return waiting.length;
    },
  };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('ResourceSubscriptions', () => {
  it('subscribes the upstream once for two first subscribers that arrive together', async () => {
    const up = fakeUpstream();
    const first = up.subscriptions.subscribe('res://a');
    const second = up.subscriptions.subscribe('res://a');
    await flush();
    expect(up.calls).toEqual(['resources/subscribe res://a']);
    await up.answer();
    await Promise.all([first, second]);
    expect(up.subscriptions.count('res://a')).toBe(2);

    const left = up.subscriptions.unsubscribe('res://a');
    await flush();
    expect(up.calls).toEqual(['resources/subscribe res://a']);
    await left;
    const last = up.subscriptions.unsubscribe('res://a');
    await up.answer();
    await last;
    expect(up.calls).toEqual(['resources/subscribe res://a', 'resources/unsubscribe res://a']);
    expect(up.subscriptions.count('res://a')).toBe(0);
  });

  it('unsubscribes the upstream after a subscribe that was still in flight when the last one left', async () => {
    const up = fakeUpstream();
    const subscribed = up.subscriptions.subscribe('res://a');
    await flush();
    await up.subscriptions.unsubscribe('res://a');
    expect(up.subscriptions.count('res://a')).toBe(0);
    expect(up.calls).toEqual(['resources/subscribe res://a']);
    await up.answer();
    await subscribed;
    expect(up.calls).toEqual(['resources/subscribe res://a', 'resources/unsubscribe res://a']);
    await up.answer();

    // Subscribed again afterwards: the upstream is asked again, once.
    const again = up.subscriptions.subscribe('res://a');
    await flush();
    await up.answer();
    await again;
    expect(up.calls).toHaveLength(3);
    expect(up.subscriptions.count('res://a')).toBe(1);
  });

  it('keeps the upstream subscribed when someone joins the in-flight subscribe after the first left', async () => {
    const up = fakeUpstream();
    const first = up.subscriptions.subscribe('res://a');
    await flush();
    await up.subscriptions.unsubscribe('res://a');
    const second = up.subscriptions.subscribe('res://a');
    await up.answer();
    await Promise.all([first, second]);
    expect(up.calls).toEqual(['resources/subscribe res://a']);
    expect(up.subscriptions.count('res://a')).toBe(1);
  });

  it('gives a failed subscribe to everyone who waited for it, counts none of them, and tries again next time', async () => {
    const up = fakeUpstream();
    const first = up.subscriptions.subscribe('res://a').catch((error: Error) => error.message);
    const second = up.subscriptions.subscribe('res://a').catch((error: Error) => error.message);
    await flush();
    await up.answer(new Error('upstream said no'));
    expect(await first).toBe('upstream said no');
    expect(await second).toBe('upstream said no');
    expect(up.subscriptions.count('res://a')).toBe(0);
    // Nothing was subscribed, so nothing is unsubscribed.
    await up.subscriptions.unsubscribe('res://a');
    expect(up.calls).toEqual(['resources/subscribe res://a']);

    const third = up.subscriptions.subscribe('res://a');
    await flush();
    await up.answer();
    await third;
    expect(up.calls).toEqual(['resources/subscribe res://a', 'resources/subscribe res://a']);
    expect(up.subscriptions.count('res://a')).toBe(1);
  });

  it('sends a new subscribe only after the unsubscribe still in flight for the same URI', async () => {
    const up = fakeUpstream();
    const subscribed = up.subscriptions.subscribe('res://a');
    await flush();
    await up.answer();
    await subscribed;
    const left = up.subscriptions.unsubscribe('res://a');
    const back = up.subscriptions.subscribe('res://a');
    await flush();
    expect(up.calls).toEqual(['resources/subscribe res://a', 'resources/unsubscribe res://a']);
    await up.answer();
    await left;
    expect(up.calls).toHaveLength(3);
    expect(up.waiting).toBe(1);
    await up.answer();
    await back;
    expect(up.subscriptions.count('res://a')).toBe(1);
  });
});
