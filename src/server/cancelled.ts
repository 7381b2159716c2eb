import type { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import type { Response } from 'express';
import { ERROR_CODES } from '../errors.js';

type RequestId = string | number;

function messagesOf(body: unknown): unknown[] {
  return Array.isArray(body) ? body : [body];
}

function isRequestId(value: unknown): value is RequestId {
  return typeof value === 'string' || typeof value === 'number';
}

/**
 * The calls of one 2025 session whose POST is still open, so that a cancelled one's HTTP response
 * ends. The SDK transport keeps a POST's SSE stream open until every request on it is answered,
 * and the SDK server never answers a request its client cancelled (as the spec asks), so without
 * this the stream stayed open for good.
 */
export class OpenCalls {
  /** Request id → whether it is alone on its POST's stream (a JSON-RPC batch shares one). */
  private readonly open = new Map<RequestId, boolean>();

  /** Remembers the requests of a POST body until its response closes. */
  track(body: unknown, res: Response): void {
    const messages = messagesOf(body);
    const ids: RequestId[] = [];
    for (const message of messages) {
      const { id, method } = (message ?? {}) as { id?: unknown; method?: unknown };
      if (typeof method === 'string' && isRequestId(id)) ids.push(id);
    }
    if (ids.length === 0) return;
    const alone = messages.length === 1;
    for (const id of ids) this.open.set(id, alone);
    res.once('close', () => {
      for (const id of ids) this.open.delete(id);
    });
  }

  /** After the transport took a POST body: ends the streams of the calls its notifications/cancelled name. */
  endCancelled(body: unknown, transport: NodeStreamableHTTPServerTransport): void {
    for (const message of messagesOf(body)) {
      const { method, params } = (message ?? {}) as { method?: unknown; params?: { requestId?: unknown } };
      if (method !== 'notifications/cancelled' || !isRequestId(params?.requestId)) continue;
      const id = params.requestId;
      const alone = this.open.get(id);
      if (alone === undefined) continue;
      this.open.delete(id);
      // A stream of its own is closed with nothing more written: the client expects no answer.
      if (alone) transport.closeSSEStream(id);
      // The transport's record of the request is settled by an answer; it reaches the client only
      // on a batch's stream that its other requests still hold open.
      transport
        .send({
          jsonrpc: '2.0',
          id,
          error: {
            code: ERROR_CODES.REQUEST_CANCELLED.jsonRpc,
            message: 'Request cancelled by the client',
            data: { code: 'REQUEST_CANCELLED' },
          },
        })
        .catch(() => {});
    }
  }
}
