import type { EventStore, JSONRPCMessage } from '@modelcontextprotocol/server';

/**
 * The last messages a session sent on its SSE streams, so a client whose stream broke can
 * reconnect with `Last-Event-ID` and get what it missed. Bounded in count and age (a client
 * reconnects within seconds): the oldest events go first.
 */
export class SessionEventStore implements EventStore {
  private readonly events = new Map<string, { streamId: string; message: JSONRPCMessage; at: number }>();
  private next = 0;

  constructor(
    private readonly maxEvents = 100,
    private readonly maxAgeMs = 60_000,
  ) {}

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    return this.put(streamId, message);
  }

  /** storeEvent without the promise: the hot path (answer-stream.ts) writes the id right away. */
  put(streamId: string, message: JSONRPCMessage | Record<string, never>): string {
    const id = `${++this.next}.${streamId}`;
    this.events.set(id, { streamId, message: message as JSONRPCMessage, at: Date.now() });
    this.prune();
    return id;
  }

  /** The stream of event `eventId` and the events after it on that stream; undefined if unknown. */
  after(eventId: string): { streamId: string; events: [string, JSONRPCMessage][] } | undefined {
    this.prune();
    const last = this.events.get(eventId);
    if (!last) return undefined;
    const events: [string, JSONRPCMessage][] = [];
    let seen = false;
    for (const [id, event] of this.events) {
      if (id === eventId) seen = true;
      else if (seen && event.streamId === last.streamId) events.push([id, event.message]);
    }
    return { streamId: last.streamId, events };
  }

  /** Drops events beyond the count or older than the age limit (oldest first). */
  prune(now = Date.now()): void {
    for (const [key, event] of this.events) {
      if (this.events.size <= this.maxEvents && now - event.at <= this.maxAgeMs) break;
      this.events.delete(key);
    }
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return this.events.get(eventId)?.streamId;
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const found = this.after(lastEventId);
    if (!found) throw new Error(`event ${lastEventId} is unknown or too old to replay`);
    for (const [id, message] of found.events) await send(id, message);
    return found.streamId;
  }
}
