import { describe, expect, it } from 'vitest';
import { watchReconnects } from '../../src/metrics/reconnects.js';
import { fixFor } from '../../src/server/page/fixes.js';
import type { UpstreamSnapshot } from '../../src/upstream/state.js';

const failing = (state: string, code: string, message = '') => ({
  name: 'files',
  state,
  lastError: { code, message },
});

describe('the fix the status page shows', () => {
  it('says how to log in, what command is missing, which config key to change', () => {
    expect(fixFor(failing('needs_auth', 'NEEDS_AUTH'))).toMatchObject({ command: 'npm run auth -- files' });
    expect(fixFor({ name: 'files', state: 'needs_auth', lastError: null })?.command).toBe(
      'npm run auth -- files',
    );
    expect(
      fixFor(failing('failed', 'COMMAND_NOT_FOUND', 'upstream "files": command "uvx" not found (ENOENT)')),
    ).toMatchObject({ missing: 'uvx', key: 'mcpServers.files.command' });
    expect(fixFor(failing('failed', 'CWD_NOT_FOUND'))?.key).toBe('mcpServers.files.cwd');
    expect(fixFor(failing('failed', 'AUTH_REJECTED'))?.key).toBe('mcpServers.files.headers.Authorization');
    expect(fixFor(failing('backoff', 'UPSTREAM_OUTPUT_TOO_LARGE'))?.key).toBe('maxStdoutLineBytes');
    expect(fixFor(failing('failed', 'SECRET_UNAVAILABLE'))?.command).toBe('op signin');
    expect(fixFor(failing('failed', 'HANDSHAKE_FAILED'))?.text).toContain('reconnect');
  });

  it('has nothing to fix for a ready upstream, or for one that retries by itself', () => {
    expect(fixFor(failing('ready', 'UPSTREAM_CLOSED'))).toBeNull();
    expect(fixFor(failing('backoff', 'UPSTREAM_CLOSED'))).toBeNull();
    expect(fixFor({ name: 'files', state: 'starting', lastError: null })).toBeNull();
  });
});

describe('watchReconnects', () => {
  it('counts a return to ready after a ready, not the first connection nor repeated ready snapshots', () => {
    let emit: (s: UpstreamSnapshot) => void = () => {};
    const counted: string[] = [];
    const stop = watchReconnects(
      (listener) => {
        emit = listener;
        return () => {};
      },
      (name) => counted.push(name),
    );
    const snap = (name: string, state: string) => emit({ name, state } as UpstreamSnapshot);
    for (const state of ['starting', 'backoff', 'starting', 'ready', 'ready']) snap('a', state);
    expect(counted).toEqual([]);
    for (const state of ['backoff', 'starting', 'ready', 'ready', 'starting', 'ready']) snap('a', state);
    expect(counted).toEqual(['a', 'a']);
    // A reload replaced it: the new one's first connection is not a reconnect.
    for (const state of ['idle', 'starting', 'ready']) snap('a', state);
    snap('b', 'ready');
    expect(counted).toEqual(['a', 'a']);
    stop();
  });
});
