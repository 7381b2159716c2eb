import { describe, expect, it } from 'vitest';
import { EXPOSED_NAME, exposedToolName, shortHash } from '../../src/catalog/naming.js';

describe('exposedToolName', () => {
  it('joins upstream and tool with a double underscore when the result is legal', () => {
    expect(exposedToolName('github', 'create_issue')).toBe('github__create_issue');
    expect(exposedToolName('a', 'b-c')).toBe('a__b-c');
  });

  it('replaces illegal characters and appends a hash of the original pair', () => {
    const name = exposedToolName('fs', 'read.file');
    expect(name).toBe(`fs__read_file_${shortHash('fs', 'read.file')}`);
    expect(name).toMatch(EXPOSED_NAME);
  });

  it('keeps two tools apart when they differ only in an illegal character', () => {
    expect(exposedToolName('fs', 'a.b')).not.toBe(exposedToolName('fs', 'a/b'));
    expect(exposedToolName('fs', 'a.b')).not.toBe(exposedToolName('fs', 'a_b'));
  });

  it('cuts names over 64 characters deterministically', () => {
    const tool = 'x'.repeat(100);
    const name = exposedToolName('upstream', tool);
    expect(name).toHaveLength(64);
    expect(name).toMatch(EXPOSED_NAME);
    expect(exposedToolName('upstream', tool)).toBe(name);
    expect(exposedToolName('upstream', `${tool}y`)).not.toBe(name);
  });

  it('produces a legal name for unicode and empty tool names', () => {
    for (const tool of ['récupérer', '日本語', '', ' ', 'emoji🙂'])
      expect(exposedToolName('u', tool)).toMatch(EXPOSED_NAME);
  });
});
