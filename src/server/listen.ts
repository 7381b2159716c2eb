import type { Server } from 'node:http';
import { BridgeError, errorMessage } from '../errors.js';

/**
 * Starts listening; EADDRINUSE becomes PORT_IN_USE with `hint` (where to change the port), any
 * other failure INTERNAL.
 */
export function listen(server: Server, port: number, host: string, hint: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (error.code === 'EADDRINUSE') {
        reject(
          new BridgeError('PORT_IN_USE', `port ${port} on ${host} is already in use; ${hint}`, {
            cause: error,
            details: { port, host },
          }),
        );
      } else {
        reject(
          new BridgeError('INTERNAL', `cannot listen on ${host}:${port}: ${errorMessage(error)}`, {
            cause: error,
          }),
        );
      }
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}
