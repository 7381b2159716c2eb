import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkTransition } from '../../src/upstream/state.js';

describe('checkTransition', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('allows the transitions of the table', () => {
    const log = { error: vi.fn() };
    expect(checkTransition('idle', 'starting', log)).toBe(true);
    expect(checkTransition('ready', 'starting', log)).toBe(true);
    expect(checkTransition('failed', 'starting', log)).toBe(true);
    expect(checkTransition('stopping', 'stopped', log)).toBe(true);
    expect(log.error).not.toHaveBeenCalled();
  });

  it('throws on an invalid transition under vitest, so that a test finds the bug', () => {
    expect(() => checkTransition('stopped', 'starting', { error: vi.fn() })).toThrow(
      'invalid upstream state transition stopped → starting',
    );
  });

  it('logs an invalid transition as an error in production, and refuses it without throwing', () => {
    vi.stubEnv('VITEST', '');
    const log = { error: vi.fn() };
    expect(checkTransition('backoff', 'needs_auth', log)).toBe(false);
    expect(log.error).toHaveBeenCalledWith(
      { from: 'backoff', to: 'needs_auth' },
      'invalid upstream state transition backoff → needs_auth; ignored',
    );
  });
});
