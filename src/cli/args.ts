import { type ParseArgsConfig, parseArgs } from 'node:util';
import { BridgeError, errorMessage } from '../errors.js';

/** node:util parseArgs, with its errors turned into usage errors (exit code 2). */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  argv: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (error) {
    throw new BridgeError('USAGE', `${command}: ${errorMessage(error)}; run "mcp-bridge ${command} --help"`, {
      cause: error,
    });
  }
}
