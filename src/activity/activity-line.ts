/**
 * The activity log's JSON line for one entry, made on every call. `JSON.stringify` of the whole
 * entry was most of the log's cost per call, and most of what it wrote is the same call after
 * call: the client (name, version, session, era, listener) and the route (name, original,
 * upstream). Those two parts are kept as JSON for the last values seen and reused while they stay
 * the same; the rest is numbers and fixed words. The line is byte for byte what
 * `JSON.stringify({ time, ...entry })` writes (activity-line.test.ts compares the two).
 */
import type { ActivityClient, ActivityEntry } from './activity-log.js';

type Untimed = Omit<ActivityEntry, 'time'>;

let isoSecond = Number.NaN;
let isoPrefix = '';
/**
 * `new Date(ms).toISOString()` for an integer epoch ms, with the date and time of day made once a
 * second: V8 formats an ISO time through printf, which cost more than the rest of a line.
 */
export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const milli = ms - second * 1000;
  return `${isoPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

const number = (n: number) => (Number.isFinite(n) ? String(n) : 'null');

/** Writes `,"key":value` for a field JSON would write, nothing for one it would leave out. */
function field(key: string, value: unknown): string {
  if (value === undefined) return '';
  const json = JSON.stringify(value);
  return json === undefined ? '' : `,"${key}":${json}`;
}

export class ActivityLine {
  private client: ActivityClient | undefined;
  /** `{"name":…,"listener":"…"` of `client`, without requestId and the closing brace. */
  private clientJson = '';
  private route: { name: string; original: string | undefined; upstream: string | undefined } | undefined;
  /** `"<name>"[,"original":…][,"upstream":…]` of `route`. */
  private routeJson = '';

  /** The entry's line, newline included. */
  of(time: string, entry: Untimed): string {
    const { client } = entry;
    return (
      `{"time":"${time}","kind":"${entry.kind}","client":${this.clientPart(client)}` +
      `${field('requestId', client.requestId)}},"name":${this.routePart(entry)}` +
      `,"durationMs":${number(entry.durationMs)},"outcome":"${entry.outcome}"` +
      `${field('errorCode', entry.errorCode)}${field('resultBytes', entry.resultBytes)}` +
      `${field('arguments', entry.arguments)}${field('result', entry.result)}}\n`
    );
  }

  private clientPart(client: ActivityClient): string {
    const last = this.client;
    if (
      last === undefined ||
      last.name !== client.name ||
      last.version !== client.version ||
      last.session !== client.session ||
      last.era !== client.era ||
      last.listener !== client.listener
    ) {
      this.client = client;
      // In the order of ActivityClient, requestId left for `of` (it changes on every call).
      const json = JSON.stringify({
        name: client.name,
        version: client.version,
        session: client.session,
        era: client.era,
        listener: client.listener,
      });
      this.clientJson = json.slice(0, -1);
    }
    return this.clientJson;
  }

  private routePart(entry: Untimed): string {
    const last = this.route;
    if (
      last === undefined ||
      last.name !== entry.name ||
      last.original !== entry.original ||
      last.upstream !== entry.upstream
    ) {
      this.route = { name: entry.name, original: entry.original, upstream: entry.upstream };
      this.routeJson = `${JSON.stringify(entry.name)}${field('original', entry.original)}${field('upstream', entry.upstream)}`;
    }
    return this.routeJson;
  }
}
