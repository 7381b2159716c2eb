/**
 * Where the activity log lives and how its rotated files are named, for the writer and for
 * `mcp-bridge activity` alike. Kept apart from the writer so the command does not load pino.
 */
import { readdir } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';

export const ACTIVITY_EXTENSION = '.jsonl';

/**
 * The activity log beside the main log: `mcp-bridge.log` -> `mcp-bridge-activity.jsonl`, which
 * pino-roll writes as `mcp-bridge-activity.1.jsonl`, `.2.jsonl` … Its own extension matters:
 * pino-roll starts numbering after the highest number of any file with the same extension in the
 * directory, so with `.log` the two logs would skip numbers after each other's files.
 */
export function defaultActivityPath(logPath: string): string {
  const ext = extname(logPath);
  return join(dirname(logPath), `${basename(logPath, ext)}-activity${ACTIVITY_EXTENSION}`);
}

export interface ActivityFile {
  readonly file: string;
  /** pino-roll's rotation number: the highest is the file being written. */
  readonly number: number;
}

/**
 * How pino-roll names the files for `path`: `<stem>.<n><ext>` in the same directory, where `ext` is
 * the last extension of the name (`.log` if it has none).
 */
export function rotationPattern(path: string): { dir: string; pattern: RegExp } {
  const ext = extname(path) || '.log';
  const stem = basename(path, extname(path));
  return { dir: dirname(path), pattern: new RegExp(`^${escapeRegExp(stem)}\\.(\\d+)${escapeRegExp(ext)}$`) };
}

/** The files pino-roll has written for `path`, oldest first; empty if there are none (or no directory). */
export async function listActivityFiles(path: string): Promise<ActivityFile[]> {
  const { dir, pattern } = rotationPattern(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const files: ActivityFile[] = [];
  for (const name of names) {
    const match = pattern.exec(name);
    if (match) files.push({ file: join(dir, name), number: Number(match[1]) });
  }
  return files.sort((a, b) => a.number - b.number);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
