import type { BridgeConfig, UpstreamConfig } from '../config/schema.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { ActivityLog, defaultActivityPath } from './activity-log.js';
import { activitySecretsOf } from './redact-secrets.js';

/**
 * The daemon's activity log beside its main log, or undefined with `activityLog.enabled: false`.
 * `upstreams` is the config as reloaded: their secret values are redacted from what is recorded.
 */
export function openDaemonActivity(
  config: BridgeConfig,
  logger: Logger,
  upstreams: () => readonly UpstreamConfig[],
  password: string | undefined,
): ActivityLog | undefined {
  if (config.activityLog?.enabled === false) return undefined;
  return ActivityLog.open({
    file: defaultActivityPath(config.logPath),
    recordArguments: config.activityLog?.arguments ?? false,
    knownSecrets: secretsOf(upstreams, password),
    onError: (error) =>
      logger.warn(
        { err: errorMessage(error) },
        'the activity log cannot be written; it is kept in memory only',
      ),
  });
}

/** The upstreams' secret values as configured now (once per config, not per call), and the owner password. */
function secretsOf(current: () => readonly UpstreamConfig[], password?: string): () => readonly string[] {
  let seen: readonly UpstreamConfig[] | undefined;
  let secrets: readonly string[] = [];
  return () => {
    const upstreams = current();
    if (upstreams !== seen) {
      seen = upstreams;
      secrets = [...activitySecretsOf(upstreams), ...(password ? [password] : [])];
    }
    return secrets;
  };
}
