import { type Client, ProtocolError } from '@modelcontextprotocol/client';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

export interface KeepaliveOptions {
  readonly client: Client;
  /** Ping period; 0 disables. */
  readonly intervalMs: number;
  /** True while calls are in flight: a server busy with a call may not answer pings in time. */
  readonly isBusy: () => boolean;
  /** False once this connection is no longer the upstream's current one. */
  readonly isCurrent: () => boolean;
  /** Called after two missed pings in a row. */
  readonly onDead: () => void;
  readonly log: Logger;
}

/** Pings an idle connection on an interval (server/discover on 2026-07-28); returns the function that stops it. */
export function startKeepalive(options: KeepaliveOptions): () => void {
  const { client, intervalMs, log } = options;
  if (intervalMs <= 0) return () => {};
  let misses = 0;
  const timer = setInterval(() => {
    if (!options.isCurrent() || options.isBusy()) return;
    const timeout = Math.min(intervalMs, 10_000);
    // The 2026-07-28 revision has no ping; server/discover is its cheapest request.
    const probe =
      client.getProtocolEra() === 'modern' ? client.discover({ timeout }) : client.ping({ timeout });
    probe.then(
      () => {
        misses = 0;
      },
      (error: unknown) => {
        if (!options.isCurrent()) return;
        // Any JSON-RPC answer (even "method not found") proves the server is alive.
        if (error instanceof ProtocolError) {
          misses = 0;
          return;
        }
        misses++;
        log.warn({ err: errorMessage(error), misses }, 'keepalive ping failed');
        if (misses < 2) return;
        log.warn('two keepalive pings in a row failed; reconnecting');
        options.onDead();
      },
    );
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
