// pino-roll ships no types: what ActivityLog uses of the sonic-boom stream it resolves to.
declare module 'pino-roll' {
  import type { EventEmitter } from 'node:events';

  export interface RollStream extends EventEmitter {
    /** Queues `data`; sonic-boom writes it with fs.write on libuv's pool, never blocking. */
    write(data: string): boolean;
    /** Writes what is queued, then closes the file ('close'). */
    end(): void;
    /** Closes the file at once, dropping what is queued. */
    destroy(): void;
  }

  export default function roll(options: {
    file: string;
    size?: string;
    limit?: { count: number; removeOtherLogFiles?: boolean };
    mkdir?: boolean;
    mode?: number;
  }): Promise<RollStream>;
}
