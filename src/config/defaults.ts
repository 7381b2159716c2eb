/**
 * What a daemon uses for a key its config file and environment leave out. Kept free of imports
 * (no zod, no node) because the stdio shim reads it too, and the shim must start fast and load no
 * daemon code; schema.ts re-exports it for everyone else.
 */
export const DEFAULTS = {
  port: 8769,
  host: '127.0.0.1',
  mcpPath: '/mcp',
  maxBodyBytes: 4 * 1024 * 1024,
  callTimeoutMs: 120_000,
  pingIntervalMs: 30_000,
  pageSize: 5000,
  logLevel: 'info',
  auth: 'token',
  maxStdoutLineBytes: 64 * 1024 * 1024,
  maxStderrLineBytes: 64 * 1024,
  bodyTimeoutMs: 30_000,
  maxConnections: 1000,
  maxBodyBytesInFlight: 64 * 1024 * 1024,
  maxSessions: 1000,
} as const;
