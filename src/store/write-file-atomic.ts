import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ensureDir } from './file-safety.js';

export interface WriteFileAtomicOptions {
  /** File mode of the new file (e.g. 0o600 for secrets). */
  readonly mode?: number;
  /** Mode of the directory if it has to be created (an existing one, or a symlink's target, is not changed). */
  readonly dirMode?: number;
  /**
   * false: no fsync. The rename still means a crashed process leaves the old file or the new one;
   * only a power loss could lose the write. For records that die with the machine anyway (which
   * daemon runs, which children it has): an fsync costs tens of milliseconds on some disks.
   */
  readonly durable?: boolean;
}

/**
 * Writes `data` so that a crash at any moment leaves either the old file or the new one, never half
 * of either: a unique temp file in the same directory, fsync, rename over the target, fsync the dir.
 */
export async function writeFileAtomic(
  file: string,
  data: string,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const dir = dirname(file);
  await ensureDir(dir, options.dirMode ?? 0o700);
  const temp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, 'w', options.mode ?? 0o644);
  try {
    await handle.writeFile(data, 'utf8');
    if (options.durable !== false) await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  if (options.durable !== false) await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  // Directory fsync makes the rename itself durable; not every platform allows opening a directory.
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // best effort
  }
}
