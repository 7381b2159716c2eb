import { BridgeError } from '../errors.js';

/** The command that fixes a missing or dead grant, for every error and for /status. */
export function loginCommand(upstream: string): string {
  return `npm run auth -- ${upstream}`;
}

export function needsAuthError(upstream: string, why: string, cause?: unknown): BridgeError {
  return new BridgeError(
    'NEEDS_AUTH',
    `upstream "${upstream}" needs a login: ${why}; run \`${loginCommand(upstream)}\``,
    {
      cause,
      details: { upstream, command: loginCommand(upstream) },
    },
  );
}
