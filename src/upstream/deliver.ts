import type { JSONRPCMessage } from '@modelcontextprotocol/client';

/**
 * Hands a message from an upstream to the SDK client. The SDK runs notification handlers one
 * microtask later but settles responses at once, so a progress notification read in the same chunk
 * as the response to its request would find its handler already removed and be dropped. Responses
 * therefore go one microtask later too, after the notification handlers queued before them.
 */
export function deliverInOrder(message: JSONRPCMessage, deliver: (message: JSONRPCMessage) => void): void {
  if ('id' in message && ('result' in message || 'error' in message)) queueMicrotask(() => deliver(message));
  else deliver(message);
}
