import { request } from 'node:http';
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One request to a loopback daemon, as a client without the SDK would send it. A body given as
 * several buffers is sent as one (so that large bodies can share most of their bytes).
 */
export function raw(
  port: number,
  options: {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer | readonly Buffer[];
  },
): Promise<RawResponse> {
  const parts = Array.isArray(options.body) ? (options.body as readonly Buffer[]) : undefined;
  const length = parts?.reduce((sum, part) => sum + part.length, 0);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'POST',
        path: options.path ?? '/mcp',
        agent: false,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...(length === undefined ? {} : { 'content-length': String(length) }),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (parts) {
      for (const part of parts) req.write(part);
      req.end();
    } else req.end(options.body as string | Buffer | undefined);
  });
}

export interface RawSocket {
  readonly socket: Socket;
  /** Everything the daemon wrote so far. */
  received(): string;
  readonly closed: () => boolean;
}

/** A TCP connection to write a request by hand (to stall it half way, for instance). */
export function rawSocket(port: number, text: string): RawSocket {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('utf8');
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
  });
  socket.write(text);
  return { socket, received: () => received, closed: () => closed };
}

/** The request line and headers of a POST to /mcp, ready for a body to follow. */
export function postHead(headers: Record<string, string>, contentLength: number): string {
  const lines = Object.entries({
    host: '127.0.0.1',
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'content-length': String(contentLength),
    ...headers,
  }).map(([name, value]) => `${name}: ${value}\r\n`);
  return `POST /mcp HTTP/1.1\r\n${lines.join('')}\r\n`;
}

/** The JSON body of an HTTP response that `rawSocket` received. */
export function bodyOf(received: string): unknown {
  return JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4));
}

export const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

/** `k` objects nested in one another, as JSON text. */
export function nested(k: number): string {
  return `${'{"a":'.repeat(k)}1${'}'.repeat(k)}`;
}
