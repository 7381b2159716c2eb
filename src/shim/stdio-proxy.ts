import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fetchOrThrow, type Id, type Message, NotDelivered, readMessages, wasRefused } from './http-read.js';
import { modernVersion } from './modern.js';
import { ModernForwarder } from './modern-forward.js';
import { cachedList, readServedCache, type ServedSurface } from './served-cache.js';

/**
 * The stdio shim: every JSON-RPC line from stdin goes to the daemon's Streamable HTTP endpoint, every
 * message from the daemon goes to stdout as one line. It hides daemon restarts: a lost session or a
 * refused connection leads to a new session with the client's own `initialize` parameters, requests
 * that are safe to repeat are repeated, and a call that may already have run gets an error instead.
 * Deliberately free of the SDK and the daemon's modules, so it starts fast and stays small.
 */

export interface ShimOptions {
  /** The daemon's MCP endpoint. */
  readonly url: string;
  /** How long a request waits for an unreachable daemon before it fails. */
  readonly waitMs: number;
  readonly input: Readable;
  readonly output: Writable;
  /** One line for the person reading Claude Desktop's MCP log (stderr). */
  readonly log: (line: string) => void;
  readonly version: string;
  /** Starts the daemon when nothing answers (with --start-daemon). */
  readonly startDaemon?: (() => Promise<void>) | undefined;
  /** The local access token (read from disk at every (re)connect: it may have been rotated). */
  readonly access?: ShimAccess | undefined;
  /** The daemon's `served-cache.json`: answers initialize and the lists while it is not up. */
  readonly servedCacheFile?: string | undefined;
}

export interface ShimAccess {
  /** The token file's current token, if there is one. */
  token(): string | undefined;
  /** Whether `proof` is the daemon's answer to `challenge` on `port` for `token` (see challengeProof). */
  proofMatches(token: string, port: number, challenge: string, proof: unknown): boolean;
  /** What the shim sends after initialize: good for that one session only (see sessionCredential). */
  sessionCredential(token: string, sessionId: string): string;
  /**
   * The local config does not say `"auth": "none"`: a daemon that claims to need no token while a
   * token file exists is not believed (it may be a program squatting on the port).
   */
  readonly required: boolean;
  /** Where the token lives, for error messages. */
  readonly file: string;
}

/** Methods that only read: repeating them after a restart changes nothing. */
const SAFE_TO_REPEAT =
  /^(ping|tools\/list|resources\/list|resources\/templates\/list|resources\/read|prompts\/list|prompts\/get|completion\/complete|logging\/setLevel)$/;
const RESTARTED = -32002;
/** How often one request is sent again after the daemon dropped it. */
const MAX_ATTEMPTS = 4;
/** How long answers to requests already sent are awaited after stdin ends. */
const DRAIN_MS = 10_000;
const UNREACHABLE = -32003;

/** How long a proof of the listener covers 2026-07-28 requests (while no connection failed). */
const PROOF_FRESH_MS = 1000;
const KNOWN_2025 = new Set(['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25']);

class Unreachable extends Error {}

export class StdioProxy {
  private sessionId: string | undefined;
  private protocolVersion: string | undefined;
  private initializeParams: Record<string, unknown> | undefined;
  private initialized = false;
  private reconnecting: Promise<void> | undefined;
  private stream: AbortController | undefined;
  private closing = false;
  private reinitCount = 0;
  /** The session credential this shim sends after initialize (never the token itself). */
  private bearer: string | undefined;
  /** Requests the client cancelled: their streams may end without an answer, by design. */
  private readonly cancelled = new Set<Id>();
  private versionChecked = false;
  /** Set while the shim checks that the daemon is still the one it verified (requests wait). */
  private checking: Promise<boolean> | undefined;
  /** The last proof for 2026-07-28 requests; `epoch` counts connections lost since. */
  private proof: { at: number; epoch: number; token: Promise<string | undefined> } | undefined;
  private epoch = 0;
  private waiting: Promise<void> | undefined;
  /** Set while the client was answered from the served cache and no session exists yet. */
  private offline: ServedSurface | undefined;
  private readonly modern: ModernForwarder;

