import { fileURLToPath } from 'node:url';
import type { StdioUpstreamConfig } from '../../src/config/schema.js';

export const FAKE_SERVER = fileURLToPath(new URL('../fixtures/fake-server.mjs', import.meta.url));

/** Config for a fixture upstream, as the config file would have it. */
export function fakeServerEntry(env: Record<string, string> = {}) {
  return { command: process.execPath, args: [FAKE_SERVER], env };
}

/** A resolved stdio upstream config for the fixture server. */
export function fakeUpstream(
  name: string,
  env: Record<string, string> = {},
  callTimeoutMs = 10_000,
): StdioUpstreamConfig {
  return { kind: 'stdio', name, ...fakeServerEntry(env), callTimeoutMs };
}

/** Tools the fixture serves without FAKE_TOOLS. */
export const FAKE_TOOL_COUNT = 14;
