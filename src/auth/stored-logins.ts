import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { UpstreamRegistry } from '../upstream/registry.js';
import type { OAuthManager } from './oauth-manager.js';

/**
 * Picks up a login stored by another process (`mcp-bridge auth` that did not find this daemon):
 * every 10 s, each `needs_auth` upstream's token file is read again. Returns the stop.
 */
export function watchStoredLogins(
  registry: Pick<UpstreamRegistry, 'snapshots' | 'get'>,
  oauth: Pick<OAuthManager, 'reload'>,
  logger: Logger,
): () => void {
  const timer = setInterval(() => {
    for (const snapshot of registry.snapshots()) {
      if (snapshot.state !== 'needs_auth') continue;
      oauth.reload(snapshot.name).then(
        (found) => found && registry.get(snapshot.name)?.retryNow(),
        (error: unknown) => logger.debug({ err: errorMessage(error) }, 'could not re-read the token file'),
      );
    }
  }, 10_000);
  timer.unref();
  return () => clearInterval(timer);
}
