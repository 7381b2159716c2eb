import { z } from 'zod';
import type { PublicConfig } from './public.js';

/** Upstream names become the prefix of every exposed tool name, so they use the same alphabet. */
export const UpstreamNameSchema = z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, {
  error: 'an upstream name must be 1-40 characters of letters, digits, "_" or "-"',
});

/**
 * A strict object whose "unknown key" message lists the keys of its own shape, so the list a user
 * sees cannot fall behind the schema.
 */
function strictObject<const T extends z.core.$ZodLooseShape>(shape: T) {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue: { code?: string; keys?: string[] }) =>
      issue.code === 'unrecognized_keys'
        ? `unknown key${issue.keys && issue.keys.length > 1 ? 's' : ''} ${issue.keys?.map((k) => `"${k}"`).join(', ')}; expected one of: ${allowed}`
        : undefined,
  });
}

/** A plain path: no route patterns (":x", "*"), since express would interpret them. */
const MCP_PATH = /^\/[A-Za-z0-9._~/-]*$/;
/** What MCP_PATH asks for, after "mcpPath must" (or its environment variable's "must"). */
export const MCP_PATH_RULE = 'start with "/" and use only letters, digits, "/", ".", "_", "~" or "-"';
export const LogLevelSchema = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/**
 * `token`: every request needs the local access token (the file `access-token` in the config dir).
 * `none`: the endpoint is open to every local process and allowed browser origin, as before.
 */
const AuthModeSchema = z.enum(['token', 'none'], {
  error: 'auth must be "token" (the default: clients send the local access token) or "none"',
});

const timeoutMs = z.number().int().min(100).max(3_600_000);

/** Host names that always mean this machine (IPv6 in URL brackets, as `URL.hostname` gives it). */
export const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'] as const;

export function isLoopbackHostname(hostname: string): boolean {
  return (LOOPBACK_HOSTS as readonly string[]).includes(hostname.toLowerCase());
}

/** Where the daemon (and `mcp-bridge auth`) receive the browser after an OAuth login. */
export const CALLBACK_PATH = '/oauth/callback';

/**
 * Ports that fetch() refuses to connect to (the WHATWG Fetch "bad port" list): the stdio shim,
 * Node-based clients and browsers could not reach a daemon listening on one of them.
 */
const FETCH_BLOCKED_PORTS = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104,
  109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515,
  526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049,
  3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);
const blockedPortMessage = (port: number) =>
  `port ${port} is on fetch()'s list of blocked ports: the stdio shim, Node-based clients and browsers refuse to connect to it; choose another port`;

/**
 * `auto`: probe with server/discover and speak the stateless 2026-07-28 revision when the server
 * offers it, else the 2025 initialize handshake. `legacy`: always the initialize handshake.
 */
const ProtocolSchema = z.enum(['auto', 'legacy']);

export const StdioServerSchema = strictObject({
  type: z.literal('stdio').optional(),
  command: z.string().min(1, { error: 'command must not be empty' }),
  args: z.array(z.string()).default([]),
  env: z.record(z.string(), z.string()).default({}),
  cwd: z.string().min(1).optional(),
  disabled: z.boolean().default(false),
  callTimeoutMs: timeoutMs.optional(),
  prefix: z.boolean().default(true),
  protocol: ProtocolSchema.default('legacy'),
});
export type StdioServer = z.infer<typeof StdioServerSchema>;

export const OAuthSchema = strictObject({
  clientId: z.string().min(1).optional(),
  clientSecret: z.string().min(1).optional(),
  scopes: z.array(z.string().min(1)).optional(),
  redirectUri: z
    .url({ protocol: /^https?$/, error: 'redirectUri must be an http:// or https:// URL' })
    .optional(),
  clientMetadataUrl: z
    .url({ protocol: /^https$/, error: 'clientMetadataUrl must be an https:// URL' })
    .optional(),
});

export const HttpServerSchema = strictObject({
  type: z.enum(['http', 'streamable-http', 'streamableHttp', 'sse']).optional(),
  url: z.url({ protocol: /^https?$/, error: 'url must be an http:// or https:// URL' }),
  headers: z.record(z.string(), z.string()).default({}),
  oauth: OAuthSchema.optional(),
  disabled: z.boolean().default(false),
  callTimeoutMs: timeoutMs.optional(),
  prefix: z.boolean().default(true),
  protocol: ProtocolSchema.default('auto'),
});
export type HttpServer = z.infer<typeof HttpServerSchema>;

