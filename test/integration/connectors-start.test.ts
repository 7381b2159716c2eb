import { afterAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/bridge.js';
import { cliEnv, freePort, runCli, startCli } from '../helpers/cli.js';

describe('mcp-bridge start with public.url', () => {
  const tmp = makeTempDir();
  afterAll(() => tmp.cleanup());

  it('stops with exit 2 naming the three places when the owner password is missing or short', async () => {
    for (const extra of [{}, { MCP_BRIDGE_OWNER_PASSWORD: 'too short' }]) {
      const result = await runCli(
        ['start'],
        cliEnv(tmp.dir, { MCP_BRIDGE_PUBLIC_URL: 'https://bridge.example.com', ...extra }),
      );
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('OWNER_PASSWORD');
      expect(result.stderr).toContain('MCP_BRIDGE_OWNER_PASSWORD_OP_REF');
      expect(result.stderr).toContain('public.ownerPassword');
    }
  });

  it('opens the public listener, says what it exposes, and /status shows it', async () => {
    const port = await freePort();
    const env = cliEnv(tmp.dir, {
      MCP_BRIDGE_PUBLIC_URL: `http://127.0.0.1:${port}`,
      MCP_BRIDGE_PUBLIC_PORT: String(port),
      MCP_BRIDGE_OWNER_PASSWORD: 'a long enough owner password',
    });
    const bridge = await startCli(env);
    try {
      const prm = await (
        await fetch(`http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp`)
      ).json();
      expect(prm.resource).toBe(`http://127.0.0.1:${port}/mcp`);
      const status = await runCli(['status', '--json'], { ...env, MCP_BRIDGE_PORT: String(bridge.port) });
      expect(JSON.parse(status.stdout).public).toEqual({
        url: `http://127.0.0.1:${port}/mcp`,
        port,
        exposes: [],
        connectors: 0,
      });
      // The password never reaches the output.
      expect(status.stdout + bridge.stderr()).not.toContain('a long enough owner password');
    } finally {
      await bridge.stop();
    }
  });
});
