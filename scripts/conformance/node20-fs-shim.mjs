// Lets @modelcontextprotocol/conformance start on Node 20.
//
// The suite's bundle does `import { globSync } from 'fs'`, a named export that only exists on
// Node >= 22, so on Node 20 module linking fails before anything runs. Preload this file with
//   node --import ./scripts/conformance/node20-fs-shim.mjs <conformance>/dist/index.js ...
// It registers module hooks that hand the suite a synthetic 'fs' module: everything from the
// real node:fs plus a small globSync. (The suite only calls globSync from `tier-check`; client
// scenarios never reach it, but the import must still resolve.)
//
// Node 20.6+ is required for module.register(). The hooks run on a separate thread, so the file
// is loaded twice: once via --import (main thread, registers) and once as the hooks module.

import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

const SHIM_URL = 'mcp-bridge-shim:fs';
const SUITE_MARKER = '/@modelcontextprotocol/conformance/';

if (isMainThread) {
  register(import.meta.url);
}

export async function resolve(specifier, context, nextResolve) {
  if (specifier === SHIM_URL) return { url: SHIM_URL, shortCircuit: true };
  const parent = context.parentURL ?? '';
  if (
    (specifier === 'fs' || specifier === 'node:fs') &&
    parent.replaceAll('\\', '/').includes(SUITE_MARKER)
  ) {
    return { url: SHIM_URL, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

// Source of the synthetic module. globSync supports `*`, `?` and `**` path segments relative to
// options.cwd, which is all the suite uses (`**/checks.json`).
const SHIM_SOURCE = `
import fs from 'node:fs';
import path from 'node:path';
export * from 'node:fs';
export default fs;
function toRegExp(pattern) {
  let re = '';
  const p = pattern.replaceAll('\\\\', '/');
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*' && p[i + 1] === '*') {
      if (p[i + 2] === '/') { re += '(?:.*/)?'; i += 2; } else { re += '.*'; i += 1; }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^$()|[\\]{}\\\\]/g, '\\\\$&');
  }
  return new RegExp('^' + re + '$');
}
export function globSync(pattern, options = {}) {
  if (typeof fs.globSync === 'function') return fs.globSync(pattern, options);
  const cwd = options.cwd ? String(options.cwd) : process.cwd();
  const patterns = Array.isArray(pattern) ? pattern : [pattern];
  const regexps = patterns.map(toRegExp);
  let entries;
  try { entries = fs.readdirSync(cwd, { recursive: true }); } catch { return []; }
  return entries
    .map((e) => String(e))
    .filter((e) => regexps.some((r) => r.test(e.split(path.sep).join('/'))));
}
`;

export async function load(url, context, nextLoad) {
  if (url === SHIM_URL) return { format: 'module', source: SHIM_SOURCE, shortCircuit: true };
  return nextLoad(url, context);
}
