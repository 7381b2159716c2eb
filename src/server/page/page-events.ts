import type { Request, Response } from 'express';
import type { PageData } from './page-data.js';
import type { PageSessions } from './page-sessions.js';

/** Snapshots come in bursts (a restart is four or five); the page gets at most one update per this. */
const THROTTLE_MS = 100;
/** Clients, tool calls and token times change without an event: they are looked at this often. */
const CHECK_MS = 1000;
/** A comment line after this much silence keeps proxies and idle timers from closing the stream. */
const KEEPALIVE_MS = 15_000;

export interface PageEventSource {
  readonly sessions: PageSessions;
  /** The page's data as the request's listener sees it. */
  readonly build: (req: Request) => PageData;
  /** Every upstream snapshot; returns the unsubscribe function. */
  readonly onSnapshot: (listener: () => void) => () => void;
  readonly tokenRequired: boolean;
}

/**
 * GET /page/events: the page's data as server-sent events, `status` whenever it changed. Chosen
 * over polling /status: a state change reaches the page within THROTTLE_MS instead of up to a
 * poll interval later, and an unchanged daemon costs one comparison a second, not a request per
 * second per open tab. The page's script reads it with fetch (EventSource cannot send the page
 * key header). A session that ended (logout, token rotated) gets `ended`, and the stream closes.
 */
export function streamPageEvents(source: PageEventSource, req: Request, res: Response): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Cross-Origin-Resource-Policy': 'same-origin',
  });
  res.flushHeaders();
  const bySession = source.sessions.admits(req);
  let last = '';
  let lastWrite = 0;
  let lastSend = 0;
  let timer: NodeJS.Timeout | undefined;
  let done = false;

  const write = (chunk: string) => {
    lastWrite = Date.now();
    res.write(chunk);
  };
  const send = () => {
    timer = undefined;
    if (done) return;
    lastSend = Date.now();
    if (bySession && !source.sessions.admits(req)) {
      write('event: ended\ndata: {}\n\n');
      stop();
      res.end();
      return;
    }
    const json = JSON.stringify(source.build(req));
    if (json !== last) {
      last = json;
      write(`event: status\ndata: ${json}\n\n`);
    } else if (Date.now() - lastWrite >= KEEPALIVE_MS) {
      write(': keepalive\n\n');
    }
  };
  const schedule = () => {
    if (timer || done) return;
    timer = setTimeout(send, Math.max(0, THROTTLE_MS - (Date.now() - lastSend)));
  };
  const unsubscribe = source.onSnapshot(schedule);
  const check = setInterval(schedule, CHECK_MS);
  const stop = () => {
    done = true;
    unsubscribe();
    clearInterval(check);
    if (timer) clearTimeout(timer);
  };
  res.on('close', stop);
  send();
}
