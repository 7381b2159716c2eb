import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../errors.js';
import type { DaemonProof, ShimAccess } from './daemon-proof.js';
import { fetchOrThrow, type Id, type Message, NotDelivered, readMessages } from './http-read.js';
import { changedLists, type ServedSurface } from './served-cache.js';

export interface SessionOptions {
  readonly url: string;
  /** How long a reconnect keeps trying before requests waiting for it fail. */
  readonly waitMs: number;
  readonly log: (line: string) => void;
  readonly startDaemon?: (() => Promise<void>) | undefined;
  readonly access?: ShimAccess | undefined;
}

/**
 * The shim's 2025 session with the daemon, kept alive across daemon restarts: the session headers,
 * a single-flight reconnect that replays the client's `initialize`, the standalone GET stream
 * (reopened with backoff), and a new proof of the listener whenever that stream ends.
 */
export class ShimSession {
  /** The daemon's `Mcp-Session-Id`, once an initialize succeeded. */
  id: string | undefined;
  /** The client's initialize parameters: every reconnect replays them. */
  initializeParams: Record<string, unknown> | undefined;
  /** The client sent notifications/initialized: a reconnect sends it too and reopens the GET stream. */
  initialized = false;
  /** Set while the client was answered from the served cache and no session exists yet. */
  offline: ServedSurface | undefined;
  private protocolVersion: string | undefined;
  /** The session credential this shim sends after initialize (never the token itself). */
  private bearer: string | undefined;
  private reconnecting: Promise<void> | undefined;
  private stream: AbortController | undefined;
  private closing = false;
  private reinitCount = 0;
  /** Set while the shim checks that the daemon is still the one it verified (requests wait). */
  private checking: Promise<boolean> | undefined;

  constructor(
    private readonly options: SessionOptions,
    private readonly proof: DaemonProof,
    private readonly write: (message: Message) => void,
  ) {}

