// What the bench measures with and how it prints a row: timings, percentiles, and a process's
// memory and CPU from /proc (Linux).
import { readFileSync } from 'node:fs';

export const now = () => performance.now();
export const pct = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
export const median = (values) => pct(values, 50);
export const ms = (v) => `${v.toFixed(3)} ms`;
const rows = [];
export const report = (metric, direct, bridge, extra = '') => {
  rows.push({ metric, direct, bridge, extra });
  console.log(
    `${metric.padEnd(44)} direct ${direct.padStart(14)}   bridge ${bridge.padStart(14)}   ${extra}`,
  );
};

export async function timed(fn) {
  const start = now();
  await fn();
  return now() - start;
}

export function rssMiB(pid) {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** User + system CPU of a process so far, from /proc (Linux). */
export function daemonCpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}
