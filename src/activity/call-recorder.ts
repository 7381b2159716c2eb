import type { CallObserver } from '../catalog/observed.js';
import type { BridgeMetrics } from '../metrics/metrics.js';
import type { ActivityLog } from './activity-log.js';
import { jsonByteLength } from './json-size.js';

/** Client-chosen strings are kept short: the page and the ring hold hundreds of entries. */
const MAX_NAME = 1024;
const MAX_CLIENT_FIELD = 200;
const cut = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);

export interface CallRecorderOptions {
  readonly activity?: ActivityLog | undefined;
  /** A function: the metrics are made after the catalog they read their tool names from. */
  readonly metrics?: (() => BridgeMetrics | undefined) | undefined;
  /** Which listener's catalog this observes. */
  readonly listener: 'local' | 'public';
}

/**
 * A catalog's observer: each finished tools/call, prompts/get and resources/read becomes one
 * activity log line, and each tools/call one count and duration in the metrics.
 */
export function callRecorder(options: CallRecorderOptions): CallObserver {
  const { activity, metrics, listener } = options;
  return (call) => {
    if (call.kind === 'tool')
      metrics?.()?.toolCall(call.route?.upstream, call.name, call.outcome, call.durationMs);
    if (!activity) return;
    const recordsArguments = activity.recordsArguments;
    const who = call.who;
    // One object literal, undefined fields and all (JSON leaves them out): conditional spreads
    // made a dozen objects a call.
    activity.record({
      kind: call.kind,
      client: {
        name: who?.name === undefined ? undefined : cut(who.name, MAX_CLIENT_FIELD),
        version: who?.version === undefined ? undefined : cut(who.version, MAX_CLIENT_FIELD),
        session: who?.session,
        era: who?.era ?? '2025',
        listener,
        requestId: typeof who?.requestId === 'string' ? cut(who.requestId, MAX_CLIENT_FIELD) : who?.requestId,
      },
      name: cut(call.name, MAX_NAME),
      original: call.route && call.route.original !== call.name ? call.route.original : undefined,
      upstream: call.route?.upstream,
      durationMs: Math.round(call.durationMs * 10) / 10,
      outcome: call.outcome,
      errorCode: call.errorCode,
      resultBytes: call.result === undefined ? undefined : jsonByteLength(call.result),
      // Left out unless recorded: the entry is kept in memory for the page, and a result can be big.
      arguments: recordsArguments ? call.arguments : undefined,
      result: recordsArguments ? call.result : undefined,
    });
  };
}
