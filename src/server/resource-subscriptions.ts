import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

/** How the refcount reaches the upstream that owns a URI (the catalog routes it). */
export type ResourceRequest = (
  method: 'resources/subscribe' | 'resources/unsubscribe',
  params: { uri: string },
) => Promise<unknown>;

interface Interest {
  /** Subscribers of the URI, those still waiting for the upstream subscribe included. */
  count: number;
  /** The upstream subscribe in flight: every subscriber that arrives meanwhile waits for this one. */
  pending: Promise<void> | undefined;
}

/**
 * Subscribers per exposed URI (2025 sessions and 2026-07-28 listen streams alike): the upstream is
 * subscribed once, while anyone is. The count changes synchronously, so two first subscribers that
 * arrive together share one upstream subscribe, and an unsubscribe that comes while it is in flight
 * takes effect (upstream too) once it settles. If that subscribe fails, everyone who waited for it
 * gets the error and nobody stays counted: the next subscriber tries again.
 */
export class ResourceSubscriptions {
  private readonly interests = new Map<string, Interest>();
  /** Upstream unsubscribes in flight, so that a new subscribe for the URI is sent after them. */
  private readonly dropping = new Map<string, Promise<void>>();

  constructor(
    private readonly request: ResourceRequest,
    private readonly logger: Logger,
  ) {}

  /** Subscribers of `uri` (0 once the last has left). */
  count(uri: string): number {
    return this.interests.get(uri)?.count ?? 0;
  }

  /** One more subscriber of `uri`; settles when the upstream is subscribed (at once if it already is). */
  async subscribe(uri: string): Promise<void> {
    let interest = this.interests.get(uri);
    if (!interest) {
      const fresh: Interest = { count: 0, pending: undefined };
      const after = this.dropping.get(uri) ?? Promise.resolve();
      fresh.pending = after
        .then(() => this.request('resources/subscribe', { uri }))
        .then(
          () => {
            fresh.pending = undefined;
            if (fresh.count === 0) this.drop(uri, fresh);
          },
          (error: unknown) => {
            if (this.interests.get(uri) === fresh) this.interests.delete(uri);
            throw error;
          },
        );
      // Every waiter sees the failure; this only keeps it from counting as unhandled.
      fresh.pending.catch(() => {});
      this.interests.set(uri, fresh);
      interest = fresh;
    }
    interest.count++;
    await interest.pending;
  }

  /**
   * Drops one subscriber's interest in `uri`; the upstream is unsubscribed when nobody is left (after
   * a subscribe still in flight succeeds). Settles when that upstream unsubscribe has.
   */
  async unsubscribe(uri: string): Promise<void> {
    const interest = this.interests.get(uri);
    if (!interest || interest.count === 0) return;
    interest.count--;
    if (interest.count === 0 && !interest.pending) await this.drop(uri, interest);
  }

  private drop(uri: string, interest: Interest): Promise<void> {
    if (this.interests.get(uri) === interest) this.interests.delete(uri);
    const done = this.request('resources/unsubscribe', { uri }).then(
      () => {},
      (error: unknown) => {
        this.logger.debug({ uri, err: errorMessage(error) }, 'could not unsubscribe upstream');
      },
    );
    const dropped = done.finally(() => {
      if (this.dropping.get(uri) === dropped) this.dropping.delete(uri);
    });
    this.dropping.set(uri, dropped);
    return done;
  }
}
