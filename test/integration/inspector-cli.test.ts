import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Status } from '../../src/server/status.js';
import { authHeaders } from '../helpers/access.js';
import { makeTempDir } from '../helpers/bridge.js';
import { BIN, cliEnv, type RunningBridge, startCli } from '../helpers/cli.js';
import { fakeServerEntry } from '../helpers/fake-server.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A real third-party MCP client through the stdio shim: the MCP Inspector's CLI mode
 * (@modelcontextprotocol/inspector-cli, pinned in devDependencies) spawns `mcp-bridge stdio` the way
 * Claude Desktop does, over its own SDK version.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const INSPECTOR_TIMEOUT_MS = 10_000;

/** The installed `mcp-inspector-cli` (node_modules/.bin link), resolved to the script it points at. */
function inspectorBin(): string {
  const link = join(ROOT, 'node_modules', '.bin', 'mcp-inspector-cli');
  if (!existsSync(link)) {
    throw new Error(`${link} is missing: run npm ci (it is a devDependency)`);
  }
  // Run the script with this Node instead of relying on the link's shebang (or a .cmd wrapper).
  return realpathSync(link);
}

interface InspectorResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('the MCP Inspector CLI through the stdio shim', () => {
  let bridge: RunningBridge;
  let cleanup: () => void;
  let configDir = '';
  const running = new Set<number>();

  beforeAll(async () => {
    const temp = makeTempDir();
    cleanup = temp.cleanup;
    configDir = join(temp.dir, 'config');
    mkdirSync(join(temp.dir, 'config'), { recursive: true });
    writeFileSync(
      join(temp.dir, 'config', 'config.json'),
      JSON.stringify({ mcpServers: { fake: fakeServerEntry() }, pingIntervalMs: 0 }),
    );
    bridge = await startCli(cliEnv(temp.dir));
    await waitFor(async () => {
      const status = (await (
        await fetch(new URL('/status', bridge.url), { headers: authHeaders(bridge.url) })
      ).json()) as Status;
      return status.upstreams.every((u) => u.state === 'ready');
    }, 'upstreams ready');
  });

  afterAll(async () => {
    // A run that timed out or failed may leave its process group (inspector → its CLI → shim).
    for (const pgid of running) killGroup(pgid);
    await bridge?.stop();
    cleanup?.();
  });

  /** Runs `mcp-inspector-cli --cli <shim command> <args>` to completion (or kills it at the deadline). */
  async function inspector(args: string[]): Promise<InspectorResult> {
    const bin = inspectorBin();
    const child = spawn(
      process.execPath,
      // The shim reads the daemon's access token from the config dir, as under Claude Desktop.
      [
        bin,
        '--cli',
        '-e',
        `MCP_BRIDGE_CONFIG_DIR=${configDir}`,
        process.execPath,
        BIN,
        'stdio',
        '--url',
        bridge.url,
        ...args,
      ],
      {
        // inspector-cli 1.0.3 reads its own package.json as `../package.json` checked against the
        // working directory but imported relative to its module: only its build dir satisfies both.
        cwd: dirname(bin),
        // It starts its CLI with `node` from PATH: make that this Node.
        env: { PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group, so a timeout kills the inspector, its child and the shim together.
        detached: process.platform !== 'win32',
      },
    );
    const pgid = child.pid!;
    running.add(pgid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${INSPECTOR_TIMEOUT_MS} ms]`;
      killGroup(pgid);
    }, INSPECTOR_TIMEOUT_MS);
    const [code] = (await once(child, 'close')) as [number | null];
    clearTimeout(timer);
    if (code === 0) running.delete(pgid);
    return { code, stdout, stderr };
  }

  /** Every shim has ended its daemon session (it DELETEs it when the client closes its stdin). */
  async function noSessionsLeft(): Promise<void> {
    await waitFor(
      async () =>
        (
          (await (
            await fetch(new URL('/status', bridge.url), { headers: authHeaders(bridge.url) })
          ).json()) as Status
        ).sessions === 0,
      'the shim to end its session',
      5_000,
    );
  }

  it('lists the bridged tools (tools/list)', async () => {
    const result = await inspector(['--method', 'tools/list']);
    expect(result.code, result.stderr).toBe(0);
    const { tools } = JSON.parse(result.stdout) as { tools: { name: string }[] };
    expect(tools.map((t) => t.name)).toContain('fake__echo');
    await noSessionsLeft();
  });

  it('calls a bridged tool (tools/call fake__echo)', async () => {
    const result = await inspector([
      '--method',
      'tools/call',
      '--tool-name',
      'fake__echo',
      '--tool-arg',
      'text=hello',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const answer = JSON.parse(result.stdout) as {
      content: { type: string; text: string }[];
      isError?: boolean;
    };
    expect(answer.isError).toBeFalsy();
    expect(answer.content).toEqual([{ type: 'text', text: 'hello' }]);
    await noSessionsLeft();
  });
});

function killGroup(pgid: number): void {
  try {
    process.kill(process.platform === 'win32' ? pgid : -pgid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
