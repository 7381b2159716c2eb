import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ENV_OVERRIDES, type OverriddenKey } from '../../src/config/env-overrides.js';
import { loadConfig } from '../../src/config/load.js';
import {
  ConfigFileSchema,
  HttpServerSchema,
  OAuthSchema,
  StdioServerSchema,
} from '../../src/config/schema.js';
import { type BridgeError, isBridgeError } from '../../src/errors.js';
import { makeTempDir } from '../helpers/bridge.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function setup(config?: unknown, env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const temp = makeTempDir();
  cleanups.push(temp.cleanup);
  mkdirSync(temp.dir, { recursive: true });
  if (config !== undefined) writeFileSync(join(temp.dir, 'config.json'), JSON.stringify(config));
  return { MCP_BRIDGE_CONFIG_DIR: temp.dir, ...env };
}

function loadError(env: NodeJS.ProcessEnv): BridgeError | undefined {
  try {
    loadConfig({ env });
    return undefined;
  } catch (error) {
    if (isBridgeError(error)) return error;
    throw error;
  }
}

describe('unknown keys', () => {
  const expected = (shape: object) => `expected one of: ${Object.keys(shape).join(', ')}`;

  // A key added to a schema but missing from the list in its message fails here.
  it('lists every key of the schema in the message, top level and per upstream', () => {
    const error = loadError(
      setup({
        bogus: 1,
        mcpServers: {
          local: { command: 'x', bogus: 1 },
          remote: { url: 'https://example.com/mcp', bogus: 1 },
          login: { url: 'https://example.com/mcp', oauth: { bogus: 1, other: 2 } },
        },
      }),
    );
    expect(error?.code).toBe('CONFIG_INVALID');
    const message = error?.message ?? '';
    const at = (where: string, line: string) => expect(message).toContain(`${line}\n  → at ${where}`);
    expect(message).toContain(`unknown key "bogus"; ${expected(ConfigFileSchema.shape)}`);
    at('mcpServers.local', `unknown key "bogus"; ${expected(StdioServerSchema.shape)}`);
    at('mcpServers.remote', `unknown key "bogus"; ${expected(HttpServerSchema.shape)}`);
    at('mcpServers.login.oauth', `unknown keys "bogus", "other"; ${expected(OAuthSchema.shape)}`);
  });
});

describe('MCP_BRIDGE_* overrides', () => {
  it('keep their messages: the variable, what it must be, and the value', () => {
    const message = (env: Record<string, string>) => loadError(setup(undefined, env))?.message;
    expect(message({ MCP_BRIDGE_PORT: 'abc' })).toBe(
      'MCP_BRIDGE_PORT must be a port number 0-65535, got "abc"',
    );
    expect(message({ MCP_BRIDGE_PORT: '70000' })).toBe(
      'MCP_BRIDGE_PORT must be a port number 0-65535, got "70000"',
    );
    expect(message({ MCP_BRIDGE_PORT: '6000' })).toMatch(
      /^MCP_BRIDGE_PORT: port 6000 is on fetch\(\)'s list of blocked ports/,
    );
    expect(message({ MCP_BRIDGE_MCP_PATH: 'mcp' })).toBe(
      'MCP_BRIDGE_MCP_PATH must start with "/" and use only letters, digits, "/", ".", "_", "~" or "-", got "mcp"',
    );
    expect(message({ MCP_BRIDGE_AUTH: 'open' })).toBe(
      'MCP_BRIDGE_AUTH must be "token" or "none", got "open"',
    );
    expect(message({ MCP_BRIDGE_LOG_LEVEL: 'loud' })).toBe(
      'MCP_BRIDGE_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    );
    expect(message({ MCP_BRIDGE_OVERSEER_URL: 'ftp://x' })).toBe(
      'MCP_BRIDGE_OVERSEER_URL must be an http:// or https:// URL, got "ftp://x"',
    );
    expect(loadError(setup(undefined, { MCP_BRIDGE_AUTH: 'open' }))?.code).toBe('CONFIG_INVALID');
  });

  // The variable and the key it overrides accept exactly the same values.
  it('accept what the config key accepts, and refuse what it refuses', () => {
    const samples: Record<OverriddenKey, string[]> = {
      port: ['0', '8080', '65535', '-1', '65536', '1.5', 'abc', '10080'],
      host: ['127.0.0.1', '::1', 'localhost'],
      mcpPath: ['/', '/mcp', '/a/b.c~_-', 'mcp', '/mcp/*', '/:x'],
      auth: ['token', 'none', 'open', 'TOKEN'],
      logLevel: ['info', 'silent', 'trace', 'verbose', 'INFO'],
    };
    expect(Object.keys(samples).sort()).toEqual(Object.keys(ENV_OVERRIDES).sort());
    for (const [key, values] of Object.entries(samples) as [OverriddenKey, string[]][]) {
      const { variable } = ENV_OVERRIDES[key];
      expect(Object.keys(ConfigFileSchema.shape)).toContain(key);
      for (const text of values) {
        const fileValue = key === 'port' ? Number(text) : text;
        const fromFile = loadError(setup({ [key]: fileValue }));
        const fromEnv = loadError(setup(undefined, { [variable]: text }));
        expect({ key, text, refused: fromEnv !== undefined }).toEqual({
          key,
          text,
          refused: fromFile !== undefined,
        });
        if (fromEnv) {
          expect(fromEnv.code).toBe('CONFIG_INVALID');
          expect(fromEnv.message.startsWith(variable)).toBe(true);
        } else {
          const env = loadConfig({ env: setup(undefined, { [variable]: text }) });
          expect(env[key]).toEqual(loadConfig({ env: setup({ [key]: fileValue }) })[key]);
        }
      }
    }
  });

  it('win over the file, and are ignored when empty', () => {
    const file = { port: 9000, host: '127.0.0.2', mcpPath: '/file', auth: 'none', logLevel: 'warn' };
    const set = { MCP_BRIDGE_PORT: '9100', MCP_BRIDGE_HOST: '::1', MCP_BRIDGE_MCP_PATH: '/env' };
    const more = { MCP_BRIDGE_AUTH: 'token', MCP_BRIDGE_LOG_LEVEL: 'debug' };
    expect(loadConfig({ env: setup(file, { ...set, ...more }) })).toMatchObject({
      port: 9100,
      host: '::1',
      mcpPath: '/env',
      auth: 'token',
      logLevel: 'debug',
    });
    const empty = Object.fromEntries(Object.values(ENV_OVERRIDES).map((o) => [o.variable, '']));
    expect(loadConfig({ env: setup(file, empty) })).toMatchObject(file);
  });
});

describe('the stdio shim', () => {
  // It reads the shared defaults; through schema.ts it would load zod (and start slower).
  it('imports no zod, SDK or express, statically', () => {
    const root = resolve(import.meta.dirname, '../..');
    const seen = new Set<string>();
    const packages = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(file, 'utf8');
      for (const [, typeOnly, specifier] of source.matchAll(
        /^(?:import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?'([^']+)'/gm,
      )) {
        if (typeOnly || !specifier) continue;
        if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
        else if (!specifier.startsWith('node:')) packages.add(specifier);
      }
    };
    visit(join(root, 'src/cli/stdio.ts'));
    expect(seen).toContain(join(root, 'src/config/defaults.ts'));
    expect([...packages].filter((p) => /^(zod|express|@modelcontextprotocol\/)/.test(p))).toEqual([]);
  });
});
