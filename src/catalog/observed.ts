import { isBridgeError } from '../errors.js';
import type { CallerInfo, CallOptions } from '../upstream/upstream.js';
import type { Route } from './merge.js';

/** One routed request as it ended, for the activity log and the metrics. */
export interface CallRecord {
  readonly kind: 'tool' | 'prompt' | 'resource';
  /** The name (a resource's URI) the client used. */
  readonly name: string;
  /** Where it went; absent when it went nowhere (an unknown name). */
  readonly route: Route | undefined;
  readonly who: CallerInfo | undefined;
  readonly durationMs: number;
  readonly outcome: 'ok' | 'tool_error' | 'error';
  /** The bridge's code (src/errors.ts), or `JSON-RPC <code>` for an upstream's own error. */
  readonly errorCode?: string | undefined;
  readonly arguments: unknown;
  readonly result?: Record<string, unknown> | undefined;
}

export type CallObserver = (record: CallRecord) => void;

/**
 * Runs one routed request and tells `observe` how it ended, including requests that never reached
 * an upstream (an unknown name, an upstream not ready: `run` throws those). The observer never
 * changes the outcome: its own failure is swallowed.
 */
export async function observed(
  observe: CallObserver,
  base: Pick<CallRecord, 'kind' | 'name' | 'route' | 'arguments'> & { readonly options: CallOptions },
  run: () => Promise<Record<string, unknown>>,
): Promise<Record<string, unknown>> {
  const started = performance.now();
  let result: Record<string, unknown>;
  try {
    result = await run();
  } catch (error) {
    tell(observe, base, started, 'error', codeOf(error), undefined);
    throw error;
  }
  tell(observe, base, started, result.isError === true ? 'tool_error' : 'ok', undefined, result);
  return result;
}

// Plain arguments and one object literal: this runs on every call, and closures and spreads showed.
function tell(
  observe: CallObserver,
  base: Pick<CallRecord, 'kind' | 'name' | 'route' | 'arguments'> & { readonly options: CallOptions },
  started: number,
  outcome: CallRecord['outcome'],
  errorCode: string | undefined,
  result: Record<string, unknown> | undefined,
): void {
  try {
    observe({
      kind: base.kind,
      name: base.name,
      route: base.route,
      who: base.options.who,
      arguments: base.arguments,
      durationMs: performance.now() - started,
      outcome,
      errorCode,
      result,
    });
  } catch {
    // Recording is best effort; the client's answer is not.
  }
}

function codeOf(error: unknown): string {
  if (isBridgeError(error)) return error.code;
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? `JSON-RPC ${code}` : 'INTERNAL';
}
