import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TokenStore } from '../../src/auth/token-store.js';
import { loadConfig } from '../../src/config/load.js';
import { isBridgeError } from '../../src/errors.js';
import { createSilentLogger } from '../../src/log.js';
import { writeFileAtomic } from '../../src/store/write-file-atomic.js';
import { CatalogCache } from '../../src/upstream/catalog-cache.js';
import { makeTempDir, startTestDaemon } from '../helpers/bridge.js';

// The sandbox runs as root, which can chown; elsewhere the foreign-owner cases cannot be set up.
const canChown = process.getuid?.() === 0;
const NOBODY = 65534;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});
function tempDir(): string {
  const temp = makeTempDir();
  cleanups.push(temp.cleanup);
  return temp.dir;
}

const mode = (path: string) => statSync(path).mode & 0o777;
const write = (store: TokenStore) => store.update(async (state) => ({ write: true, value: state }));

/** A config dir that is a symlink to `target`. */
function linkedConfigDir(target: string): string {
  const link = join(tempDir(), 'mcp-bridge');
  symlinkSync(target, link);
  return link;
}

function foreignDir(): string {
  const target = join(tempDir(), 'someone-elses');
  mkdirSync(target, { mode: 0o777 });
  chmodSync(target, 0o777);
  chownSync(target, NOBODY, NOBODY);
  return target;
}

describe.runIf(canChown)('a config dir that is a symlink to another user’s directory', () => {
  it('is refused by loadConfig with CONFIG_DIR_UNSAFE naming the path', () => {
    const link = linkedConfigDir(foreignDir());
    let error: unknown;
    try {
      loadConfig({ env: { MCP_BRIDGE_CONFIG_DIR: link } });
    } catch (e) {
      error = e;
    }
    expect(isBridgeError(error, 'CONFIG_DIR_UNSAFE')).toBe(true);
    expect((error as Error).message).toContain(link);
    expect((error as Error).message).toContain('another user');
  });

  it('is refused by the token store and by atomic writes, and the target is neither written nor chmodded', async () => {
    const target = foreignDir();
    const link = linkedConfigDir(target);
    await expect(write(new TokenStore(link, createSilentLogger()))).rejects.toMatchObject({
      code: 'CONFIG_DIR_UNSAFE',
    });
    await expect(writeFileAtomic(join(link, 'config.example.json'), '{}')).rejects.toMatchObject({
      code: 'CONFIG_DIR_UNSAFE',
    });
    expect(readdirSync(target)).toEqual([]);
    expect(mode(target)).toBe(0o777);
  });

  it('is refused by the daemon itself, before it reads the cache or the token file there', async () => {
    const target = foreignDir();
    writeFileSync(join(target, 'tools-cache.json'), '{"version": 1, "upstreams": {}}');
    await expect(startTestDaemon(linkedConfigDir(target), [])).rejects.toMatchObject({
      code: 'CONFIG_DIR_UNSAFE',
    });
  });
});

describe('a config dir that is a symlink to a directory of our own', () => {
  it('is used, and its target keeps its mode (nothing is chmodded through the link)', async () => {
    const target = join(tempDir(), 'mine');
    mkdirSync(target);
    chmodSync(target, 0o755);
    const link = linkedConfigDir(target);

    expect(() => loadConfig({ env: { MCP_BRIDGE_CONFIG_DIR: link } })).not.toThrow();
    const store = new TokenStore(link, createSilentLogger());
    await write(store);
    const cache = new CatalogCache({ configDir: link, logger: createSilentLogger() });
    await cache.save('a', [{ name: 't', inputSchema: { type: 'object' } }]);

    expect(readdirSync(target).sort()).toEqual(['oauth-state.json', 'tools-cache.json']);
    expect(mode(join(target, 'oauth-state.json'))).toBe(0o600);
    expect(mode(target)).toBe(0o755);
  });

  it('a real config dir is still tightened to 0700 by the token store', async () => {
    const dir = join(tempDir(), 'real');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    await write(new TokenStore(dir, createSilentLogger()));
    expect(mode(dir)).toBe(0o700);
  });

  it('a missing config dir is created 0700', async () => {
    const dir = join(tempDir(), 'new', 'mcp-bridge');
    await write(new TokenStore(dir, createSilentLogger()));
    expect(mode(dir)).toBe(0o700);
  });
});

