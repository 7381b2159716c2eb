import { spawn } from 'node:child_process';

export interface LoginPath {
  readonly path: string;
  /** Set when the login shell could not be asked and the current PATH is used instead: why. */
  readonly note?: string;
}

const START = '__MCP_BRIDGE_PATH_START__';
const END = '__MCP_BRIDGE_PATH_END__';

/**
 * The PATH of the user's login shell (`$SHELL -lic`), which is what a terminal has: a service
 * started by launchd or systemd gets a bare PATH, and `npx`, `uvx`, Homebrew binaries are missing.
 * Interactive rc files may print banners, so the value is read between markers. Bounded by
 * `timeoutMs`: an rc file that waits for input must not hang the install.
 */
export async function captureLoginPath(
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<LoginPath> {
  const env = options.env ?? process.env;
  const fallback = (why: string): LoginPath => ({
    path: env.PATH ?? '',
    note: `${why}; using this process's PATH instead`,
  });
  const shell = env.SHELL;
  if (!shell) return fallback('$SHELL is not set, so the login shell cannot be asked for its PATH');
  const timeoutMs = options.timeoutMs ?? 5000;

  return new Promise<LoginPath>((resolve) => {
    let stdout = '';
    let settled = false;
    const done = (result: LoginPath) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    // Its own process group, so a timeout also ends whatever the rc files started.
    const child = spawn(shell, ['-lic', `printf '${START}%s${END}' "$PATH"`], {
      env,
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true,
    });
    const timer = setTimeout(() => {
      killGroup(child.pid);
      done(fallback(`${shell} -lic did not print its PATH within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
      const match = new RegExp(`${START}([^\\n]*?)${END}`).exec(stdout);
      if (match) {
        // Do not wait for rc files' background jobs that keep stdout open.
        killGroup(child.pid);
        if (match[1]) done({ path: match[1] });
        else done(fallback(`${shell} -lic printed an empty PATH`));
      }
    });
    child.on('error', (error) => done(fallback(`${shell} could not be started (${error.message})`)));
    let exit = 'no exit status';
    child.on('exit', (code, signal) => {
      exit = signal ?? `code ${code}`;
    });
    // After the last of stdout: a shell that never printed the markers.
    child.stdout.on('end', () => done(fallback(`${shell} -lic ended (${exit}) without printing its PATH`)));
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
