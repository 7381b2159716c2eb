import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../../src/daemon.js';
import { authHeaders, makeTempDir, startTestDaemon } from '../helpers/bridge.js';

let daemon: Daemon;
let cleanup: () => void;
beforeAll(async () => {
  const temp = makeTempDir();
  cleanup = temp.cleanup;
  daemon = await startTestDaemon(temp.dir, []);
});
afterAll(async () => {
  await daemon.close();
  cleanup();
});

function send(
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const { port } = new URL(daemon.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: '/mcp', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const allowHeaders = (headers: Record<string, string | string[] | undefined>) =>
  String(headers['access-control-allow-headers'] ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase());

describe('CORS for a 2026-07-28 browser client', () => {
  it('allows the preflight of an allowed origin asking for Mcp-Method, Mcp-Name and Mcp-Param-* headers', async () => {
    // What the SDK's Streamable HTTP client sends on a 2026-07-28 tools/call, as a browser asks for it.
    const requested = [
      'authorization',
      'content-type',
      'mcp-protocol-version',
      'mcp-method',
      'mcp-name',
      'mcp-param-region',
      'mcp-param-x_tenant',
    ];
    // Browsers send no credentials on a preflight: it must pass without the access token.
    const preflight = await send('OPTIONS', {
      origin: 'http://localhost:5173',
      'access-control-request-method': 'POST',
      'access-control-request-headers': requested.join(', '),
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    expect(allowHeaders(preflight.headers)).toEqual(expect.arrayContaining(requested));
    expect(String(preflight.headers.vary)).toMatch(/Access-Control-Request-Headers/i);
  });

  it('grants only the headers it knows: a made-up header asked for is not allowed', async () => {
    const preflight = await send('OPTIONS', {
      origin: 'https://claude.ai',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'mcp-method, x-made-up',
    });
    expect(allowHeaders(preflight.headers)).toContain('mcp-method');
    expect(allowHeaders(preflight.headers)).not.toContain('x-made-up');
  });

  it('still refuses the preflight of another origin', async () => {
    const refused = await send('OPTIONS', {
      origin: 'https://evil.example',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'mcp-method',
    });
    expect(refused.status).toBe(403);
  });

  it('exposes the headers a browser client reads on the actual request', async () => {
    const response = await send(
      'POST',
      {
        ...authHeaders(daemon),
        origin: 'http://localhost:5173',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'b', version: '1' } },
      }),
    );
    expect(response.status).toBe(200);
    expect(response.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    const exposed = String(response.headers['access-control-expose-headers']).toLowerCase();
    for (const header of ['mcp-session-id', 'mcp-protocol-version', 'www-authenticate'])
      expect(exposed).toContain(header);
  });
});
