import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { redactArgs } from '../../src/config/secrets.js';
import { isBridgeError } from '../../src/errors.js';
import { makeTempDir } from '../helpers/bridge.js';

describe('loadConfig', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  function setup(config?: unknown, env: Record<string, string> = {}) {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    mkdirSync(temp.dir, { recursive: true });
    if (config !== undefined) {
      writeFileSync(
        join(temp.dir, 'config.json'),
        typeof config === 'string' ? config : JSON.stringify(config),
      );
    }
    return { dir: temp.dir, env: { MCP_BRIDGE_CONFIG_DIR: temp.dir, ...env } };
  }

  function loadError(env: NodeJS.ProcessEnv, configPath?: string) {
    try {
      loadConfig({ env, configPath });
    } catch (error) {
      if (isBridgeError(error)) return error;
      throw error;
    }
    throw new Error('expected a config error');
  }

  it('uses defaults when there is no config file', () => {
    const { dir, env } = setup();
    const config = loadConfig({ env });
    expect(config).toMatchObject({
      fileExists: false,
      file: join(dir, 'config.json'),
      port: 8769,
      host: '127.0.0.1',
      mcpPath: '/mcp',
      upstreams: [],
    });
  });

  it('reads Claude Desktop mcpServers entries and expands ${env:X} in args, env and cwd', () => {
    const { env } = setup(
      {
        mcpServers: {
          fs: {
            command: 'npx',
            args: ['-y', '${env:PKG}'],
            env: { TOKEN: 'Bearer ${env:SECRET}' },
            cwd: '${env:HOME_DIR}',
          },
          off: { command: 'x', disabled: true },
          remote: { url: 'https://example.com/mcp' },
        },
      },
      { PKG: 'server-fs', SECRET: 's3', HOME_DIR: '/home/me' },
    );
    const config = loadConfig({ env });
    expect(config.upstreams).toEqual([
      {
        kind: 'stdio',
        name: 'fs',
        command: 'npx',
        args: ['-y', 'server-fs'],
        env: { TOKEN: 'Bearer s3' },
        cwd: '/home/me',
        callTimeoutMs: 120_000,
        prefix: true,
        protocol: 'legacy',
      },
      {
        kind: 'http',
        name: 'remote',
        url: 'https://example.com/mcp',
        headers: {},
        transport: 'streamable-http',
        oauth: {
          clientId: undefined,
          clientSecret: undefined,
          scopes: undefined,
          redirectUri: undefined,
          clientMetadataUrl: undefined,
        },
        callTimeoutMs: 120_000,
        prefix: true,
        protocol: 'auto',
      },
    ]);
  });

  it('lets the original environment variables override the file', () => {
    const { env } = setup(
      { port: 9000, host: '127.0.0.2', mcpServers: { sentinel: { command: 'old' } } },
      {
        MCP_BRIDGE_PORT: '9100',
        MCP_BRIDGE_HOST: '::1',
        MCP_BRIDGE_MCP_PATH: '/bridge',
        MCP_BRIDGE_LOG_PATH: '/tmp/x.log',
        MCP_BRIDGE_SENTINEL_COMMAND: 'node',
        MCP_BRIDGE_SENTINEL_ARGS: 'server.js  --flag',
        MCP_BRIDGE_OVERSEER_URL: 'https://overseer.example/mcp',
      },
    );
    const config = loadConfig({ env });
    expect(config).toMatchObject({ port: 9100, host: '::1', mcpPath: '/bridge', logPath: '/tmp/x.log' });
    expect(config.upstreams).toEqual([
      expect.objectContaining({ name: 'sentinel', command: 'node', args: ['server.js', '--flag'] }),
      expect.objectContaining({ name: 'overseer', kind: 'http', url: 'https://overseer.example/mcp' }),
    ]);
  });

  it('rejects bad environment values with a message naming the variable', () => {
    expect(loadError(setup(undefined, { MCP_BRIDGE_PORT: 'abc' }).env).message).toContain(
      'MCP_BRIDGE_PORT must be',
    );
    expect(loadError(setup(undefined, { MCP_BRIDGE_MCP_PATH: 'mcp' }).env).message).toContain(
      'MCP_BRIDGE_MCP_PATH must start',
    );
  });

  it('refuses a port that fetch() will not connect to, in the file or the environment', () => {
    expect(loadError(setup({ port: 6000 }).env).message).toMatch(
      /port 6000 is on fetch\(\)'s list of blocked ports.*\n\s+→ at port/,
    );
    expect(loadError(setup(undefined, { MCP_BRIDGE_PORT: '10080' }).env).message).toContain(
      'MCP_BRIDGE_PORT: port 10080 is on fetch()',
    );
    expect(() => loadConfig({ env: setup({ port: 6001 }).env })).not.toThrow();
  });

  it('refuses an oauth.redirectUri that could never bring the browser back to the daemon', () => {
    const withRedirect = (redirectUri: string) =>
      setup({ mcpServers: { remote: { url: 'https://example.com/mcp', oauth: { redirectUri } } } }).env;
    expect(loadError(withRedirect('http://127.0.0.1:9999/oauth/callback')).message).toMatch(
      /oauth.redirectUri must be http:\/\/127.0.0.1:8769\/oauth\/callback.*\n\s+→ at mcpServers.remote.oauth.redirectUri/,
    );
    expect(loadError(withRedirect('http://localhost:8769/callback')).message).toContain(
      'oauth.redirectUri must be',
    );
    expect(loadError(withRedirect('https://tunnel.example.com/cb')).message).toContain(
      'a URL ending in /oauth/callback',
    );
    for (const ok of [
      'http://localhost:8769/oauth/callback',
      'https://tunnel.example.com/bridge/oauth/callback',
    ]) {
      expect(() => loadConfig({ env: withRedirect(ok) })).not.toThrow();
    }
  });

  it('names the file, the key and the expectation for invalid entries', () => {
    const { dir, env } = setup({
      mcpServers: { a: { command: 'x', cwd: 5 }, b: { url: 'ftp://x' } },
      logLevel: 'loud',
    });
    const error = loadError(env);
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(join(dir, 'config.json'));
    expect(error.message).toMatch(/expected string, received number\n\s+→ at mcpServers\.a\.cwd/);
    expect(error.message).toMatch(/url must be an http:\/\/ or https:\/\/ URL\n\s+→ at mcpServers\.b\.url/);
    expect(error.message).toMatch(/→ at logLevel/);
  });

  it('rejects a bad log level, a route pattern as mcpPath, and a file that is not an object', () => {
    expect(loadError(setup(undefined, { MCP_BRIDGE_LOG_LEVEL: 'verbose' }).env).message).toContain(
      'MCP_BRIDGE_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"',
    );
    expect(loadError(setup(undefined, { MCP_BRIDGE_MCP_PATH: '/mcp/*' }).env).message).toContain(
      'MCP_BRIDGE_MCP_PATH',
    );
    expect(loadError(setup({ mcpPath: '/:x' }).env).message).toMatch(/mcpPath must start with/);
    expect(loadError(setup('null').env).message).toContain('must hold a JSON object');
    expect(loadError(setup('[]').env).message).toContain('not an array');
  });

  it('treats an empty file as an empty config and invalid JSON as an error', () => {
    expect(loadConfig({ env: setup('').env }).upstreams).toEqual([]);
    expect(loadError(setup('{ nope').env).message).toMatch(/is not valid JSON/);
  });

  it('requires a file named with --config or MCP_BRIDGE_CONFIG to exist', () => {
    const { dir, env } = setup();
    expect(loadError(env, join(dir, 'missing.json')).code).toBe('CONFIG_NOT_FOUND');
    expect(loadError({ ...env, MCP_BRIDGE_CONFIG: join(dir, 'missing.json') }).code).toBe('CONFIG_NOT_FOUND');
  });
});

describe('redactArgs', () => {
  it('hides the values of secret-looking flags and keeps other arguments', () => {
    expect(
      redactArgs(['-y', 'server', '--api-key=abc', '--token', 'xyz', '--port', '80', '--auth-header']),
    ).toEqual([
      '-y',
      'server',
      '--api-key=[redacted]',
      '--token',
      '[redacted]',
      '--port',
      '80',
      '--auth-header',
    ]);
  });
});
