import { BridgeError } from '../errors.js';
import {
  type ConfigFile,
  ConfigFileSchema,
  HttpServerSchema,
  LogLevelSchema,
  MCP_PATH_RULE,
  type UpstreamConfig,
} from './schema.js';

interface Override {
  readonly variable: string;
  /** Completes "<variable> must …" when the value fails its config key's schema. */
  readonly expected: string;
  /** Turns the variable's text into what the key holds in JSON (the text itself if absent). */
  readonly parse?: (text: string) => unknown;
}

/**
 * The `MCP_BRIDGE_*` variables that override a key of the config file (they win over it). Each
 * value is checked by that key's own schema field, so the file and the environment accept the same.
 */
export const ENV_OVERRIDES = {
  port: { variable: 'MCP_BRIDGE_PORT', expected: 'be a port number 0-65535', parse: Number },
  host: { variable: 'MCP_BRIDGE_HOST', expected: 'be a host name or address' },
  mcpPath: { variable: 'MCP_BRIDGE_MCP_PATH', expected: MCP_PATH_RULE },
  auth: { variable: 'MCP_BRIDGE_AUTH', expected: 'be "token" or "none"' },
  logLevel: { variable: 'MCP_BRIDGE_LOG_LEVEL', expected: `be one of ${LogLevelSchema.options.join(', ')}` },
} as const satisfies { readonly [K in keyof ConfigFile]?: Override };

export type OverriddenKey = keyof typeof ENV_OVERRIDES;

/**
 * The value of `key` from its environment variable, or undefined when that is unset or empty.
 * Throws CONFIG_INVALID naming the variable and what it must be.
 */
export function envOverride<K extends OverriddenKey>(
  env: NodeJS.ProcessEnv,
  key: K,
): Exclude<ConfigFile[K], undefined> | undefined {
  const override: Override = ENV_OVERRIDES[key];
  const text = env[override.variable];
  if (text === undefined || text === '') return undefined;
  const result = ConfigFileSchema.shape[key].safeParse(override.parse ? override.parse(text) : text);
  if (result.success) return result.data as Exclude<ConfigFile[K], undefined>;
  // Only a refinement (a port fetch() blocks) has a message more precise than the general rule.
  const [first] = result.error.issues;
  if (first && result.error.issues.every((issue) => issue.code === 'custom')) {
    throw new BridgeError('CONFIG_INVALID', `${override.variable}: ${first.message}`);
  }
  throw new BridgeError('CONFIG_INVALID', `${override.variable} must ${override.expected}, got "${text}"`);
}

/** The original design's single-upstream variables still work; they replace a same-named entry. */
export function addEnvUpstreams(
  upstreams: UpstreamConfig[],
  env: NodeJS.ProcessEnv,
  callTimeoutMs: number,
): void {
  const replace = (upstream: UpstreamConfig) => {
    const i = upstreams.findIndex((u) => u.name === upstream.name);
    if (i >= 0) upstreams.splice(i, 1, upstream);
    else upstreams.push(upstream);
  };
  if (env.MCP_BRIDGE_SENTINEL_COMMAND) {
    replace({
      kind: 'stdio',
      name: 'sentinel',
      command: env.MCP_BRIDGE_SENTINEL_COMMAND,
      args: (env.MCP_BRIDGE_SENTINEL_ARGS ?? '').split(/\s+/).filter(Boolean),
      env: {},
      callTimeoutMs,
    });
  }
  if (env.MCP_BRIDGE_OVERSEER_URL) {
    const url = HttpServerSchema.shape.url.safeParse(env.MCP_BRIDGE_OVERSEER_URL);
    if (!url.success) {
      throw new BridgeError(
        'CONFIG_INVALID',
        `MCP_BRIDGE_OVERSEER_URL must be an http:// or https:// URL, got "${env.MCP_BRIDGE_OVERSEER_URL}"`,
      );
    }
    replace({
      kind: 'http',
      name: 'overseer',
      url: url.data,
      headers: {},
      transport: 'streamable-http',
      oauth: {},
      callTimeoutMs,
    });
  }
}
