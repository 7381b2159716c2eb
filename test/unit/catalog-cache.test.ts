import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSilentLogger } from '../../src/log.js';
import { CatalogCache } from '../../src/upstream/catalog-cache.js';
import { makeTempDir } from '../helpers/bridge.js';

describe('CatalogCache', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });
  function dir() {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    return temp.dir;
  }
  const tool = (name: string) => ({ name, inputSchema: { type: 'object' as const }, extra: { kept: true } });

  it('round-trips tool lists, unknown fields included, through an atomic 0600 file', async () => {
    const configDir = dir();
    const cache = new CatalogCache({ configDir, logger: createSilentLogger() });
    await cache.load();
    await cache.save('a', [tool('one')]);
    await cache.save('b', [tool('two')]);
    expect(statSync(cache.file).mode & 0o777).toBe(0o600);
    expect(readdirSync(configDir)).toEqual(['tools-cache.json']);

    const again = new CatalogCache({ configDir, logger: createSilentLogger() });
    await again.load();
    expect(again.get('a')).toEqual([tool('one')]);
    expect(again.get('b')).toEqual([tool('two')]);
    expect(again.get('c')).toBeUndefined();
  });

  it('moves a corrupt file aside instead of trusting or silently deleting it', async () => {
    const configDir = dir();
    writeFileSync(join(configDir, 'tools-cache.json'), '{"version": 1, "upstreams": {"a": {"tools": "oops"');
    const cache = new CatalogCache({ configDir, logger: createSilentLogger() });
    await cache.load();
    expect(cache.get('a')).toBeUndefined();
    const aside = readdirSync(configDir).find((f) => f.startsWith('tools-cache.json.corrupt-'));
    expect(aside).toBeDefined();
    expect(readFileSync(join(configDir, aside!), 'utf8')).toContain('"oops"');
    await cache.save('a', [tool('fresh')]);
    expect(existsSync(join(configDir, 'tools-cache.json'))).toBe(true);
  });

  it('serializes concurrent saves so the last one wins', async () => {
    const configDir = dir();
    const cache = new CatalogCache({ configDir, logger: createSilentLogger() });
    await Promise.all(Array.from({ length: 20 }, (_, i) => cache.save('a', [tool(`t${i}`)])));
    const data = JSON.parse(readFileSync(cache.file, 'utf8'));
    expect(data.upstreams.a.tools[0].name).toBe('t19');
  });
});
