import { type OpReader, opRead } from '../config/op-refs.js';
import type { PublicConfig } from '../config/schema.js';
import { BridgeError, errorMessage } from '../errors.js';

/** Short enough to type on a phone, long enough that five guesses per 15 minutes get nowhere. */
export const MIN_OWNER_PASSWORD_LENGTH = 12;

const WHERE =
  'set MCP_BRIDGE_OWNER_PASSWORD, MCP_BRIDGE_OWNER_PASSWORD_OP_REF (an op:// reference) or public.ownerPassword in config.json (a literal or an op:// reference)';

export type OwnerPasswordSource =
  | 'MCP_BRIDGE_OWNER_PASSWORD'
  | 'MCP_BRIDGE_OWNER_PASSWORD_OP_REF'
  | 'public.ownerPassword';

/** Where ownerPassword() takes the password from, and whether that is an `op://` reference to read. */
export function ownerPasswordSource(
  config: PublicConfig,
  env: NodeJS.ProcessEnv,
): { source: OwnerPasswordSource; value: string | undefined; opRef: boolean } {
  const [source, value]: [OwnerPasswordSource, string | undefined] = env.MCP_BRIDGE_OWNER_PASSWORD
    ? ['MCP_BRIDGE_OWNER_PASSWORD', env.MCP_BRIDGE_OWNER_PASSWORD]
    : env.MCP_BRIDGE_OWNER_PASSWORD_OP_REF
      ? ['MCP_BRIDGE_OWNER_PASSWORD_OP_REF', env.MCP_BRIDGE_OWNER_PASSWORD_OP_REF]
      : ['public.ownerPassword', config.ownerPassword];
  const opRef = source === 'MCP_BRIDGE_OWNER_PASSWORD_OP_REF' || (value?.startsWith('op://') ?? false);
  return { source, value, opRef };
}

/**
 * The password the owner types on the consent page: `MCP_BRIDGE_OWNER_PASSWORD`, else the
 * `op://` reference in `MCP_BRIDGE_OWNER_PASSWORD_OP_REF`, else `public.ownerPassword` (an `op://`
 * value is read with `op read`). Throws OWNER_PASSWORD_REQUIRED (exit 2) naming all three places.
 */
export async function ownerPassword(
  config: PublicConfig,
  env: NodeJS.ProcessEnv,
  read: OpReader = opRead,
): Promise<string> {
  const { source, value, opRef } = ownerPasswordSource(config, env);
  if (!value) {
    throw new BridgeError(
      'OWNER_PASSWORD_REQUIRED',
      `public.url is set (${config.url}), so the public listener needs an owner password for its consent page: ${WHERE}`,
    );
  }
  let password = value;
  if (opRef) {
    try {
      password = await read(value.trim());
    } catch (error) {
      throw new BridgeError('SECRET_UNAVAILABLE', `${source}: ${errorMessage(error)}`, {
        cause: error,
        details: { key: source },
      });
    }
  }
  if ([...password].length < MIN_OWNER_PASSWORD_LENGTH) {
    throw new BridgeError(
      'OWNER_PASSWORD_REQUIRED',
      `the owner password from ${source} is shorter than ${MIN_OWNER_PASSWORD_LENGTH} characters; choose a longer one: ${WHERE}`,
    );
  }
  return password;
}
