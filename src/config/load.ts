import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { BridgeError, errorMessage } from '../errors.js';
import { checkConfigDirSync, configFileWarnings } from '../store/file-safety.js';
import { jsonSyntaxProblem } from '../store/json-file.js';
import { addEnvUpstreams, envOverride } from './env-overrides.js';
import { defaultLogPath, resolveConfigDir, resolveConfigFile } from './paths.js';
import { publicConfig } from './public.js';
import {
  type BridgeConfig,
  CALLBACK_PATH,
  ConfigFileSchema,
  DEFAULTS,
  HttpServerSchema,
  type HttpUpstreamConfig,
  isLoopbackHostname,
  StdioServerSchema,
  type UpstreamConfig,
  UpstreamNameSchema,
} from './schema.js';
import { expandEnvRefs } from './secrets.js';

export interface LoadConfigOptions {
  /** `--config PATH`; wins over `MCP_BRIDGE_CONFIG`. A named file must exist. */
  readonly configPath?: string | undefined;
  /** The environment to read `MCP_BRIDGE_*` and `${env:X}` from. */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Reads, validates and merges the config file with the `MCP_BRIDGE_*` environment variables
 * (environment wins over the file, the file over defaults). Throws a BridgeError whose message
 * names the file, the key and what was expected.
 */
export function loadConfig(options: LoadConfigOptions = {}): BridgeConfig {
  const env = options.env ?? process.env;
  const { file, explicit } = resolveConfigFile(options);
  const configDir = resolveConfigDir(env);
  checkConfigDirSync(configDir);
  const raw = readConfigFile(file, explicit);
  const parsed = ConfigFileSchema.safeParse(raw ?? {});
  // Entries are checked even when a top-level key is wrong, so one run reports every problem.
  const issues: z.core.$ZodIssue[] = parsed.success ? [] : [...parsed.error.issues];
  const data = parsed.success ? parsed.data : ConfigFileSchema.parse({});
  const servers = parsed.success
    ? data.mcpServers
    : recordOrEmpty((raw as { mcpServers?: unknown })?.mcpServers);

  const upstreams: UpstreamConfig[] = [];
  const callTimeoutMs = data.callTimeoutMs ?? DEFAULTS.callTimeoutMs;
  for (const [name, entry] of Object.entries(servers)) {
    const nameCheck = UpstreamNameSchema.safeParse(name);
    if (!nameCheck.success) {
      issues.push(...prefixIssues(nameCheck.error.issues, ['mcpServers', name]));
      continue;
    }
    const upstream = parseServer(name, entry, { file, env, callTimeoutMs, issues });
    if (upstream) upstreams.push(upstream);
  }
  if (issues.length > 0) throw invalid(file, issues);

  addEnvUpstreams(upstreams, env, callTimeoutMs);
  const port = envOverride(env, 'port') ?? data.port ?? DEFAULTS.port;
  const redirectIssues = upstreams.flatMap((u) => (u.kind === 'http' ? redirectUriIssue(u, port) : []));
  if (redirectIssues.length > 0) throw invalid(file, redirectIssues);

  return {
    file,
    fileExists: raw !== undefined,
    configDir,
    logPath: resolve(env.MCP_BRIDGE_LOG_PATH || defaultLogPath(env)),
    logLevel: envOverride(env, 'logLevel') ?? data.logLevel ?? DEFAULTS.logLevel,
    port,
    host: envOverride(env, 'host') ?? data.host ?? DEFAULTS.host,
    mcpPath: envOverride(env, 'mcpPath') ?? data.mcpPath ?? DEFAULTS.mcpPath,
    allowedOrigins: data.allowedOrigins ?? [],
    allowedHosts: data.allowedHosts ?? [],
    maxBodyBytes: data.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
    callTimeoutMs,
    pingIntervalMs: data.pingIntervalMs ?? DEFAULTS.pingIntervalMs,
    pageSize: data.pageSize ?? DEFAULTS.pageSize,
    upstreams,
    // Who else can change the file that decides what the daemon spawns.
    warnings: raw === undefined ? [] : configFileWarnings(file),
    auth: envOverride(env, 'auth') ?? data.auth ?? DEFAULTS.auth,
    maxStdoutLineBytes: data.maxStdoutLineBytes ?? DEFAULTS.maxStdoutLineBytes,
    maxStderrLineBytes: data.maxStderrLineBytes ?? DEFAULTS.maxStderrLineBytes,
    bodyTimeoutMs: data.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs,
    maxConnections: data.maxConnections ?? DEFAULTS.maxConnections,
    maxBodyBytesInFlight: data.maxBodyBytesInFlight ?? DEFAULTS.maxBodyBytesInFlight,
    maxSessions: data.maxSessions ?? DEFAULTS.maxSessions,
    activityLog: {
      enabled: data.activityLog?.enabled ?? true,
      arguments: data.activityLog?.arguments ?? false,
    },
    metrics: { enabled: data.metrics?.enabled ?? true },
    public: publicConfig(
      data.public && {
        ...data.public,
        ownerPassword:
          data.public.ownerPassword === undefined
            ? undefined
            : expandEnvRefs(data.public.ownerPassword, 'public.ownerPassword', env, file),
      },
      env,
      upstreams.map((u) => u.name),
      file,
    ),
  };
}

function readConfigFile(file: string, explicit: boolean): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return undefined;
    if (code === 'ENOENT') {
      throw new BridgeError('CONFIG_NOT_FOUND', `config file ${file} does not exist`, {
        cause: error,
        details: { file },
      });
    }
    throw new BridgeError('CONFIG_INVALID', `config file ${file} cannot be read: ${errorMessage(error)}`, {
      cause: error,
      details: { file },
    });
  }
  if (text.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new BridgeError(
        'CONFIG_INVALID',
        `config file ${file} must hold a JSON object like {"mcpServers": {...}}, not ${Array.isArray(parsed) ? 'an array' : String(parsed === null ? 'null' : typeof parsed)}`,
        { details: { file } },
      );
    }
    return parsed;
  } catch (error) {
    if (error instanceof BridgeError) throw error;
    // Not JSON.parse's message: it quotes the text, and the file may hold keys.
    throw new BridgeError('CONFIG_INVALID', `config file ${file} is ${jsonSyntaxProblem(error, text)}`, {
      cause: error,
      details: { file },
    });
  }
}

