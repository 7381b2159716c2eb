import { chmodSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A PATH entry only the fake login shell adds, so a test can tell the captured PATH from its own. */
export const LOGIN_ONLY_DIR = '/opt/mcp-bridge-login-only/bin';

/**
 * A stand-in for the user's login shell: prints a banner (as rc files do), adds LOGIN_ONLY_DIR to
 * PATH, then runs the command it is given (`$SHELL -lic CMD` → $2) with the real /bin/sh.
 */
export function fakeLoginShell(dir: string, extraDirs: readonly string[] = []): string {
  const file = join(dir, 'fake-login-shell');
  const path = [LOGIN_ONLY_DIR, ...extraDirs].join(':');
  writeFileSync(
    file,
    `#!/bin/sh\necho 'Welcome to your shell'\nPATH="${path}:$PATH"\nexport PATH\nexec /bin/sh -c "$2"\n`,
  );
  chmodSync(file, 0o755);
  return file;
}

/** Every file under `dir`, relative, for "nothing was written" checks. */
export function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? listFiles(full, `${prefix}${name}/`) : [`${prefix}${name}`];
  });
}

type PlistValue = string | number | boolean | PlistValue[] | { [key: string]: PlistValue };

/**
 * A strict parser for the XML property list subset launchd reads (dict, array, string, integer,
 * true, false): throws on anything else, on unbalanced tags and on a dict key without a value.
 */
export function parsePlist(text: string): PlistValue {
  const body = text
    .replace(/^<\?xml[^>]*\?>\s*/, '')
    .replace(/<!DOCTYPE[^>]*>\s*/, '')
    .replace(/<!--[\s\S]*?-->/g, '');
  const tokens = [...body.matchAll(/<(\/?)([a-z]+)(\s[^>]*)?(\/?)>|([^<]+)/g)].filter(
    (m) => m[5] === undefined || m[5].trim() !== '',
  );
  let i = 0;
  const decode = (s: string) =>
    s
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'")
      .replace(/&amp;/g, '&');
  const expectClose = (tag: string) => {
    const t = tokens[i++];
    if (t?.[1] !== '/' || t[2] !== tag) throw new Error(`expected </${tag}> at token ${i}`);
  };
  const text_ = (tag: string): string => {
    const t = tokens[i];
    let value = '';
    if (t && t[5] !== undefined) {
      if (/[<&](?!(lt|gt|amp|quot|apos);)/.test(t[5])) throw new Error(`bad character data in <${tag}>`);
      value = decode(t[5]);
      i++;
    }
    expectClose(tag);
    return value;
  };
  const value = (): PlistValue => {
    const t = tokens[i++];
    if (!t || t[5] !== undefined || t[1] === '/') throw new Error(`expected a value at token ${i}`);
    const tag = t[2]!;
    const selfClosing = t[4] === '/';
    if (tag === 'true' || tag === 'false') {
      if (!selfClosing) expectClose(tag);
      return tag === 'true';
    }
    if (tag === 'string') return selfClosing ? '' : text_(tag);
    if (tag === 'integer') {
      const s = text_(tag);
      if (!/^-?\d+$/.test(s)) throw new Error(`bad integer ${s}`);
      return Number(s);
    }
    if (tag === 'array') {
      const items: PlistValue[] = [];
      while (tokens[i] && !(tokens[i]![1] === '/' && tokens[i]![2] === 'array')) items.push(value());
      expectClose('array');
      return items;
    }
    if (tag === 'dict') {
      const dict: Record<string, PlistValue> = {};
      while (tokens[i] && !(tokens[i]![1] === '/' && tokens[i]![2] === 'dict')) {
        const k = tokens[i++]!;
        if (k[2] !== 'key' || k[1] === '/') throw new Error(`expected <key> in dict at token ${i}`);
        const key = text_('key');
        if (key in dict) throw new Error(`duplicate key ${key}`);
        dict[key] = value();
      }
      expectClose('dict');
      return dict;
    }
    throw new Error(`unsupported plist element <${tag}>`);
  };
  const open = tokens[i++];
  if (open?.[2] !== 'plist' || !/version="1\.0"/.test(open[3] ?? ''))
    throw new Error('no <plist version="1.0">');
  const root = value();
  expectClose('plist');
  if (i !== tokens.length) throw new Error('content after </plist>');
  return root;
}
