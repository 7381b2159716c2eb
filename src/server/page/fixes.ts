/** What the status page tells a person to do about an upstream's last error. */
export interface Fix {
  readonly text: string;
  /** A command to run, shown with a copy button. */
  readonly command?: string;
  /** The config key to change, as written in config.json. */
  readonly key?: string;
  /** The program the daemon could not find or run. */
  readonly missing?: string;
}

interface Failing {
  readonly name: string;
  readonly state: string;
  readonly lastError: { readonly code: string; readonly message: string } | null;
}

const RELOADS = 'Save config.json: the daemon reloads it and restarts this upstream.';

/**
 * The fix for what keeps an upstream from being ready, or null when there is nothing to do
 * (ready, or an error that heals by itself: its docs entry, linked from the code, says more).
 */
export function fixFor(upstream: Failing): Fix | null {
  const { name, state, lastError } = upstream;
  if (state === 'ready' || state === 'stopping' || state === 'stopped') return null;
  const login = `npm run auth -- ${name}`;
  if (state === 'needs_auth' || lastError?.code === 'NEEDS_AUTH') {
    return { text: 'Log in to the server (the button, or in a terminal):', command: login };
  }
  const key = `mcpServers.${name}`;
  switch (lastError?.code) {
    case 'INSUFFICIENT_SCOPE':
      return { text: 'Log in again to grant the scope it needs:', command: login };
    case 'COMMAND_NOT_FOUND': {
      const command = /command "([^"]*)"/.exec(lastError.message)?.[1];
      return {
        text: `Install it, or give its absolute path (the daemon's PATH may not be your shell's). ${RELOADS}`,
        key: `${key}.command`,
        ...(command ? { missing: command } : {}),
      };
    }
    case 'CWD_NOT_FOUND':
      return { text: `Create the directory, or change the working directory. ${RELOADS}`, key: `${key}.cwd` };
    case 'SECRET_UNAVAILABLE':
      return {
        text: 'Sign in to 1Password (or set OP_SERVICE_ACCOUNT_TOKEN for a service), or fix the op:// reference the message names; then reconnect.',
        command: 'op signin',
      };
    case 'AUTH_REJECTED':
      return { text: `Fix the key the server refused. ${RELOADS}`, key: `${key}.headers.Authorization` };
    case 'UPSTREAM_OUTPUT_TOO_LARGE':
      return {
        text: 'If the server really sends messages that large, raise the limit (up to 256 MiB).',
        key: 'maxStdoutLineBytes',
      };
    default:
      return state === 'failed'
        ? { text: 'Fix what the message says, then reconnect; the daemon log has the details.' }
        : null;
  }
}
