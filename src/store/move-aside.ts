import { rename } from 'node:fs/promises';

/**
 * Renames a file that cannot be trusted (corrupt JSON, wrong shape) to `<file>.corrupt-<ms>` so a
 * person can inspect it, instead of overwriting it. Returns the new path, or undefined if the rename
 * failed (the caller must then not overwrite the file either).
 */
export async function moveAside(file: string): Promise<string | undefined> {
  const aside = `${file}.corrupt-${Date.now()}`;
  try {
    await rename(file, aside);
    return aside;
  } catch {
    return undefined;
  }
}