  /** POSTs an initialize (the client's, or a replay of its parameters) and adopts the new session. */
  async initialize(message: Message): Promise<Message> {
    this.id = undefined;
    this.protocolVersion = undefined;
    this.bearer = undefined;
    const token = await this.proof.verify();
    // A daemon that accepts connections but never answers must not hold the client forever.
    const response = await fetchOrThrow(this.options.url, {
      method: 'POST',
      headers: { ...this.headers(), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(message),
      signal: AbortSignal.timeout(Math.max(this.options.waitMs, 10_000)),
    });
    const messages = await this.read(response, message.id);
    const reply = messages.find((m) => m.id === message.id && (m.result || m.error));
    if (!reply)
      throw new NotDelivered(`the daemon answered initialize with HTTP ${response.status} and no result`);
    if (reply.result) {
      this.id = response.headers.get('mcp-session-id') ?? undefined;
      const version = reply.result.protocolVersion;
      this.protocolVersion = typeof version === 'string' ? version : undefined;
      if (token && this.id) this.bearer = this.options.access?.sessionCredential(token, this.id);
    }
    return reply;
  }

  /** Resolves when a session is usable; waits (bounded) while the shim reconnects. */
  async ready(): Promise<void> {
    if (this.checking) await this.checking;
    if (this.reconnecting) await this.reconnecting;
  }

  /** Starts a new session once, for everyone who saw `failedSession` fail. */
  reconnect(failedSession: string | undefined): void {
    if (this.reconnecting || this.closing || this.id !== failedSession || !this.initializeParams) return;
    this.stream?.abort();
    this.stream = undefined;
    this.options.log(this.offline ? 'connecting to the daemon' : 'lost the daemon session; reconnecting');
    // A daemon that is still there (it only dropped a request) must not keep the old session.
    void this.end();
    const deadline = Date.now() + this.options.waitMs;
    this.reconnecting = (async () => {
      let started = false;
      for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
        try {
          const reply = await this.initialize({
            jsonrpc: '2.0',
            id: `mcp-bridge-shim-reinit-${++this.reinitCount}`,
            method: 'initialize',
            params: this.initializeParams,
          });
          if (reply.error) throw new Error(reply.error.message);
          if (this.initialized) {
            await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
            this.openStream();
          }
          this.options.log('reconnected to the daemon');
          const cache = this.offline;
          this.offline = undefined;
          // The daemon's tools may differ after its restart (or from what the cache showed).
          if (cache) {
            for (const kind of await changedLists(cache, (request) => this.ask(request)))
              this.write({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
          } else this.write({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
          return;
        } catch (error) {
          if (Date.now() > deadline) throw new Error(errorMessage(error));
          if (!started && this.options.startDaemon) {
            started = true;
            await this.options.startDaemon().catch(() => {});
          }
          await sleep(delay);
        }
      }
    })();
    const settle = () => {
      this.reconnecting = undefined;
    };
    this.reconnecting.then(settle, (error: unknown) => {
      settle();
      this.options.log(`the daemon stayed unreachable: ${String(error)}`);
    });
  }

  /** The standalone GET stream: notifications and requests the daemon sends outside any call. */
  openStream(): void {
    if (this.closing || !this.id) return;
    this.stream?.abort();
    const controller = new AbortController();
    this.stream = controller;
    const session = this.id;
    void (async () => {
      for (let delay = 250; !controller.signal.aborted; delay = Math.min(delay * 2, 5000)) {
        try {
          const response = await fetch(this.options.url, {
            method: 'GET',
            headers: { ...this.headers(), accept: 'text/event-stream' },
            signal: controller.signal,
          });
          if (response.status === 405) return;
          // 404: the daemon forgot the session; 401: the token was rotated (or this is not our
          // daemon). Either way a new, verified session, never the same request again.
          if (response.status === 404 || response.status === 401) {
            await response.body?.cancel().catch(() => {});
            this.reconnect(session);
            return;
          }
          if (response.ok) delay = 250;
          await this.read(response, undefined, (m) => this.write(m));
        } catch {
          if (controller.signal.aborted) return;
        }
        this.proof.connectionLost();
        if (this.id !== session || controller.signal.aborted) return;
        if (!(await this.recheck(session))) return;
        await sleep(delay).catch(() => {});
      }
    })();
  }

  /**
   * The event stream ended: the daemon may have stopped, and whatever answers on the port next
   * must prove itself before it gets another request. Requests wait for the check; if it fails,
   * a reconnect (which verifies again) takes over.
   */
  private recheck(session: string | undefined): Promise<boolean> {
    this.checking ??= this.proof
      .verify()
      .then(
        () => true,
        () => {
          this.reconnect(session);
          return false;
        },
      )
      .finally(() => {
        this.checking = undefined;
      });
    return this.checking;
  }

  /** POSTs a request in this session; the caller reads the answer. */
  send(message: Message): Promise<Response> {
    return fetchOrThrow(this.options.url, {
      method: 'POST',
      headers: this.headers(),
      body: JSON.stringify(message),
    });
  }

  /** POSTs a notification or a response (202 expected). */
  async post(message: Message): Promise<void> {
    const response = await this.send(message);
    await response.body?.cancel().catch(() => {});
    if (response.status === 404) {
      this.reconnect(this.id);
      throw new NotDelivered('session unknown to the daemon');
    }
  }

  /** Reads a JSON or SSE answer, handing each message to `onMessage` as it arrives. */
  read(
    response: Response,
    id: Id | undefined,
    onMessage: (message: Message) => void = () => {},
  ): Promise<Message[]> {
    return readMessages(response, id, onMessage, this.options.log);
  }

  /** stdin ended: no more reconnects, no GET stream, and the daemon may drop the session now. */
  async close(): Promise<void> {
    this.closing = true;
    this.stream?.abort();
    await this.end();
  }

  /** One request of the shim's own, answered by the daemon. */
  private async ask(request: Message): Promise<Message | undefined> {
    const response = await this.send(request);
    return (await this.read(response, request.id)).find((m) => m.id === request.id);
  }

  private headers(): Record<string, string> {
    return {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(this.id ? { 'mcp-session-id': this.id } : {}),
      ...(this.protocolVersion ? { 'mcp-protocol-version': this.protocolVersion } : {}),
      ...(this.bearer ? { authorization: `Bearer ${this.bearer}` } : {}),
    };
  }

  private async end(): Promise<void> {
    if (!this.id) return;
    try {
      await fetch(this.options.url, {
        method: 'DELETE',
        headers: this.headers(),
        signal: AbortSignal.timeout(2000),
      });
    } catch {
      // The daemon expires idle sessions on its own.
    }
  }
}
