import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { StdioUpstreamConfig } from '../../src/config/schema.js';
import type { Daemon } from '../../src/daemon.js';
import { createLogger, type Logger } from '../../src/log.js';
import type { Status } from '../../src/server/status.js';
import { authHeaders, makeTempDir, startTestDaemon } from '../helpers/bridge.js';
import { waitFor } from '../helpers/wait.js';

const LEAKY_SERVER = fileURLToPath(new URL('../fixtures/leaky-server.mjs', import.meta.url));

// Planted secrets: in env (a secret name, URLs with a password, an innocent name with a random
// value, a Basic credential under an innocent name), after long flags and a short one (a short
// flag's value counts everywhere only when it looks random), and ones the child makes up (in no
// config at all: see the fixture).
const GH_PAT = `ghp_${'P1aNt3dT0k3n'.repeat(3)}`;
const DB_PASSWORD = 's3cretpw';
const INNOCENT_ID = 'Zq81Lm0Xv4Rt7Yp2';
const ARG_PASSWORD = 'Pw9xK2mQ7vL4nR8t';
const ARG_TOKEN = 'tee-token-9';
const ARG_KEY = 'apikey-value-1';
// base64 of "leak:pass": no digit or symbol to tell it from a word.
const BASIC_CREDENTIAL = 'bGVhazpwYXNz';
// A password with an `@`: the part after it is what used to leak.
const MYSQL_PASSWORD_TAIL = 'ssw0rd';
const FRESH_TOKEN = ['ghp', 'Fr35hT0k3nFr35hT0k3nFr35hT0k3nFr35hT'].join('_');
const FRESH_MCPB = ['mcpb', 'Fr35hBr1dgeT0k3n-Fr35hBr1dgeT0k3n_Fr35hBr1d'].join('_');
const FRESH_BASIC = 'ZXZlOnJleHFx';
const FRESH_URL_PASSWORD_TAIL = 'pw@db2';
const SECRETS = [
  GH_PAT,
  DB_PASSWORD,
  INNOCENT_ID,
  ARG_PASSWORD,
  ARG_TOKEN,
  ARG_KEY,
  BASIC_CREDENTIAL,
  MYSQL_PASSWORD_TAIL,
  FRESH_TOKEN,
  FRESH_MCPB,
  FRESH_BASIC,
  FRESH_URL_PASSWORD_TAIL,
];

const leaky: StdioUpstreamConfig = {
  kind: 'stdio',
  name: 'leaky',
  command: process.execPath,
  args: [
    LEAKY_SERVER,
    '-p',
    ARG_PASSWORD,
    '--token',
    ARG_TOKEN,
    '--api-key',
    ARG_KEY,
    // Not secrets: they must stay readable in what the child prints.
    '--max-tokens',
    '4096',
    '-t',
    'stdio',
  ],
  env: {
    GH_PAT,
    DATABASE_URL: `postgres://u:${DB_PASSWORD}@db.local/app`,
    MYSQL_URL: `mysql://user:p@${MYSQL_PASSWORD_TAIL}@db.local/app`,
    INNOCENT_ID,
    BASIC: `Basic ${BASIC_CREDENTIAL}`,
  },
  callTimeoutMs: 5000,
};

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function readLog(dir: string): string {
  return readdirSync(dir)
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('');
}

async function status(daemon: Daemon): Promise<{ text: string; json: Status }> {
  const base = new URL(daemon.url).origin;
  const response = await fetch(`${base}/status`, { headers: authHeaders(daemon) });
  const text = await response.text();
  return { text, json: JSON.parse(text) as Status };
}

describe('secrets of an upstream', () => {
  it('reach neither the log file nor /status: env values, flag values, and what the child writes to stderr', async () => {
    const { dir, cleanup } = makeTempDir();
    cleanups.push(cleanup);
    const logDir = join(dir, 'logs');
    // The daemon's real logger (pino-roll in a worker thread), writing a real file.
    const logger: Logger = createLogger({
      logPath: join(logDir, 'mcp-bridge.log'),
      level: 'debug',
      pretty: false,
    });
    const daemon = await startTestDaemon(dir, [leaky], { logger });
    let closed = false;
    cleanups.push(async () => {
      if (!closed) await daemon.close();
    });

    // The child exits after its stderr lines: the error quotes the last one.
    const seen = await waitFor(async () => {
      const s = await status(daemon);
      const message = s.json.upstreams[0]?.lastError?.message ?? '';
      return message.includes('last stderr line') ? s : undefined;
    }, 'the upstream to fail with its last stderr line');
    const lastError = seen.json.upstreams[0]!.lastError!;
    expect(lastError.code).toBe('UPSTREAM_CLOSED');
    // The line is there, with its secrets replaced (not dropped).
    expect(lastError.message).toContain('fatal: login with [redacted] and password [redacted]');
    expect(lastError.message).toContain('postgres://[redacted]@db.local/app');
    expect(lastError.message).toContain('mysql://[redacted]@db.local/app');
    // The args that are no secrets stay readable.
    expect(lastError.message).toContain(
      'argv -p [redacted] --token [redacted] --api-key [redacted] --max-tokens 4096 -t stdio;',
    );
    for (const secret of SECRETS) expect(seen.text, secret).not.toContain(secret);

    await daemon.close();
    closed = true;
    await waitFor(() => readLog(logDir).includes('mcp-bridge stopped'), 'the log to be written');
    const log = readLog(logDir);
    // The lines that used to carry the secrets are in the log.
    expect(log).toContain('starting upstream');
    expect(log).toContain('"stream":"stderr"');
    expect(log).toContain('GH_PAT is [redacted]');
    expect(log).toContain('sending Authorization: [redacted]');
    expect(log).toContain(
      'bridge token [redacted] sent \\"Basic [redacted]\\" to mysql://[redacted]@db2.local/x',
    );
    expect(log).toContain('"GH_PAT":"[redacted]"');
    for (const secret of SECRETS) expect(log, secret).not.toContain(secret);
  });
});
