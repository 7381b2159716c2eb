import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { BIN } from './cli.js';
import { waitFor } from './wait.js';

/**
 * `mcp-bridge stdio` driven with raw JSON lines, to see exactly what it writes to stdout. The child
 * is SIGKILLed by the closer pushed onto `closers`.
 */
export function rawShim(args: string[], env: NodeJS.ProcessEnv, closers: (() => unknown)[]) {
  const child: ChildProcess = spawn(process.execPath, [BIN, 'stdio', ...args], { env, stdio: 'pipe' });
  closers.push(() => child.exitCode === null && child.kill('SIGKILL'));
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line));
  let stderr = '';
  child.stderr!.on('data', (c) => {
    stderr += c;
  });
  const send = (message: object) => child.stdin!.write(`${JSON.stringify(message)}\n`);
  const reply = (id: number, ms = 20_000) =>
    waitFor(
      () => lines.map((l) => JSON.parse(l) as { id?: number }).find((m) => m.id === id),
      `the answer to ${id} (${stderr})`,
      ms,
    ) as Promise<Record<string, unknown>>;
  return { child, lines, send, reply, stderr: () => stderr };
}
