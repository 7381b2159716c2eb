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
    private readonly maxEvents = 200,
    private readonly maxAgeMs = 120_000,
  ) {}

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${++this.next}.${streamId}`;
    const now = Date.now();
    this.events.set(id, { streamId, message, at: now });
    for (const [key, event] of this.events) {
      if (this.events.size <= this.maxEvents && now - event.at <= this.maxAgeMs) break;
      this.events.delete(key);
    }
    return id;
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return this.events.get(eventId)?.streamId;
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const last = this.events.get(lastEventId);
    if (!last) throw new Error(`event ${lastEventId} is unknown or too old to replay`);
    let after = false;
    for (const [id, event] of this.events) {
      if (id === lastEventId) after = true;
      else if (after && event.streamId === last.streamId) await send(id, event.message);
    }
    return last.streamId;
  }
}