  constructor(private readonly options: ShimOptions) {
    this.modern = new ModernForwarder({
      url: options.url,
      log: options.log,
      write: (m) => this.write(m),
      provenToken: () => this.provenToken(),
      connectionLost: () => {
        this.epoch++;
      },
      daemonUp: () => this.daemonUp(),
      unreachableError: (id, error) => this.unreachableError(id, error),
    });
  }

  /** Runs until stdin ends; resolves with the exit code. */
  async run(): Promise<number> {
    const lines = createInterface({ input: this.options.input, crlfDelay: Number.POSITIVE_INFINITY });
    const pending = new Set<Promise<void>>();
    for await (const line of lines) {
      if (!line.trim()) continue;
      let message: Message;
      try {
        message = JSON.parse(line) as Message;
      } catch {
        this.write({
          jsonrpc: '2.0',
          id: null as unknown as Id,
          error: { code: -32700, message: 'Parse error: the line is not JSON' },
        });
        continue;
      }
      const work = this.onClientMessage(message).catch((error: unknown) =>
        this.options.log(`unexpected error: ${String(error)}`),
      );
      pending.add(work);
      void work.finally(() => pending.delete(work));
    }
    // stdin ended (a pipe, or the client quit): let calls already sent finish, within reason.
    await Promise.race([Promise.allSettled(pending), sleep(DRAIN_MS, undefined, { ref: false })]);
    this.closing = true;
    this.stream?.abort();
    await this.endSession();
    return 0;
  }

  private write(message: Message): void {
    this.options.output.write(`${JSON.stringify(message)}\n`);
  }

  private async onClientMessage(message: Message): Promise<void> {
    const modern = modernVersion(message);
    if (modern !== undefined) {
      await this.modern.forward(message, modern);
      return;
    }
    if (message.method === 'initialize' && message.id !== undefined) {
      this.initializeParams = message.params ?? {};
      await this.forwardInitialize(message);
      return;
    }
    if (message.method === 'notifications/initialized') {
      this.initialized = true;
      await this.post(message).catch(() => {});
      this.openStream();
      return;
    }
    if (message.method !== undefined && message.id !== undefined) {
      await this.forwardRequest(message);
      return;
    }
    if (message.method === 'notifications/cancelled') {
      const id = message.params?.requestId;
      if (typeof id === 'string' || typeof id === 'number') this.cancelled.add(id);
    }
    // A notification, or the client's answer to a request of the daemon (elicitation, sampling…).
    try {
      await this.ready();
      await this.post(message);
    } catch (error) {
      this.options.log(`could not deliver ${message.method ?? 'a response'} to the daemon: ${String(error)}`);
    }
  }

