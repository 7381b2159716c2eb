import { constants, lstatSync, type Stats, statSync } from 'node:fs';
import { lstat, mkdir, open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BridgeError } from '../errors.js';

// Windows has no uids and no meaningful mode bits: ownership and permission checks are skipped there.
const uid = process.getuid?.();
const checksModes = process.platform !== 'win32';

function ownedByUs(info: Stats): boolean {
  return uid === undefined || info.uid === uid;
}

function enoent(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * A symlinked directory is used only if it leads to a directory of this user: the config dir holds
 * tokens, and its config.json decides what the daemon spawns, so a link into another user's
 * directory would hand them both.
 */
function checkLinkTarget(dir: string, target: Stats | undefined): void {
  if (target === undefined) return; // a dangling link: mkdir and writes fail with their own error
  if (!target.isDirectory()) {
    throw new BridgeError(
      'CONFIG_DIR_UNSAFE',
      `${dir} is a symbolic link to something that is not a directory; point it at a directory you own, or remove it`,
      { details: { dir } },
    );
  }
  if (!ownedByUs(target)) {
    throw new BridgeError(
      'CONFIG_DIR_UNSAFE',
      `${dir} is a symbolic link to a directory that belongs to another user (uid ${target.uid}); mcp-bridge keeps tokens there and runs what its config says, so it will not use it. Replace the link with a directory of your own (or set MCP_BRIDGE_CONFIG_DIR)`,
      { details: { dir, ownerUid: target.uid } },
    );
  }
}

/** Refuses a config dir that is a symlink to another user's directory (sync: config loading is). */
export function checkConfigDirSync(dir: string): void {
  let info: Stats;
  try {
    info = lstatSync(dir);
  } catch (error) {
    if (enoent(error)) return;
    throw error;
  }
  if (!info.isSymbolicLink()) return;
  let target: Stats | undefined;
  try {
    target = statSync(dir);
  } catch (error) {
    if (!enoent(error)) throw error;
  }
  checkLinkTarget(dir, target);
}

/**
 * Makes sure `dir` exists (created with `mode`), refusing a symlink to another user's directory.
 * Never changes the mode of an existing directory: see `tightenDir`.
 */
export async function ensureDir(dir: string, mode = 0o700): Promise<void> {
  let info = await lstat(dir).catch((error: unknown) => {
    if (enoent(error)) return undefined;
    throw error;
  });
  if (!info) {
    // mkdir never follows a link at the last component: if one appeared meanwhile, it succeeds
    // without touching it, and the lstat below sees the link.
    await mkdir(dir, { recursive: true, mode });
    info = await lstat(dir);
  }
  if (info.isSymbolicLink()) {
    checkLinkTarget(dir, await stat(dir).catch(() => undefined));
  }
}

/**
 * Sets `dir` to `mode` if it is a real directory of this user. A symlink is left alone, and so is
 * whatever it points to: the directory is opened with O_NOFOLLOW and changed through that handle,
 * so a link swapped in after a check cannot redirect the chmod.
 */
export async function tightenDir(dir: string, mode = 0o700): Promise<void> {
  if (!checksModes || constants.O_NOFOLLOW === undefined) return;
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW).catch(
    () => undefined,
  );
  if (!handle) return;
  try {
    const info = await handle.stat();
    if (ownedByUs(info) && (info.mode & 0o777) !== mode) await handle.chmod(mode);
  } catch {
    // best effort: the files themselves are 0600
  } finally {
    await handle.close();
  }
}

const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;

/**
 * Warnings about who else can change `file`, the config file that decides what the daemon spawns:
 * writable by group or others, owned by another user, or in a directory others can write to (they
 * could replace it). Each names the file and what to do.
 */
export function configFileWarnings(file: string): string[] {
  if (!checksModes) return [];
  const warnings: string[] = [];
  let info: Stats;
  try {
    info = statSync(file);
  } catch {
    return [];
  }
  if (info.mode & 0o022) {
    const who = info.mode & 0o002 ? 'every user of this machine' : 'its group';
    warnings.push(
      `config file ${file} can be changed by ${who} (mode ${octal(info.mode)}), and it decides which commands mcp-bridge runs; run: chmod go-w ${file}`,
    );
  }
  if (!ownedByUs(info) && info.uid !== 0) {
    warnings.push(
      `config file ${file} belongs to another user (uid ${info.uid}), who decides which commands mcp-bridge runs; copy it to a file of your own`,
    );
  }
  const dir = dirname(file);
  try {
    const dirInfo = statSync(dir);
    // With the sticky bit (/tmp), others may not replace a file they do not own.
    if (dirInfo.mode & 0o022 && !(dirInfo.mode & 0o1000)) {
      warnings.push(
        `the directory ${dir} of config file ${file} can be written by other users (mode ${octal(dirInfo.mode)}), who could replace the file; run: chmod go-w ${dir}`,
      );
    }
  } catch {
    // the file was just read: its directory is there
  }
  return warnings;
}
