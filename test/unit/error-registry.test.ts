import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorEntry } from '../../src/errors.js';

const ROOT = join(import.meta.dirname, '..', '..');

/** The rows of docs/errors.md's table: code → the HTTP, JSON-RPC and exit columns as written. */
function documented(): Map<string, { http: string; jsonRpc: string; exit: string }> {
  const rows = new Map<string, { http: string; jsonRpc: string; exit: string }>();
  for (const line of readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8').split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    const code = /^`([A-Z_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (code === undefined) continue;
    expect(rows.has(code), `${code} is documented twice`).toBe(false);
    rows.set(code, { http: cells[2] ?? '', jsonRpc: cells[3] ?? '', exit: cells[4] ?? '' });
  }
  return rows;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('the error registry and docs/errors.md', () => {
  const docs = documented();

  it('documents every code of src/errors.ts with its HTTP status, JSON-RPC code and exit code', () => {
    for (const [code, entry] of Object.entries(ERROR_CODES) as [string, ErrorEntry][]) {
      expect(docs.get(code), `${code} is missing from docs/errors.md`).toEqual({
        http: entry.http === undefined ? '—' : String(entry.http),
        jsonRpc: String(entry.jsonRpc),
        exit: String(entry.exit),
      });
    }
  });

  it('documents no code that src/errors.ts does not have', () => {
    const unknown = [...docs.keys()].filter((code) => !(code in ERROR_CODES));
    expect(unknown).toEqual([]);
  });

  it('leaves no JSON-RPC error code literal outside the registry in src/', () => {
    // Wire errors take their code from ERROR_CODES; a bare -32xxx elsewhere bypasses it.
    const offenders = sourceFiles(join(ROOT, 'src'))
      .filter((path) => !path.endsWith('errors.ts'))
      .flatMap((path) =>
        readFileSync(path, 'utf8')
          .split('\n')
          .map((line, index) => ({ line, where: `${path.slice(ROOT.length + 1)}:${index + 1}` }))
          .filter(
            ({ line }) =>
              /(?<![\w.])-32\d{3}\b/.test(line) &&
              !line.trim().startsWith('*') &&
              !line.trim().startsWith('//'),
          ),
      )
      .map(({ where, line }) => `${where}: ${line.trim()}`);
    expect(offenders).toEqual([]);
  });
});