/** The `public` block: the listener ChatGPT and claude.ai reach through a tunnel (config/public.ts). */
export const PublicSchema = strictObject({
  url: z.string().min(1).optional(),
  port: z.number().int().min(0).max(65535).optional(),
  ownerPassword: z.string().min(1).optional(),
  upstreams: z.array(z.string().min(1)).optional(),
  redirectUris: z.array(z.string().min(1)).optional(),
  accessTokenTtlSeconds: z.number().int().min(60).max(86_400).optional(),
  refreshTokenTtlSeconds: z
    .number()
    .int()
    .min(3600)
    .max(365 * 86_400)
    .optional(),
});
export type PublicFile = z.infer<typeof PublicSchema>;

/** The file format: Claude Desktop's `mcpServers` plus the bridge's own optional keys. */
export const ConfigFileSchema = strictObject({
  $schema: z.string().optional(),
  // Entries are validated one by one (stdio or http, chosen by the presence of `url`) so that an
  // error names the exact key instead of a union of two failed alternatives.
  mcpServers: z.record(z.string(), z.unknown()).default({}),
  port: z
    .number()
    .int()
    .min(0)
    .max(65535)
    .refine((port) => !FETCH_BLOCKED_PORTS.has(port), {
      error: (issue) => blockedPortMessage(Number(issue.input)),
    })
    .optional(),
  host: z.string().min(1).optional(),
  mcpPath: z
    .string()
    .regex(MCP_PATH, { error: `mcpPath must ${MCP_PATH_RULE}` })
    .optional(),
  allowedOrigins: z.array(z.string().min(1)).optional(),
  allowedHosts: z.array(z.string().min(1)).optional(),
  maxBodyBytes: z.number().int().min(1024).optional(),
  callTimeoutMs: timeoutMs.optional(),
  pingIntervalMs: z.number().int().min(0).optional(),
  pageSize: z.number().int().min(1).max(100_000).optional(),
  logLevel: LogLevelSchema.optional(),
  auth: AuthModeSchema.optional(),
  // A Buffer.toString() past ~512 MiB fails; a message that size is a bug anyway.
  maxStdoutLineBytes: z
    .number()
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .optional(),
  maxStderrLineBytes: z
    .number()
    .int()
    .min(256)
    .max(64 * 1024 * 1024)
    .optional(),
  bodyTimeoutMs: timeoutMs.optional(),
  maxConnections: z.number().int().min(1).max(100_000).optional(),
  maxBodyBytesInFlight: z.number().int().min(1024).optional(),
  maxSessions: z.number().int().min(1).max(1_000_000).optional(),
  public: PublicSchema.optional(),
  activityLog: strictObject({
    enabled: z.boolean().optional(),
    arguments: z.boolean().optional(),
  }).optional(),
  metrics: strictObject({ enabled: z.boolean().optional() }).optional(),
});
export type ConfigFile = z.infer<typeof ConfigFileSchema>;

interface UpstreamConfigBase {
  /** The configured name, the prefix of every exposed tool. */
  readonly name: string;
  /** Per-call timeout for this upstream. */
  readonly callTimeoutMs: number;
  /**
   * false: tools and prompts keep their own names (no `<upstream>__`); on a clash with another
   * upstream the later one in config order keeps its prefix.
   */
  readonly prefix?: boolean | undefined;
  /**
   * `auto`: the 2026-07-28 revision when the server offers it (probed with server/discover);
   * `legacy`: the 2025 initialize handshake. Defaults: `legacy` for stdio, `auto` for http.
   */
  readonly protocol?: 'auto' | 'legacy' | undefined;
}

export interface StdioUpstreamConfig extends UpstreamConfigBase {
  readonly kind: 'stdio';
  /** The program to spawn (looked up on PATH). */
  readonly command: string;
  /** Arguments, with `${env:X}` already expanded. */
  readonly args: readonly string[];
  /** Extra environment for the child, on top of the daemon's own. */
  readonly env: Readonly<Record<string, string>>;
  /** Working directory of the child. */
  readonly cwd?: string | undefined;
}

