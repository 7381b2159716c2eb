import { describe, expect, it } from 'vitest';
import { InputRounds } from '../../src/server/input-required.js';
import type { CallOptions } from '../../src/upstream/upstream.js';

const round = (extra: Partial<Parameters<InputRounds['run']>[0]> = {}) => ({
  target: 'tools/call tool x',
  signal: new AbortController().signal,
  clientCapabilities: { elicitation: {} },
  requestState: undefined,
  inputResponses: undefined,
  ...extra,
});

describe('InputRounds', () => {
  it('cancels the upstream call and fails its request when the client never comes back', async () => {
    const rounds = new InputRounds(50);
    let seen: CallOptions | undefined;
    let askError: unknown;
    const first = await rounds.run(round(), async (options) => {
      seen = options;
      await options.onServerRequest!({ method: 'elicitation/create', params: { message: 'name?' } }).catch(
        (error: unknown) => {
          askError = error;
        },
      );
      return { content: [] };
    });
    expect(first).toMatchObject({ resultType: 'input_required', inputRequests: { 'elicitation-1': {} } });
    expect(rounds.size).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(rounds.size).toBe(0);
    expect(seen!.signal!.aborted).toBe(true);
    expect(String(askError)).toMatch(/did not answer within/);
  });

  it('sends requests that arrive together in one round, and hands back the result of the last', async () => {
    const rounds = new InputRounds();
    const first = await rounds.run(
      round({ clientCapabilities: { elicitation: {}, roots: {} } }),
      async (options) => {
        const [a, b] = await Promise.all([
          options.onServerRequest!({ method: 'elicitation/create', params: {} }),
          options.onServerRequest!({ method: 'roots/list' }),
        ]);
        return { got: [a, b] };
      },
    );
    expect(Object.keys((first as { inputRequests: object }).inputRequests)).toEqual([
      'elicitation-1',
      'roots-2',
    ]);
    const done = await rounds.run(
      round({
        requestState: first.requestState,
        inputResponses: { 'elicitation-1': { action: 'decline' }, 'roots-2': { roots: [] } },
      }),
      () => {
        throw new Error('a retry does not start a new call');
      },
    );
    expect(done).toEqual({ got: [{ action: 'decline' }, { roots: [] }] });
    expect(rounds.size).toBe(0);
  });

  it('cancels the upstream call when the client leaves while a round is running', async () => {
    const rounds = new InputRounds();
    const leave = new AbortController();
    let seen: CallOptions | undefined;
    const pending = rounds.run(round({ signal: leave.signal }), (options) => {
      seen = options;
      return new Promise((_, reject) =>
        options.signal!.addEventListener('abort', () => reject(new Error('cancelled'))),
      );
    });
    leave.abort();
    await expect(pending).rejects.toThrow('cancelled');
    expect(seen!.signal!.aborted).toBe(true);
  });

  it("sends each round's progress to the request of that round", async () => {
    const rounds = new InputRounds();
    const firstLeg: number[] = [];
    const secondLeg: number[] = [];
    const first = await rounds.run(
      round({ sink: { onprogress: (p) => firstLeg.push(p.progress) } }),
      async (options) => {
        options.onprogress!({ progress: 1 });
        await options.onServerRequest!({ method: 'elicitation/create', params: {} });
        options.onprogress!({ progress: 2 });
        return {};
      },
    );
    await rounds.run(
      round({
        requestState: first.requestState,
        inputResponses: { 'elicitation-1': { action: 'cancel' } },
        sink: { onprogress: (p) => secondLeg.push(p.progress) },
      }),
      () => Promise.reject(new Error('not called')),
    );
    expect(firstLeg).toEqual([1]);
    expect(secondLeg).toEqual([2]);
  });

  it('refuses at once what the client cannot answer by the SDK rules (URL elicitation, sampling with tools)', async () => {
    const rounds = new InputRounds();
    const errors: string[] = [];
    const result = await rounds.run(
      round({ clientCapabilities: { elicitation: {}, sampling: {} } }),
      async (options) => {
        for (const request of [
          { method: 'elicitation/create', params: { mode: 'url', url: 'https://example.com', message: 'x' } },
          { method: 'sampling/createMessage', params: { messages: [], maxTokens: 1, tools: [] } },
        ]) {
          await options.onServerRequest!(request).catch((error: Error) => errors.push(error.message));
        }
        return { done: true };
      },
    );
    expect(result).toEqual({ done: true });
    expect(errors).toEqual([
      expect.stringContaining('elicitation.url'),
      expect.stringContaining('sampling.tools'),
    ]);
    expect(rounds.size).toBe(0);
  });
});
