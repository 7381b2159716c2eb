import {
  type Client,
  type McpSubscription,
  ProtocolError,
  ProtocolErrorCode,
} from '@modelcontextprotocol/client';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { LiveConnection } from './connection.js';
import { type PassthroughResult, PassthroughResultSchema } from './upstream-types.js';

export interface SubscriptionsHost {
  readonly name: string;
  readonly log: Logger;
  /** A subscriptions/listen stream is back: the lists are read again (changes may have been missed). */
  readonly onReopened: (live: LiveConnection) => void;
}

const RELISTEN_MIN_MS = 1000;
const RELISTEN_MAX_MS = 30_000;

/**
 * The resource URIs the bridge subscribed to on one upstream, kept across its connections. A
 * 2025-era upstream gets resources/subscribe (again after each restart). On a 2026-07-28 upstream,
 * change notifications arrive only on a subscriptions/listen stream: one is kept open for the lists
 * the server announces and the subscribed URIs. Opens run one at a time (the last one sees the
 * latest URIs); a new stream replaces the old once it is up. A stream the server drops, or one
 * that could not be opened, is retried with backoff.
 */
export class Subscriptions {
  /** URIs the bridge subscribed to (on a 2026-07-28 upstream they ride on subscriptions/listen). */
  private readonly uris = new Set<string>();
  /** The open subscriptions/listen stream of a 2026-07-28 upstream. */
  private stream: McpSubscription | undefined;
  /** The (re)open of that stream in progress: opens run one after another. */
  private listening: Promise<boolean> = Promise.resolve(true);
  private relistenTimer: NodeJS.Timeout | undefined;
  private relistenDelayMs = 0;

  constructor(private readonly host: SubscriptionsHost) {}

  /** A connection became ready: open the stream, or subscribe a restarted 2025-era server again. */
  connected(live: LiveConnection): void {
    if (live.client.getProtocolEra() === 'modern') void this.listen(live);
    else if (this.uris.size > 0) void this.resubscribe(live.client);
  }

  /**
   * resources/subscribe or resources/unsubscribe of `uri`: `send` forwards it to a 2025-era
   * upstream; a 2026-07-28 one has no such method, the URI goes in the stream's filter instead.
   */
  async change(
    subscribe: boolean,
    uri: string,
    live: LiveConnection,
    send: () => Promise<PassthroughResult>,
  ): Promise<PassthroughResult> {
    if (live.client.getProtocolEra() !== 'modern') {
      const result = await send();
      if (subscribe) this.uris.add(uri);
      else this.uris.delete(uri);
      return result;
    }
    if (subscribe) this.uris.add(uri);
    else this.uris.delete(uri);
    if (!(await this.listen(live)) && subscribe) {
      this.uris.delete(uri);
      throw new ProtocolError(
        ProtocolErrorCode.InternalError,
        `upstream "${this.host.name}" did not open a subscriptions/listen stream for ${uri}; try again`,
      );
    }
    return {};
  }

  private listen(live: LiveConnection): Promise<boolean> {
    const opened = this.listening.then(() => this.openListen(live));
    this.listening = opened.catch(() => false);
    return opened;
  }

  private async openListen(live: LiveConnection): Promise<boolean> {
    const { client, generation } = live;
    if (!generation.live) return false;
    const caps = (client.getServerCapabilities() ?? {}) as Record<
      string,
      { listChanged?: boolean; subscribe?: boolean } | undefined
    >;
    const filter = {
      ...(caps.tools?.listChanged ? { toolsListChanged: true } : {}),
      ...(caps.prompts?.listChanged ? { promptsListChanged: true } : {}),
      ...(caps.resources?.listChanged ? { resourcesListChanged: true } : {}),
      ...(caps.resources?.subscribe && this.uris.size > 0 ? { resourceSubscriptions: [...this.uris] } : {}),
    };
    if (Object.keys(filter).length === 0) {
      void this.stream?.close();
      this.stream = undefined;
      return true;
    }
    let stream: McpSubscription;
    try {
      stream = await client.listen(filter);
    } catch (error) {
      this.host.log.warn({ err: errorMessage(error) }, 'could not open subscriptions/listen; retrying');
      this.relistenLater(live);
      return false;
    }
    if (!generation.live) {
      void stream.close();
      return false;
    }
    const previous = this.stream;
    this.stream = stream;
    void previous?.close();
    void stream.closed.then((how) => {
      if (how !== 'remote' || this.stream !== stream || !generation.live) return;
      this.host.log.info('the upstream ended its subscriptions/listen stream; opening it again');
      this.relistenLater(live);
    });
    return true;
  }

  private relistenLater(live: LiveConnection): void {
    if (this.relistenTimer) return;
    this.relistenDelayMs = Math.min(RELISTEN_MAX_MS, this.relistenDelayMs * 2 || RELISTEN_MIN_MS);
    const timer = setTimeout(async () => {
      forget();
      this.relistenTimer = undefined;
      if (!live.generation.live) return;
      if (!(await this.listen(live))) return;
      this.relistenDelayMs = 0;
      this.host.onReopened(live);
    }, this.relistenDelayMs);
    timer.unref();
    this.relistenTimer = timer;
    // A retry of an ended connection goes with it (the next connection opens its own stream).
    const forget = live.generation.onEnd(() => {
      clearTimeout(timer);
      if (this.relistenTimer === timer) this.relistenTimer = undefined;
    });
  }

  /** A 2025-era upstream forgot its subscriptions when it restarted: subscribe again. */
  private async resubscribe(client: Client): Promise<void> {
    for (const uri of this.uris) {
      await client
        .request({ method: 'resources/subscribe', params: { uri } }, PassthroughResultSchema)
        .catch((error: unknown) =>
          this.host.log.warn({ uri, err: errorMessage(error) }, 'could not subscribe again after a restart'),
        );
    }
  }
}
