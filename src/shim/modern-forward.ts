import { ERROR_CODES, errorMessage } from '../errors.js';
import { fetchOrThrow, type Id, type Message, NotDelivered, readMessages } from './http-read.js';
import { modernHeaders, ParamHeaders } from './modern.js';
import { cachedDiscoverResult, type ServedSurface } from './served-cache.js';
import { droppedRepeatedly, restartedDuring } from './wire-errors.js';

/** What a 2026-07-28 message needs of the shim around it. */
export interface ModernDeps {
  readonly url: string;
  readonly log: (line: string) => void;
  readonly write: (message: Message) => void;
  /** The raw token after a fresh enough proof of the listener (see DaemonProof.provenToken). */
  provenToken(): Promise<string | undefined>;
  /** A connection failed or a stream ended: the next request must prove the listener again. */
  connectionLost(): void;
  /** Resolves once the daemon answers (starting it if the shim may), rejects after --wait. */
  daemonUp(): Promise<void>;
  unreachableError(id: Id, error: unknown): Message;
  /** The daemon's served cache, if it has one: answers server/discover while it is not up. */
  servedCache?(): ServedSurface | undefined;
}

/** Read-only, or (subscriptions/listen) only a subscription: sending them again changes nothing. */
const SAFE_TO_REPEAT =
  /^(server\/discover|tools\/list|resources\/list|resources\/templates\/list|resources\/read|prompts\/list|prompts\/get|completion\/complete|subscriptions\/listen)$/;
const MAX_ATTEMPTS = 4;
const HEADER_MISMATCH = ERROR_CODES.HEADER_MISMATCH.jsonRpc;

/**
 * 2026-07-28 messages: each one its own POST, no session, the raw token after a proof, and the
 * SEP-2243 headers. An input-required round is a plain result, so it passes through like any other;
 * a subscriptions/listen is a POST whose SSE stream stays open, carrying notifications, until the
 * client cancels it (which closes the stream, the revision's way of cancelling).
 */
export class ModernForwarder {
  readonly params = new ParamHeaders();
  private readonly inFlight = new Map<Id, AbortController>();

  constructor(private readonly deps: ModernDeps) {}

  async forward(message: Message, version: string): Promise<void> {
    if (message.id === undefined) return this.notify(message, version);
    if (message.method === undefined) return;
    const id = message.id;
    const controller = new AbortController();
    this.inFlight.set(id, controller);
    let relearned = false;
    try {
      for (let attempt = 1; ; attempt++) {
        let held: Message | undefined;
        try {
          const response = await this.post(message, version, controller.signal);
          if (response.status === 401) {
            await response.body?.cancel().catch(() => {});
            throw new NotDelivered('the daemon refused the access token');
          }
          const messages = await readMessages(
            response,
            id,
            (m) => {
              if (
                m.id === id &&
                m.error?.code === HEADER_MISMATCH &&
                message.method === 'tools/call' &&
                !relearned
              ) {
                held = m;
                return;
              }
              if (m.id === id && m.result && message.method === 'tools/list') this.params.learn(m.result);
              this.deps.write(m);
            },
            this.deps.log,
          );
          if (held) {
            // The tool's x-mcp-header arguments were not known (the client never listed through
            // this shim): refused before it ran, so learn them and send it once more.
            relearned = true;
            await this.learnTools(message, version);
            continue;
          }
          if (messages.some((m) => m.id === id && (m.result || m.error))) return;
          if (controller.signal.aborted) return;
          throw new Error('the response stream ended before the answer');
        } catch (error) {
          if (controller.signal.aborted) return;
          this.deps.connectionLost();
          if (error instanceof NotDelivered && this.answerOffline(message, version)) return;
          if (attempt >= MAX_ATTEMPTS) {
            this.deps.write(droppedRepeatedly(id, message.method, attempt, error));
            return;
          }
          if (error instanceof NotDelivered || SAFE_TO_REPEAT.test(message.method)) {
            try {
              await this.deps.daemonUp();
            } catch (down) {
              this.deps.write(this.deps.unreachableError(id, down));
              return;
            }
            continue;
          }
          this.deps.write(restartedDuring(id, message.method));
          return;
        }
      }
    } finally {
      this.inFlight.delete(id);
    }
  }

  /**
   * Nothing answers, but the daemon served this shim's users before: a server/discover (what a
   * 2026-07-28 client connects with, like initialize in 2025) is answered from what it served, and
   * the daemon is waited for (started, with --start-daemon) in the background.
   */
  private answerOffline(message: Message, version: string): boolean {
    if (message.method !== 'server/discover') return false;
    const cache = this.deps.servedCache?.();
    const result = cache && cachedDiscoverResult(cache, version);
    if (!result) return false;
    this.deps.write({ jsonrpc: '2.0', id: message.id as Id, result });
    this.deps.log(
      'the daemon is not up yet: answered server/discover from its served cache; connecting in the background',
    );
    this.deps
      .daemonUp()
      .catch((error: unknown) => this.deps.log(`the daemon stayed unreachable: ${errorMessage(error)}`));
    return true;
  }

  /** One stateless POST, with the headers of its era and the token after a fresh proof. */
  private async post(message: Message, version: string, signal?: AbortSignal): Promise<Response> {
    const token = await this.deps.provenToken();
    return fetchOrThrow(this.deps.url, {
      method: 'POST',
      headers: {
        ...modernHeaders(message, version, this.params),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(message),
      ...(signal ? { signal } : {}),
    });
  }

  /** A 2026-07-28 notification: cancelling closes the request's stream; others are POSTed. */
  private async notify(message: Message, version: string): Promise<void> {
    if (message.method === 'notifications/cancelled') {
      const id = message.params?.requestId;
      if (typeof id === 'string' || typeof id === 'number') this.inFlight.get(id)?.abort();
      return;
    }
    try {
      const response = await this.post(message, version);
      await response.body?.cancel().catch(() => {});
    } catch (error) {
      this.deps.connectionLost();
      this.deps.log(`could not deliver ${message.method} to the daemon: ${errorMessage(error)}`);
    }
  }

  /** Walks tools/list (the client's own envelope) to learn every tool's x-mcp-header arguments. */
  private async learnTools(call: Message, version: string): Promise<void> {
    const meta = call.params?._meta;
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const request: Message = {
        jsonrpc: '2.0',
        id: `mcp-bridge-shim-tools-${page}`,
        method: 'tools/list',
        params: { ...(cursor ? { cursor } : {}), _meta: meta },
      };
      const token = await this.deps.provenToken();
      const response = await fetchOrThrow(this.deps.url, {
        method: 'POST',
        headers: {
          ...modernHeaders(request, version, this.params),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(request),
      });
      const answer = (await readMessages(response, request.id, () => {}, this.deps.log)).find(
        (m) => m.id === request.id,
      );
      if (!answer?.result) return;
      this.params.learn(answer.result);
      const next = answer.result.nextCursor;
      if (typeof next !== 'string') return;
      cursor = next;
    }
  }
}
