import {
  accessTokenPath,
  newAccessToken,
  readAccessToken,
  writeAccessToken,
} from '../access/access-token.js';
import { loadConfig } from '../config/load.js';
import { BridgeError } from '../errors.js';
import { parseCommandArgs } from './args.js';

/** `mcp-bridge token rotate | path`: replaces the local access token, or says where it is. */
export async function runToken(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'token',
    argv,
    { config: { type: 'string', short: 'c' } },
    true,
  );
  const [action, ...rest] = positionals;
  if (rest.length > 0 || (action !== 'rotate' && action !== 'path')) {
    throw new BridgeError('USAGE', 'token: expected "mcp-bridge token rotate" or "mcp-bridge token path"');
  }
  const config = loadConfig({ configPath: values.config });
  const file = accessTokenPath(config.configDir);
  if (action === 'path') {
    process.stdout.write(
      `${file}${readAccessToken(config.configDir) ? '' : ' (not created yet: the daemon creates it at first start)'}\n`,
    );
    return 0;
  }
  await writeAccessToken(config.configDir, newAccessToken());
  process.stdout.write(
    [
      `A new local access token is in ${file}; the old one stops working within a second (no restart needed).`,
      'Claude Desktop (through the shim) and the mcp-bridge commands read the file themselves.',
      'Clients configured with a header need the new one: run "mcp-bridge clients".',
      '',
    ].join('\n'),
  );
  return 0;
}