  /** The client's initialize: one attempt window, then an error that says how to start the daemon. */
  private async forwardInitialize(message: Message): Promise<void> {
    const deadline = Date.now() + Math.min(this.options.waitMs, 10_000);
    let started = false;
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      try {
        const result = await this.initializeSession(message);
        this.write(result);
        return;
      } catch (error) {
        const cache = error instanceof NotDelivered ? this.servedCache() : undefined;
        if (cache) {
          this.answerOffline(message, cache);
          return;
        }
        if (!(error instanceof NotDelivered) || Date.now() > deadline) {
          this.write(this.unreachableError(message.id as Id, error));
          return;
        }
        if (!started && this.options.startDaemon) {
          started = true;
          await this.options
            .startDaemon()
            .catch((e: unknown) => this.options.log(`could not start the daemon: ${String(e)}`));
        }
        await sleep(delay);
      }
    }
  }

  /** POSTs an initialize (the client's, or a replay of its parameters) and adopts the new session. */
  private async initializeSession(message: Message): Promise<Message> {
    this.sessionId = undefined;
    this.protocolVersion = undefined;
    this.bearer = undefined;
    const token = await this.verifyDaemon();
    // A daemon that accepts connections but never answers must not hold the client forever.
    const response = await this.fetchOrThrow({
      method: 'POST',
      headers: { ...this.headers(), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(message),
      signal: AbortSignal.timeout(Math.max(this.options.waitMs, 10_000)),
    });
    const messages = await this.readMessages(response, message.id);
    const reply = messages.find((m) => m.id === message.id && (m.result || m.error));
    if (!reply)
      throw new NotDelivered(`the daemon answered initialize with HTTP ${response.status} and no result`);
    if (reply.result) {
      this.sessionId = response.headers.get('mcp-session-id') ?? undefined;
      const version = reply.result.protocolVersion;
      this.protocolVersion = typeof version === 'string' ? version : undefined;
      if (token && this.sessionId)
        this.bearer = this.options.access?.sessionCredential(token, this.sessionId);
    }
    return reply;
  }

  /** Nothing answers, but the daemon served this shim's users before: answer from what it served. */
  private answerOffline(message: Message, cache: ServedSurface): void {
    this.offline = cache;
    const requested = this.initializeParams?.protocolVersion;
    this.write({
      jsonrpc: '2.0',
      id: message.id as Id,
      result: {
        protocolVersion:
          typeof requested === 'string' && KNOWN_2025.has(requested) ? requested : '2025-11-25',
        capabilities: cache.capabilities,
        serverInfo: cache.serverInfo,
        ...(cache.instructions ? { instructions: cache.instructions } : {}),
      },
    });
    this.options.log(
      'the daemon is not up yet: answered from its served cache; connecting in the background',
    );
    this.reconnect(undefined);
  }

  private servedCache(): ServedSurface | undefined {
    return this.options.servedCacheFile ? readServedCache(this.options.servedCacheFile) : undefined;
  }

  /** Connected after answering from the cache: tells the client about every list that differs. */
  private async announceDifferences(cache: ServedSurface): Promise<void> {
    const lists = [
      ['tools/list', 'tools', cache.tools, 'tools'],
      ['prompts/list', 'prompts', cache.prompts, 'prompts'],
      ['resources/list', 'resources', cache.resources, 'resources'],
      ['resources/templates/list', 'resourceTemplates', cache.resourceTemplates, 'resources'],
    ] as const;
    const changed = new Set<string>();
    for (const [method, key, cached, kind] of lists) {
      const id = `mcp-bridge-shim-compare-${key}`;
      try {
        const response = await this.fetchOrThrow({
          method: 'POST',
          headers: this.headers(),
          body: JSON.stringify({ jsonrpc: '2.0', id, method }),
        });
        const reply = (await this.readMessages(response, id)).find((m) => m.id === id);
        const now = reply?.result?.[key];
        if (JSON.stringify(now ?? []) !== JSON.stringify(cached) || reply?.result?.nextCursor)
          changed.add(kind);
      } catch {
        changed.add(kind);
      }
    }
    for (const kind of changed) this.write({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
  }

  /**
   * The raw token for a 2026-07-28 request (no session credential exists there): proved again
   * unless a proof began within the last second and no connection failed or stream ended since.
   */
  private provenToken(force = false): Promise<string | undefined> {
    const now = Date.now();
    const last = this.proof;
    if (!force && last && now - last.at < PROOF_FRESH_MS && last.epoch === this.epoch) return last.token;
    const token = this.verifyDaemon();
    const proof = { at: now, epoch: this.epoch, token };
    this.proof = proof;
    token.catch(() => {
      if (this.proof === proof) this.proof = undefined;
    });
    return token;
  }

  /** Resolves once the daemon proves itself (starting it, with --start-daemon); single-flight. */
  private daemonUp(): Promise<void> {
    this.waiting ??= (async () => {
      const deadline = Date.now() + this.options.waitMs;
      let started = false;
      for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
        try {
          await this.provenToken(true);
          return;
        } catch (error) {
          if (!(error instanceof NotDelivered) || Date.now() > deadline)
            throw error instanceof NotDelivered ? new Unreachable(error.message) : error;
          if (!started && this.options.startDaemon) {
            started = true;
            await this.options.startDaemon().catch(() => {});
          }
          await sleep(delay);
        }
      }
    })().finally(() => {
      this.waiting = undefined;
    });
    return this.waiting;
  }

  private async forwardRequest(message: Message): Promise<void> {
    if (this.offline && !this.sessionId) {
      const list = cachedList(this.offline, message.method ?? '');
      if (list && message.params?.cursor === undefined) {
        this.write({ jsonrpc: '2.0', id: message.id as Id, result: list });
        return;
      }
      // An earlier attempt ran out of --wait: this request waits for a new one.
      this.reconnect(undefined);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await this.ready();
      } catch (error) {
        this.write(this.unreachableError(message.id as Id, error));
        return;
      }
      const session = this.sessionId;
      try {
        const response = await this.fetchOrThrow({
          method: 'POST',
          headers: this.headers(),
          body: JSON.stringify(message),
        });
        if (response.status === 404 && session !== undefined) {
          await response.body?.cancel().catch(() => {});
          throw new NotDelivered('the daemon does not know this session (it restarted)');
        }
        // Refused before it ran (the token was rotated): reconnecting reads the new one.
        if (response.status === 401) {
          await response.body?.cancel().catch(() => {});
          throw new NotDelivered('the daemon refused the access token');
        }
        const messages = await this.readMessages(response, message.id, (m) => this.write(m));
        if (messages.some((m) => m.id === message.id && (m.result || m.error))) return;
        // The client cancelled it: the daemon ends the stream without an answer, as it should.
        if (this.cancelled.delete(message.id as Id)) return;
        throw new Error('the response stream ended before the answer');
      } catch (error) {
        if (this.cancelled.delete(message.id as Id)) return;
        // A request the daemon keeps dropping (not a restart: something about the request itself)
        // must not send the shim round a reconnect loop that fills the daemon's sessions.
        if (attempt >= MAX_ATTEMPTS) {
          this.write({
            jsonrpc: '2.0',
            id: message.id as Id,
            error: {
              code: RESTARTED,
              message: `mcp-bridge dropped ${message.method} ${attempt} times in a row (${error instanceof Error ? error.message : String(error)}); see the daemon's log`,
            },
          });
          return;
        }
        if (error instanceof NotDelivered || SAFE_TO_REPEAT.test(message.method ?? '')) {
          this.reconnect(session);
          continue;
        }
        // It may have run: never repeat it silently.
        this.reconnect(session);
        this.write({
          jsonrpc: '2.0',
          id: message.id as Id,
          error: {
            code: RESTARTED,
            message: `mcp-bridge restarted during ${message.method}; it may or may not have run. Call it again if that is safe.`,
          },
        });
        return;
      }
    }
  }

  /** Resolves when a session is usable; waits (bounded) while the shim reconnects. */
  private async ready(): Promise<void> {
    if (this.checking) await this.checking;
    if (this.reconnecting) await this.reconnecting;
  }

  /**
   * The event stream ended: the daemon may have stopped, and whatever answers on the port next
   * must prove itself before it gets another request. Requests wait for the check; if it fails,
   * a reconnect (which verifies again) takes over.
   */
  private recheck(session: string | undefined): Promise<boolean> {
    this.checking ??= this.verifyDaemon()
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

  /** Starts a new session once, for everyone who saw `failedSession` fail. */
  private reconnect(failedSession: string | undefined): void {
    if (this.reconnecting || this.closing || this.sessionId !== failedSession || !this.initializeParams)
      return;
    this.stream?.abort();
    this.stream = undefined;
    this.options.log(this.offline ? 'connecting to the daemon' : 'lost the daemon session; reconnecting');
    // A daemon that is still there (it only dropped a request) must not keep the old session.
    void this.endSession();
    const deadline = Date.now() + this.options.waitMs;
    this.reconnecting = (async () => {
      let started = false;
      for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
        try {
          const reply = await this.initializeSession({
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
          if (cache) await this.announceDifferences(cache);
          else this.write({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
          return;
        } catch (error) {
          if (Date.now() > deadline) {
            throw new Unreachable(`${String(error instanceof Error ? error.message : error)}`);
          }
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
  private openStream(): void {
    if (this.closing || !this.sessionId) return;
    this.stream?.abort();
    const controller = new AbortController();
    this.stream = controller;
    const session = this.sessionId;
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
          await this.readMessages(response, undefined, (m) => this.write(m));
        } catch {
          if (controller.signal.aborted) return;
        }
        this.epoch++;
        if (this.sessionId !== session || controller.signal.aborted) return;
        if (!(await this.recheck(session))) return;
        await sleep(delay).catch(() => {});
      }
    })();
  }

  /** POSTs a notification or a response (202 expected). */
  private async post(message: Message): Promise<void> {
    const response = await this.fetchOrThrow({
      method: 'POST',
      headers: this.headers(),
      body: JSON.stringify(message),
    });
    await response.body?.cancel().catch(() => {});
    if (response.status === 404) {
      this.reconnect(this.sessionId);
      throw new NotDelivered('session unknown to the daemon');
    }
  }

  private headers(): Record<string, string> {
    return {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(this.sessionId ? { 'mcp-session-id': this.sessionId } : {}),
      ...(this.protocolVersion ? { 'mcp-protocol-version': this.protocolVersion } : {}),
      ...(this.bearer ? { authorization: `Bearer ${this.bearer}` } : {}),
    };
  }

  private fetchOrThrow(init: RequestInit): Promise<Response> {
    return fetchOrThrow(this.options.url, init);
  }

  private readMessages(
    response: Response,
    id: Id | undefined,
    onMessage: (message: Message) => void = () => {},
  ): Promise<Message[]> {
    return readMessages(response, id, onMessage, this.options.log);
  }

  private unreachableError(id: Id, error: unknown): Message {
    const why = error instanceof Error ? error.message : String(error);
    const start = this.options.startDaemon
      ? 'the shim tried to start it'
      : 'start it with `npm start` in the mcp-bridge folder (or run the shim with --start-daemon)';
    return {
      jsonrpc: '2.0',
      id,
      error: {
        code: UNREACHABLE,
        message: `the mcp-bridge daemon is not reachable at ${this.options.url} (${why}); ${start}. Run \`mcp-bridge doctor\` to see what stops it`,
      },
    };
  }

  /**
   * Asks /healthz to prove it knows the local access token before the token is sent anywhere: a
   * program squatting on the daemon's port must never receive it. Also checks the daemon's version.
   */
  private async verifyDaemon(): Promise<string | undefined> {
    const challenge = randomBytes(16).toString('base64url');
    const health = new URL(`/healthz?challenge=${challenge}`, this.options.url);
    let body: { version?: string; auth?: string; proof?: unknown };
    try {
      body = (await (await fetch(health, { signal: AbortSignal.timeout(5000) })).json()) as typeof body;
    } catch (error) {
      const code = wasRefused(error);
      if (code) throw new NotDelivered(`nothing answers at ${this.options.url} (${code})`);
      throw new Error(`what answers at ${health.origin} is not an mcp-bridge daemon (${String(error)})`);
    }
    if (!this.versionChecked && body.version) {
      this.versionChecked = true;
      if (body.version !== this.options.version) {
        this.options.log(
          `version mismatch: this shim is mcp-bridge ${this.options.version}, the daemon is ${body.version}; restart the daemon (or point Claude Desktop at the same installation) so both match`,
        );
      }
    }
    const access = this.options.access;
    if (!access) return undefined;
    const token = access.token();
    if (body.auth !== 'token') {
      // A daemon that asks for no token is sent none; but with a token file and a config that wants
      // one, it is more likely a program squatting on the port than our daemon.
      if (!token || !access.required) return undefined;
      throw new Error(
        `what answers at ${health.origin} does not ask for the access token in ${access.file}, although the config does (DAEMON_NOT_VERIFIED); if it is an older mcp-bridge, restart it; if "auth" should be "none", set it in the config`,
      );
    }
    if (!token) {
      throw new Error(
        `the daemon needs the local access token, and ${access.file} is missing or unreadable; start the daemon once as this user to create it`,
      );
    }
    const port = Number(health.port || (health.protocol === 'https:' ? 443 : 80));
    if (!access.proofMatches(token, port, challenge, body.proof)) {
      throw new Error(
        `what answers at ${health.origin} could not prove it knows the access token in ${access.file}, so the shim did not send it (DAEMON_NOT_VERIFIED); is another program using the port?`,
      );
    }
    return token;
  }

  private async endSession(): Promise<void> {
    if (!this.sessionId) return;
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