interface ParseContext {
  readonly file: string;
  readonly env: NodeJS.ProcessEnv;
  readonly callTimeoutMs: number;
  readonly issues: z.core.$ZodIssue[];
}

function parseServer(name: string, entry: unknown, ctx: ParseContext): UpstreamConfig | undefined {
  const where = `mcpServers.${name}`;
  const expand = (value: string, key: string) => expandEnvRefs(value, `${where}.${key}`, ctx.env, ctx.file);
  if (typeof entry === 'object' && entry !== null && 'url' in entry) {
    const s = checkEntry(HttpServerSchema, entry, name, ctx);
    if (!s || s.disabled) return undefined;
    return {
      kind: 'http',
      name,
      url: expand(s.url, 'url'),
      headers: expandRecord(s.headers, `${where}.headers`, ctx),
      transport: s.type === 'sse' ? 'sse' : 'streamable-http',
      oauth: {
        clientId: s.oauth?.clientId === undefined ? undefined : expand(s.oauth.clientId, 'oauth.clientId'),
        clientSecret:
          s.oauth?.clientSecret === undefined
            ? undefined
            : expand(s.oauth.clientSecret, 'oauth.clientSecret'),
        scopes: s.oauth?.scopes,
        redirectUri: s.oauth?.redirectUri,
        clientMetadataUrl: s.oauth?.clientMetadataUrl,
      },
      callTimeoutMs: s.callTimeoutMs ?? ctx.callTimeoutMs,
      prefix: s.prefix,
      protocol: s.protocol,
    };
  }
  const s = checkEntry(StdioServerSchema, entry, name, ctx);
  if (!s || s.disabled) return undefined;
  return {
    kind: 'stdio',
    name,
    command: expand(s.command, 'command'),
    args: s.args.map((arg, i) => expand(arg, `args[${i}]`)),
    env: expandRecord(s.env, `${where}.env`, ctx),
    cwd: s.cwd === undefined ? undefined : expand(s.cwd, 'cwd'),
    callTimeoutMs: s.callTimeoutMs ?? ctx.callTimeoutMs,
    prefix: s.prefix,
    protocol: s.protocol,
  };
}

/** Validates one entry; problems are collected (with their full path), not thrown. */
function checkEntry<T extends z.ZodType>(
  schema: T,
  entry: unknown,
  name: string,
  ctx: ParseContext,
): z.infer<T> | undefined {
  const result = schema.safeParse(entry);
  if (result.success) return result.data;
  ctx.issues.push(...prefixIssues(result.error.issues, ['mcpServers', name]));
  return undefined;
}

function expandRecord(
  record: Record<string, string>,
  where: string,
  ctx: ParseContext,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(record).map(([k, v]) => [k, expandEnvRefs(v, `${where}.${k}`, ctx.env, ctx.file)]),
  );
}

/**
 * A custom `oauth.redirectUri` must bring the browser back to the daemon's callback: on this
 * machine exactly (its port and path), through a tunnel or proxy at least to that path.
 */
function redirectUriIssue(upstream: HttpUpstreamConfig, port: number): z.core.$ZodIssue[] {
  const value = upstream.oauth.redirectUri;
  if (value === undefined) return [];
  const url = new URL(value);
  const local = isLoopbackHostname(url.hostname);
  const urlPort = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const wrong = local
    ? url.pathname !== CALLBACK_PATH || (port !== 0 && urlPort !== port)
    : !url.pathname.endsWith(CALLBACK_PATH);
  if (!wrong) return [];
  const expected = local
    ? `http://127.0.0.1:${port || '<port>'}${CALLBACK_PATH} (the daemon's own callback)`
    : `a URL ending in ${CALLBACK_PATH} that reaches the daemon (through your tunnel or proxy)`;
  return [
    {
      code: 'custom',
      input: value,
      path: ['mcpServers', upstream.name, 'oauth', 'redirectUri'],
      message: `oauth.redirectUri must be ${expected}, or be left out; the login could never finish at "${value}"`,
    } as z.core.$ZodIssue,
  ];
}

function recordOrEmpty(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function prefixIssues(issues: readonly z.core.$ZodIssue[], prefix: PropertyKey[]): z.core.$ZodIssue[] {
  return issues.map((issue) => ({ ...issue, path: [...prefix, ...issue.path] }));
}

function invalid(file: string, issues: z.core.$ZodIssue[]): BridgeError {
  const pretty = z.prettifyError(new z.ZodError(issues));
  return new BridgeError('CONFIG_INVALID', `config file ${file} is invalid:\n${pretty}`, {
    details: { file, keys: issues.map((i) => i.path.join('.')) },
  });
}