export interface HttpUpstreamConfig extends UpstreamConfigBase {
  readonly kind: 'http';
  /** The remote MCP endpoint. */
  readonly url: string;
  /** Extra request headers (e.g. a static Authorization). */
  readonly headers: Readonly<Record<string, string>>;
  /** `sse` forces the legacy HTTP+SSE transport; otherwise Streamable HTTP, falling back to SSE. */
  readonly transport: 'streamable-http' | 'sse';
  /** OAuth client settings; absent means defaults (dynamic registration, scopes from the server). */
  readonly oauth: OAuthSettings;
}

/** The `oauth` block of an http upstream, with `${env:…}` expanded (`op://` refs resolve at connect). */
export interface OAuthSettings {
  readonly clientId?: string | undefined;
  readonly clientSecret?: string | undefined;
  readonly scopes?: readonly string[] | undefined;
  readonly redirectUri?: string | undefined;
  readonly clientMetadataUrl?: string | undefined;
}

export type UpstreamConfig = StdioUpstreamConfig | HttpUpstreamConfig;

/** A remote upstream logs in with OAuth unless its config sets an Authorization header itself. */
export function usesOAuth(config: UpstreamConfig): config is HttpUpstreamConfig {
  return (
    config.kind === 'http' && !Object.keys(config.headers).some((h) => h.toLowerCase() === 'authorization')
  );
}

/** The resolved configuration of a daemon: file, environment and defaults merged. */
export interface BridgeConfig {
  /** The config file that was (or would have been) read. */
  readonly file: string;
  /** Whether that file existed. */
  readonly fileExists: boolean;
  /** Directory for tools-cache.json and oauth-state.json. */
  readonly configDir: string;
  readonly logPath: string;
  readonly logLevel: string;
  readonly port: number;
  readonly host: string;
  readonly mcpPath: string;
  /** Origins allowed in addition to the built-in list. */
  readonly allowedOrigins: readonly string[];
  /** Host names allowed in addition to the loopback names. */
  readonly allowedHosts: readonly string[];
  readonly maxBodyBytes: number;
  readonly callTimeoutMs: number;
  readonly pingIntervalMs: number;
  /** Items per page of the lists clients get (tools, prompts, resources, templates). */
  readonly pageSize: number;
  /** Enabled upstreams, in config order. */
  readonly upstreams: readonly UpstreamConfig[];
  /** Problems worth a person's attention (a config file others can write), logged at start and shown in /status. */
  readonly warnings?: readonly string[];
  /** `token`: the local access token is required on every route but /healthz and the OAuth callback. */
  readonly auth: 'token' | 'none';
  /** Longest stdout line (one JSON-RPC message) of a stdio child; a longer one stops the child. */
  readonly maxStdoutLineBytes?: number;
  /** Longest stderr line of a stdio child that is logged; a longer one is dropped. */
  readonly maxStderrLineBytes?: number;
  /** Time to receive a request's headers and body; a slower one gets 408 and its connection closed. */
  readonly bodyTimeoutMs?: number;
  /** Open connections; more are answered 503 and closed. */
  readonly maxConnections?: number;
  /** Bytes of request bodies being read or served at once; a body that would pass it gets 503. */
  readonly maxBodyBytesInFlight?: number;
  /** Open 2025-era sessions (Mcp-Session-Id); an initialize past it gets 503. */
  readonly maxSessions?: number;
  /**
   * `activityLog.enabled` (default true): the activity log file and the page's last calls;
   * `activityLog.arguments`: record (redacted) arguments and results in it.
   */
  readonly activityLog?: { readonly enabled: boolean; readonly arguments: boolean } | undefined;
  /** `metrics.enabled` (default true): GET /metrics and the counting behind it. */
  readonly metrics?: { readonly enabled: boolean } | undefined;
  /** The public listener for ChatGPT and claude.ai (its own OAuth); absent without `public.url`. */
  readonly public?: PublicConfig | undefined;
}

export { DEFAULTS } from './defaults.js';
export type { PublicConfig };
