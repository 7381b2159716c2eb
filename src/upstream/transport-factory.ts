import type { OAuthManager } from '../auth/oauth-manager.js';
import { usesOAuth } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { ChildGroupTracker } from './child-groups.js';
import { HttpUpstreamTransport } from './http-transport.js';
import { StdioTransport } from './stdio-transport.js';
import type { CreateTransport } from './upstream-types.js';

/** Stdio children for `command` entries; Streamable HTTP (or legacy SSE) for `url` entries. */
export function defaultTransportFactory(deps: {
  oauth?: OAuthManager | undefined;
  logger: Logger;
  groups?: ChildGroupTracker | undefined;
  maxStdoutLineBytes?: number | undefined;
  maxStderrLineBytes?: number | undefined;
}): CreateTransport {
  return (config, hooks) => {
    if (config.kind === 'stdio') {
      return new StdioTransport({
        name: config.name,
        command: config.command,
        args: config.args,
        env: config.env,
        cwd: config.cwd,
        onStderrLine: hooks.onStderrLine,
        onGarbage: hooks.onGarbage,
        onExit: hooks.onExit,
        maxStdoutLineBytes: deps.maxStdoutLineBytes,
        maxStderrLineBytes: deps.maxStderrLineBytes,
        log: deps.logger.child({ upstream: config.name }),
        groups: deps.groups,
      });
    }
    // A configured Authorization header is the whole story: no OAuth on top of a static key.
    const oauth = usesOAuth(config) ? deps.oauth : undefined;
    return new HttpUpstreamTransport({
      config,
      auth: oauth?.provider(config),
      log: deps.logger.child({ upstream: config.name }),
      onInsufficientScope: (scope) => oauth?.noteScope(config.name, scope),
    });
  };
}
