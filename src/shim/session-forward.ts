import { type Id, type Message, NotDelivered } from './http-read.js';
import type { ShimSession } from './session.js';
import { droppedRepeatedly, restartedDuring } from './wire-errors.js';

/** Methods that only read: repeating them after a restart changes nothing. */
const SAFE_TO_REPEAT =
  /^(ping|tools\/list|resources\/list|resources\/templates\/list|resources\/read|prompts\/list|prompts\/get|completion\/complete|logging\/setLevel)$/;
/** How often one request is sent again after the daemon dropped it. */
const MAX_ATTEMPTS = 4;

/**
 * A 2025 client request, sent in the session and answered line by line as the answer streams in.
 * One that never reached the daemon (refused, unknown session, token rotated) is sent again after a
 * reconnect; one whose answer stream broke may have run, so only read-only methods are repeated and
 * anything else gets DAEMON_RESTARTED.
 */
export class SessionForwarder {
  /** Requests the client cancelled: their streams may end without an answer, by design. */
  private readonly cancelled = new Set<Id>();

  constructor(
    private readonly session: ShimSession,
    private readonly write: (message: Message) => void,
    private readonly unreachableError: (id: Id, error: unknown) => Message,
  ) {}

  /** The client cancelled `id`: its stream ending without an answer is no failure. */
  cancel(id: Id): void {
    this.cancelled.add(id);
  }

  async forward(message: Message): Promise<void> {
    const id = message.id as Id;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.session.ready();
      } catch (error) {
        this.write(this.unreachableError(id, error));
        return;
      }
      const session = this.session.id;
      try {
        const response = await this.session.send(message);
        if (response.status === 404 && session !== undefined) {
          await response.body?.cancel().catch(() => {});
          throw new NotDelivered('the daemon does not know this session (it restarted)');
        }
        // Refused before it ran (the token was rotated): reconnecting reads the new one.
        if (response.status === 401) {
          await response.body?.cancel().catch(() => {});
          throw new NotDelivered('the daemon refused the access token');
        }
        const messages = await this.session.read(response, id, (m) => this.write(m));
        if (messages.some((m) => m.id === id && (m.result || m.error))) return;
        // The client cancelled it: the daemon ends the stream without an answer, as it should.
        if (this.cancelled.delete(id)) return;
        throw new Error('the response stream ended before the answer');
      } catch (error) {
        if (this.cancelled.delete(id)) return;
        // A request the daemon keeps dropping (not a restart: something about the request itself)
        // must not send the shim round a reconnect loop that fills the daemon's sessions.
        if (attempt >= MAX_ATTEMPTS) {
          this.write(droppedRepeatedly(id, message.method, attempt, error));
          return;
        }
        this.session.reconnect(session);
        if (error instanceof NotDelivered || SAFE_TO_REPEAT.test(message.method ?? '')) continue;
        // It may have run: never repeat it silently.
        this.write(restartedDuring(id, message.method));
        return;
      }
    }
  }
}
