import { BridgeError } from '../errors.js';
import { serviceLogs, serviceRestart, serviceStatus } from '../service/control.js';
import { installService, uninstallService } from '../service/install.js';
import { defaultContext } from '../service/manager.js';
import { parseCommandArgs } from './args.js';

const ACTIONS = ['install', 'uninstall', 'status', 'restart', 'logs'] as const;

/** `mcp-bridge service install [--dry-run] | uninstall | status | restart | logs [--follow]`. */
export async function runService(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'service',
    argv,
    {
      'dry-run': { type: 'boolean' },
      force: { type: 'boolean' },
      follow: { type: 'boolean', short: 'f' },
      lines: { type: 'string', short: 'n' },
    },
    true,
  );
  const action = positionals[0];
  if (positionals.length !== 1 || !(ACTIONS as readonly string[]).includes(action ?? '')) {
    throw new BridgeError(
      'USAGE',
      `service: expected one of ${ACTIONS.join(', ')}; run "mcp-bridge service --help"`,
    );
  }
  if (values['dry-run'] && action !== 'install') {
    throw new BridgeError('USAGE', 'service: --dry-run goes with "install" only');
  }
  if ((values.follow || values.lines) && action !== 'logs') {
    throw new BridgeError('USAGE', 'service: --follow and --lines go with "logs" only');
  }
  const lines = values.lines === undefined ? undefined : Number(values.lines);
  if (lines !== undefined && !(Number.isInteger(lines) && lines >= 0)) {
    throw new BridgeError('USAGE', `service logs: --lines wants a whole number, not "${values.lines}"`);
  }
  if (values.force && action !== 'install') {
    throw new BridgeError('USAGE', 'service: --force goes with "install" only');
  }
  const ctx = defaultContext({ allowTemporary: values.force === true });
  switch (action) {
    case 'install':
      return installService(ctx, { dryRun: values['dry-run'] === true });
    case 'uninstall':
      return uninstallService(ctx);
    case 'status':
      return serviceStatus(ctx);
    case 'restart':
      return serviceRestart(ctx);
    default:
      return serviceLogs(ctx, { follow: values.follow === true, lines });
  }
}
