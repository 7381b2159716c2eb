import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AdapterPayload } from 'oidc-provider';
import { z } from 'zod';
import { BridgeError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { tightenDir } from '../store/file-safety.js';
import { parseJsonText } from '../store/json-file.js';
import { moveAside } from '../store/move-aside.js';
import { writeFileAtomic } from '../store/write-file-atomic.js';

/** A file this large was not written by a bridge with the caps of oauth-store.ts: it is moved aside. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

const EntrySchema = z.object({
  payload: z.looseObject({}),
  /** Epoch ms; null: never (registrations). */
  expiresAt: z.number().nullable(),
});
export type Entry = { payload: AdapterPayload; expiresAt: number | null };

const FileSchema = z.looseObject({
  version: z.literal(1),
  /** By `<model>:<id>` (token ids hashed). */
  entries: z.record(z.string(), EntrySchema),
  /** Epoch ms a connector last sent a valid token, by client id. */
  lastUsed: z.record(z.string(), z.number()),
});

export interface StoreContents {
  readonly entries: Map<string, Entry>;
  /** Epoch ms a connector last sent a valid token, by client id. */
  readonly lastUsed: Map<string, number>;
}

/** What connectors.json holds, found without changing it (doctor reads it this way too). */
export type StoreFileFound =
  | { readonly kind: 'missing' }
  | { readonly kind: 'too large'; readonly maxBytes: number }
  | { readonly kind: 'corrupt'; readonly problem: string }
  | { readonly kind: 'ok'; readonly contents: StoreContents };

/**
 * Reads and checks connectors.json, dropping what has expired, and leaves the file as it is.
 * Throws CONFIG_INVALID when it exists but cannot be read.
 */
export async function inspectStoreFile(file: string): Promise<StoreFileFound> {
  let text: string;
  try {
    if ((await stat(file)).size > MAX_FILE_BYTES) return { kind: 'too large', maxBytes: MAX_FILE_BYTES };
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw new BridgeError(
      'CONFIG_INVALID',
      `cannot read ${file}: ${errorMessage(error)}; it should be readable by this user only (mode 0600)`,
      { cause: error, details: { file } },
    );
  }
  const parsed = parseJsonText(text, FileSchema);
  if (!parsed.ok) return { kind: 'corrupt', problem: parsed.problem };
  const contents: StoreContents = { entries: new Map(), lastUsed: new Map() };
  const now = Date.now();
  for (const [key, entry] of Object.entries(parsed.value.entries)) {
    if (entry.expiresAt === null || entry.expiresAt > now)
      contents.entries.set(key, entry as unknown as Entry);
  }
  for (const [clientId, at] of Object.entries(parsed.value.lastUsed)) contents.lastUsed.set(clientId, at);
  return { kind: 'ok', contents };
}

/**
 * connectors.json as it was last written, without what has expired since. Missing: empty. Corrupt
 * or far too large: moved aside (every connector must connect again) and reported, never
 * silently replaced.
 */
export async function readStoreFile(file: string, log: Logger): Promise<StoreContents> {
  const found = await inspectStoreFile(file);
  if (found.kind === 'ok') return found.contents;
  const empty: StoreContents = { entries: new Map(), lastUsed: new Map() };
  if (found.kind === 'missing') return empty;
  const aside = await moveAside(file);
  if (found.kind === 'too large') {
    log.error(
      { file, movedTo: aside, maxBytes: found.maxBytes },
      'the connectors file is far too large to be ours; moved it aside: every connector must connect again',
    );
    return empty;
  }
  if (!aside) {
    throw new BridgeError(
      'CONFIG_INVALID',
      `${file} is corrupt (${found.problem}) and could not be moved aside; move or delete it`,
      { details: { file } },
    );
  }
  log.error(
    { file, movedTo: aside, err: found.problem },
    'the connectors file is corrupt; moved it aside: every connector must connect again',
  );
  return empty;
}

/** Writes the entries `keep` accepts (and have not expired): temp + fsync + rename, mode 0600. */
export async function writeStoreFile(
  file: string,
  contents: StoreContents,
  keep: (key: string) => boolean,
): Promise<void> {
  const entries: Record<string, Entry> = {};
  const now = Date.now();
  for (const [key, entry] of contents.entries) {
    if (!keep(key) || (entry.expiresAt !== null && entry.expiresAt <= now)) continue;
    entries[key] = entry;
  }
  const data = { version: 1, entries, lastUsed: Object.fromEntries(contents.lastUsed) };
  await writeFileAtomic(file, `${JSON.stringify(data)}\n`, { mode: 0o600 });
  await tightenDir(dirname(file));
}
