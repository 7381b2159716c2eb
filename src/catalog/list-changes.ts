import type { UpstreamSource } from '../upstream/registry-view.js';

export type ListKind = 'tools' | 'prompts' | 'resources';

/**
 * When clients must re-list: after each upstream change, the lists whose merged contents changed,
 * plus tools whenever an upstream came up or went away (its tools may have changed behind its
 * cached list). A config reload touches several upstreams: it yields one event per list for all.
 */
export class ListChanges {
  private readonly listeners = new Set<(kind: ListKind) => void>();

  /** `rebuild` recomputes the merged lists and returns those that changed. */
  constructor(registry: UpstreamSource, rebuild: () => Set<ListKind>) {
    const ready = new Map<string, boolean>();
    for (const snapshot of registry.snapshots()) ready.set(snapshot.name, snapshot.state === 'ready');
    let batch: Set<ListKind> | undefined;
    registry.onSnapshot((snapshot) => {
      const isReady = snapshot.state === 'ready';
      const cameOrWent = ready.get(snapshot.name) !== isReady;
      ready.set(snapshot.name, isReady);
      const changed = rebuild();
      if (cameOrWent) changed.add('tools');
      if (batch) for (const kind of changed) batch.add(kind);
      else this.emit(changed);
    });
    registry.onBatch((phase) => {
      if (phase === 'begin') {
        batch ??= new Set();
        return;
      }
      const changed = batch ?? new Set<ListKind>();
      batch = undefined;
      for (const kind of rebuild()) changed.add(kind);
      this.emit(changed);
    });
  }

  /** Fires with the list that changed; returns the unsubscribe function. */
  on(listener: (kind: ListKind) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(changed: Set<ListKind>): void {
    for (const kind of changed) for (const listener of this.listeners) listener(kind);
  }
}
