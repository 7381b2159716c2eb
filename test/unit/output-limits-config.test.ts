import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULTS } from '../../src/config/schema.js';
import { makeTempDir } from '../helpers/bridge.js';

describe('maxStdoutLineBytes / maxStderrLineBytes', () => {
  const cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  function load(config: unknown) {
    const temp = makeTempDir();
    cleanups.push(temp.cleanup);
    writeFileSync(join(temp.dir, 'config.json'), JSON.stringify(config));
    return loadConfig({ env: { MCP_BRIDGE_CONFIG_DIR: temp.dir } });
  }

  it('default to 64 MiB and 64 KiB, and take the configured values', () => {
    expect(load({})).toMatchObject({ maxStdoutLineBytes: 64 * 1024 * 1024, maxStderrLineBytes: 64 * 1024 });
    expect(DEFAULTS).toMatchObject({ maxStdoutLineBytes: 67_108_864, maxStderrLineBytes: 65_536 });
    expect(load({ maxStdoutLineBytes: 1_000_000, maxStderrLineBytes: 4096 })).toMatchObject({
      maxStdoutLineBytes: 1_000_000,
      maxStderrLineBytes: 4096,
    });
  });

  it('refuse values that are not whole byte counts in range, naming the key', () => {
    expect(() => load({ maxStdoutLineBytes: 10 })).toThrow(/maxStdoutLineBytes/);
    expect(() => load({ maxStdoutLineBytes: 1024 ** 3 })).toThrow(/maxStdoutLineBytes/);
    expect(() => load({ maxStderrLineBytes: 1.5 })).toThrow(/maxStderrLineBytes/);
  });
});
