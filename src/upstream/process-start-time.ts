import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

let bootId: Promise<string> | undefined;

/**
 * When process `pid` started, as an opaque string that differs between two processes that had the
 * same pid; undefined when it cannot be read (no such process, no /proc, no `ps`, out of file
 * descriptors). Linux: field 22 of /proc/<pid>/stat (clock ticks since boot) with the boot id, so
 * a record from before a reboot never matches. Elsewhere: `ps -o lstart=` (1 s resolution).
 */
export async function processStartTime(pid: number): Promise<string | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (process.platform === 'linux') {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    if (stat === undefined) return undefined;
    // Field 2 (the command) is in parentheses and may itself contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = fields[19];
    if (ticks === undefined || !/^\d+$/.test(ticks)) return undefined;
    bootId ??= readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
      (id) => id.trim(),
      () => '',
    );
    return `${await bootId}:${ticks}`;
  }
  if (process.platform === 'win32') return undefined;
  return new Promise((resolve) => {
    try {
      execFile('ps', ['-o', 'lstart=', '-p', String(pid)], { timeout: 5000 }, (error, stdout) => {
        const value = String(stdout ?? '').trim();
        resolve(error || value === '' ? undefined : value);
      });
    } catch {
      resolve(undefined);
    }
  });
}
