import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { DaemonProof, type ShimAccess } from './daemon-proof.js';
import { type Id, type Message, NotDelivered } from './http-read.js';
import { modernVersion } from './modern.js';
import { ModernForwarder } from './modern-forward.js';
import { cachedInitializeResult, cachedList, readServedCache, type ServedSurface } from './served-cache.js';
import { ShimSession } from './session.js';
import { SessionForwarder } from './session-forward.js';
import { lineNotJson, unreachable } from './wire-errors.js';

/**
 * The stdio shim: every JSON-RPC line from stdin goes to the daemon's Streamable HTTP endpoint, every
 * message from the daemon goes to stdout as one line. It hides daemon restarts: a lost session or a
 * refused connection leads to a new session with the client's own `initialize` parameters, requests
 * that are safe to repeat are repeated, and a call that may already have run gets an error instead.
 * Deliberately free of the SDK and the daemon's modules, so it starts fast and stays small. This file
 * sorts the client's messages; session.ts keeps the 2025 session, session-forward.ts sends its
 * requests, modern-forward.ts the stateless 2026 ones, daemon-proof.ts vets the listener.
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
  /** The daemon's `served-cache.json`: answers initialize, server/discover and the lists while it is not up. */
  readonly servedCacheFile?: string | undefined;
}

/** How long answers to requests already sent are awaited after stdin ends. */
const DRAIN_MS = 10_000;

export class StdioProxy {
  private readonly proof: DaemonProof;
  private readonly session: ShimSession;
  private readonly requests: SessionForwarder;
  private readonly modern: ModernForwarder;
  private readonly unreachableError: (id: Id, error: unknown) => Message;

  constructor(private readonly options: ShimOptions) {
    const write = (message: Message) => this.write(message);
    const unreachableError = (id: Id, error: unknown) =>
      unreachable(id, options.url, options.startDaemon !== undefined, error);
    this.unreachableError = unreachableError;
    this.proof = new DaemonProof(options);
    this.session = new ShimSession(options, this.proof, write);
    this.requests = new SessionForwarder(this.session, write, unreachableError);
    this.modern = new ModernForwarder({
      url: options.url,
      log: options.log,
      write,
      provenToken: () => this.proof.provenToken(),
      connectionLost: () => this.proof.connectionLost(),
      daemonUp: () => this.proof.daemonUp(),
      unreachableError,
      servedCache: () => this.servedCache(),
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
        this.write(lineNotJson());
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
    await this.session.close();
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
      this.session.initializeParams = message.params ?? {};
      await this.forwardInitialize(message);
      return;
    }
    if (message.method === 'notifications/initialized') {
      this.session.initialized = true;
      await this.session.post(message).catch(() => {});
      this.session.openStream();
      return;
    }
    if (message.method !== undefined && message.id !== undefined) {
      if (!this.answerFromCache(message)) await this.requests.forward(message);
      return;
    }
    if (message.method === 'notifications/cancelled') {
      const id = message.params?.requestId;
      if (typeof id === 'string' || typeof id === 'number') this.requests.cancel(id);
    }
    // A notification, or the client's answer to a request of the daemon (elicitation, sampling…).
    try {
      await this.session.ready();
      await this.session.post(message);
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
        this.write(await this.session.initialize(message));
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

  /** Nothing answers, but the daemon served this shim's users before: answer from what it served. */
  private answerOffline(message: Message, cache: ServedSurface): void {
    this.session.offline = cache;
    const requested = this.session.initializeParams?.protocolVersion;
    this.write({ jsonrpc: '2.0', id: message.id as Id, result: cachedInitializeResult(cache, requested) });
    this.options.log(
      'the daemon is not up yet: answered from its served cache; connecting in the background',
    );
    this.session.reconnect(undefined);
  }

  /** While answered from the cache and not yet connected, the lists come from the cache (whole). */
  private answerFromCache(message: Message): boolean {
    const cache = this.session.offline;
    if (!cache || this.session.id) return false;
    const list = cachedList(cache, message.method ?? '');
    if (list && message.params?.cursor === undefined) {
      this.write({ jsonrpc: '2.0', id: message.id as Id, result: list });
      return true;
    }
    // An earlier attempt ran out of --wait: this request waits for a new one.
    this.session.reconnect(undefined);
    return false;
  }

  private servedCache(): ServedSurface | undefined {
    return this.options.servedCacheFile ? readServedCache(this.options.servedCacheFile) : undefined;
  }
}
