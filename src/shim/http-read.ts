import { createParser } from 'eventsource-parser';

export type Id = string | number;
export interface Message {
  jsonrpc: '2.0';
  id?: Id;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: unknown };
}

/** The request never reached the daemon (refused, or the daemon did not know the session). */
export class NotDelivered extends Error {}

const REFUSED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EADDRNOTAVAIL']);

/** Whether a fetch failed because nothing listens there (so the request never left). */
export function wasRefused(error: unknown): string | undefined {
  const code = (error as { cause?: { code?: string } }).cause?.code;
  return code !== undefined && REFUSED.has(code) ? code : undefined;
}

/** fetch, with "the request never left" (refused, no daemon) told apart from other failures. */
export async function fetchOrThrow(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    const code = wasRefused(error);
    if (code) throw new NotDelivered(`nothing answers at ${url} (${code})`);
    // fetch says only "fetch failed"; the cause says why (e.g. "bad port", a reset).
    const cause = (error as { cause?: { message?: string } }).cause?.message;
    throw new Error(cause ? `${(error as Error).message}: ${cause}` : String(error), { cause: error });
  }
}

/**
 * Reads a JSON or SSE response body; each message goes to `onMessage` as it arrives. Resolves with
 * all of them once the body ends (for SSE, when the answer to `id` has come or the stream closes).
 */
export async function readMessages(
  response: Response,
  id: Id | undefined,
  onMessage: (message: Message) => void,
  log: (line: string) => void,
): Promise<Message[]> {
  const type = response.headers.get('content-type') ?? '';
  const messages: Message[] = [];
  const take = (value: unknown) => {
    for (const message of Array.isArray(value) ? value : [value]) {
      if (typeof message === 'object' && message !== null) {
        messages.push(message as Message);
        onMessage(message as Message);
      }
    }
  };
  if (type.includes('application/json')) {
    take(JSON.parse(await response.text()));
    return messages;
  }
  if (!type.includes('text/event-stream') || !response.body) {
    await response.body?.cancel().catch(() => {});
    if (response.status >= 400) throw new Error(`the daemon answered HTTP ${response.status}`);
    return messages;
  }
  let done = false;
  const parser = createParser({
    onEvent: (event) => {
      if (!event.data) return;
      try {
        const value = JSON.parse(event.data) as Message;
        take(value);
        if (id !== undefined && value.id === id && (value.result || value.error)) done = true;
      } catch {
        log('ignored a non-JSON event from the daemon');
      }
    },
  });
  const decoder = new TextDecoder();
  const reader = response.body.getReader();
  try {
    while (!done) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      parser.feed(decoder.decode(value, { stream: true }));
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return messages;
}
