import type { UpstreamSnapshot } from '../upstream/state.js';

/**
 * Calls `onReconnect(name)` each time an upstream is `ready` again after it had been ready before:
 * the connection dropped (or was dropped on purpose) and came back. Failed attempts before the
 * first `ready` are not reconnects. A reload that replaces an upstream starts it over at `idle`,
 * so its first connection is not counted either. Returns the unsubscribe function.
 */
export function watchReconnects(
  onSnapshot: (listener: (snapshot: UpstreamSnapshot) => void) => () => void,
  onReconnect: (upstream: string) => void,
): () => void {
  const seen = new Map<string, { state: string; wasReady: boolean }>();
  return onSnapshot((snapshot) => {
    const previous = seen.get(snapshot.name);
    const fresh = snapshot.state === 'idle' || previous === undefined;
    const wasReady = fresh ? false : previous.wasReady;
    const becameReady = snapshot.state === 'ready' && previous?.state !== 'ready';
    if (becameReady && wasReady) onReconnect(snapshot.name);
    seen.set(snapshot.name, { state: snapshot.state, wasReady: wasReady || snapshot.state === 'ready' });
  });
}