describe('config file permissions', () => {
  function configIn(dir: string, fileMode: number): string {
    const file = join(dir, 'config.json');
    writeFileSync(file, '{"mcpServers": {}}\n');
    chmodSync(file, fileMode);
    return file;
  }

  it('warns about a config.json that group or others can write, naming the file and the fix', () => {
    const dir = tempDir();
    const file = configIn(dir, 0o666);
    const config = loadConfig({ env: { MCP_BRIDGE_CONFIG_DIR: dir } });
    expect(config.warnings).toHaveLength(1);
    expect(config.warnings![0]).toContain(file);
    expect(config.warnings![0]).toContain('every user of this machine');
    expect(config.warnings![0]).toContain(`chmod go-w ${file}`);

    chmodSync(file, 0o620);
    expect(loadConfig({ env: { MCP_BRIDGE_CONFIG_DIR: dir } }).warnings![0]).toContain('its group');
  });

  it('warns about a directory others can write to (they could replace the file), unless it is sticky', () => {
    const dir = tempDir();
    const file = configIn(dir, 0o600);
    chmodSync(dir, 0o777);
    const warnings = loadConfig({ configPath: file, env: { MCP_BRIDGE_CONFIG_DIR: dir } }).warnings!;
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`chmod go-w ${dir}`);
    chmodSync(dir, 0o1777);
    expect(loadConfig({ configPath: file, env: { MCP_BRIDGE_CONFIG_DIR: dir } }).warnings).toEqual([]);
  });

  it('says nothing about a private config.json, or when there is none', () => {
    const dir = tempDir();
    expect(loadConfig({ env: { MCP_BRIDGE_CONFIG_DIR: dir } }).warnings).toEqual([]);
    configIn(dir, 0o600);
    expect(loadConfig({ env: { MCP_BRIDGE_CONFIG_DIR: dir } }).warnings).toEqual([]);
  });

  it.runIf(canChown)('warns about a config.json that belongs to another user', () => {
    const dir = tempDir();
    const file = configIn(dir, 0o644);
    chownSync(file, NOBODY, NOBODY);
    const warnings = loadConfig({ env: { MCP_BRIDGE_CONFIG_DIR: dir } }).warnings!;
    expect(warnings.some((w) => w.includes('belongs to another user'))).toBe(true);
  });
});

describe('files read with errors never quote their contents', () => {
  const SECRET = `ghp_${'C0nf1gS3cr3t'.repeat(3)}`;

  it('config.json that is not JSON: the error says where, not what', () => {
    const dir = tempDir();
    for (const text of [
      `{"mcpServers": {"gh": {"command": "x", "env": {"T": ${SECRET}}}}}`,
      `{"mcpServers": {"gh": {"command": "x", "env": {"T": "${SECRET}"}} "port": 1}}`,
      `{"mcpServers": {"gh": {"command": "x", "env": {"T": "${SECRET}`,
    ]) {
      writeFileSync(join(dir, 'config.json'), text);
      let message = '';
      try {
        loadConfig({ env: { MCP_BRIDGE_CONFIG_DIR: dir } });
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(/is not valid JSON/);
      expect(message).not.toContain('ghp_');
      expect(message).not.toContain('C0nf1g');
    }
  });

  it('reports the line and column when V8 gives a position', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'config.json'), '{\n  "port": 1\n  "host": "x"\n}');
    expect(() => loadConfig({ env: { MCP_BRIDGE_CONFIG_DIR: dir } })).toThrow(/\(line 3, column 3\)/);
  });

  it('the tool cache and the token store warn without the bytes of a corrupt file', async () => {
    const lines: string[] = [];
    const { default: pino } = await import('pino');
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
    for (const text of [
      `{"version": 1, "upstreams": ${SECRET}`,
      `{"version": 1, "upstreams": {"a": "${SECRET}"}}`,
    ]) {
      const dir = tempDir();
      writeFileSync(join(dir, 'tools-cache.json'), text);
      await new CatalogCache({ configDir: dir, logger }).load();
      writeFileSync(join(dir, 'oauth-state.json'), text);
      const store = new TokenStore(dir, logger);
      await write(store);
      expect(store.problem).toBeDefined();
      expect(store.problem).not.toContain('C0nf1g');
      expect(existsSync(join(dir, 'oauth-state.json'))).toBe(true);
    }
    const joined = lines.join('\n');
    expect(joined).toContain('the tool cache is corrupt');
    expect(joined).toContain('the token file is corrupt');
    expect(joined).not.toContain('C0nf1g');
  });
});
