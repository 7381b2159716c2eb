import { assertProven, type LocalDaemon, requireLocalDaemon } from '../access/local-daemon.js';
import { loadConfig } from '../config/load.js';
import { BridgeError, errorMessage } from '../errors.js';
import { parseCommandArgs } from './args.js';

/**
 * The status page's one-time login link, from a daemon that proved it knows the access token: the
 * daemon hands out the code only for the token, so the link is as good as the token for 60 s, once.
 */
export async function pageLoginUrl(daemon: LocalDaemon): Promise<string> {
  const response = await daemon.fetch('/login/code', { method: 'POST', signal: AbortSignal.timeout(5000) });
  const body = (await response.json().catch(() => ({}))) as { path?: unknown; error?: { message?: string } };
  if (!response.ok || typeof body.path !== 'string' || !body.path.startsWith('/login?')) {
    throw new BridgeError(
      'DAEMON_UNREACHABLE',
      `the daemon at ${daemon.base} gave no login link (HTTP ${response.status}${body.error?.message ? `: ${body.error.message}` : ''}); is it older than this command? Restart it`,
    );
  }
  return `${daemon.base}${body.path}`;
}

/** `mcp-bridge open`: the status page in the default browser, logged in. */
export async function runOpen(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('open', argv, {
    'no-open': { type: 'boolean' },
    config: { type: 'string', short: 'c' },
  });
  const config = loadConfig({ configPath: values.config });
  const daemon = await requireLocalDaemon(config);
  // A browser is only ever sent to a daemon that proved it is ours (a squatter could say "none").
  assertProven(daemon, config.auth);
  const url = await pageLoginUrl(daemon);
  if (values['no-open']) {
    process.stdout.write(
      `Open this link within 60 seconds, in a browser on this machine (it works once):\n${url}\n`,
    );
    return 0;
  }
  try {
    const { default: openUrl } = await import('open');
    await openUrl(url);
    process.stdout.write(`Opened the status page (${daemon.base}/) in your browser.\n`);
  } catch (error) {
    process.stdout.write(
      `Could not open a browser (${errorMessage(error)}); open this link within 60 seconds, once:\n${url}\n`,
    );
  }
  return 0;
}
