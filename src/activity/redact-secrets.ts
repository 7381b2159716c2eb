/**
 * Redaction of whole JSON values (tool arguments, results) for the activity log. The patterns are
 * src/config/redact.ts's, applied to every string; this module adds what only structure can tell
 * (a value under a `password` key) and the bounds that keep a huge result off the hot path.
 */
import { looksSecretKey, REDACTED, redactSecrets } from '../config/redact.js';
import type { UpstreamConfig } from '../config/schema.js';
import { secretValuesOf } from '../config/secrets.js';

/** Known values shorter than this are not replaced verbatim: a `1` or `true` would be everywhere. */
export const MIN_KNOWN_SECRET = 6;
/** Past this much JSON (about: UTF-16 units, not bytes), a value is not recorded at all. */
export const DEFAULT_MAX_BYTES = 64 * 1024;
/** Deeper objects are not walked: MCP arguments are a few levels deep, a cycle would be endless. */
export const DEFAULT_MAX_DEPTH = 32;

export const NESTED_TOO_DEEP = '[not recorded: nested too deep]';

export interface RedactValueOptions {
  /** The size cap; past it the whole value becomes a `[not recorded: …]` note. */
  readonly maxBytes?: number;
  /** Objects and arrays nested deeper are replaced by NESTED_TOO_DEEP. */
  readonly maxDepth?: number;
  /** The value's size when the caller knows it (a result's bytes): said in the note, and no walk when over the cap. */
  readonly knownBytes?: number;
}

/** The note that stands for a value too large to record. */
export function notRecorded(knownBytes: number | undefined, maxBytes: number): string {
  return knownBytes === undefined
    ? `[not recorded: more than ${maxBytes} bytes]`
    : `[not recorded: ${knownBytes} bytes]`;
}

class OverBudget extends Error {}

interface Walk {
  readonly known: readonly string[];
  readonly maxDepth: number;
  left: number;
}

/**
 * A copy of a JSON value with its secrets replaced by `[redacted]`: in every string (keys too) the
 * `knownSecrets` verbatim (those of MIN_KNOWN_SECRET characters or more) and the token shapes of
 * redactSecrets; and the whole value of every key that names a secret (looksSecretKey), except
 * `null` and booleans, which say only whether one is set. Work is bounded: a value over `maxBytes`
 * is replaced as a whole by a `[not recorded: …]` note (the walk stops where the budget ran out, so
 * it costs at most about `maxBytes`), and levels past `maxDepth` by NESTED_TOO_DEEP. Non-JSON values
 * (functions, symbols, undefined) are dropped as JSON.stringify would; a bigint becomes its digits.
 */
export function redactValue(
  value: unknown,
  knownSecrets: readonly string[],
  options: RedactValueOptions = {},
): unknown {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (options.knownBytes !== undefined && options.knownBytes > maxBytes) {
    return notRecorded(options.knownBytes, maxBytes);
  }
  const walk: Walk = {
    known: prepareKnown(knownSecrets),
    maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH,
    left: maxBytes,
  };
  try {
    return copy(value, 0, walk);
  } catch (error) {
    if (error instanceof OverBudget) return notRecorded(options.knownBytes, maxBytes);
    throw error;
  }
}

/** Long enough to replace, deduplicated, longest first so a secret containing another goes whole. */
function prepareKnown(knownSecrets: readonly string[]): string[] {
  return [...new Set(knownSecrets)]
    .filter((secret) => secret.length >= MIN_KNOWN_SECRET)
    .sort((a, b) => b.length - a.length);
}

function spend(walk: Walk, amount: number): void {
  walk.left -= amount;
  if (walk.left < 0) throw new OverBudget();
}

function scrub(text: string, walk: Walk): string {
  let out = text;
  for (const secret of walk.known) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return redactSecrets(out);
}

function copy(value: unknown, depth: number, walk: Walk): unknown {
  switch (typeof value) {
    case 'string':
      // Charged before scrubbing, so one huge string costs a length check, not a regex pass.
      spend(walk, value.length + 2);
      return scrub(value, walk);
    case 'number':
    case 'boolean':
      spend(walk, 5);
      return value;
    case 'bigint':
      spend(walk, 5);
      return value.toString();
    case 'object':
      break;
    default:
      return undefined;
  }
  if (value === null) {
    spend(walk, 4);
    return null;
  }
  if (depth >= walk.maxDepth) {
    spend(walk, NESTED_TOO_DEEP.length);
    return NESTED_TOO_DEEP;
  }
  spend(walk, 2);
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i++) {
      spend(walk, 1);
      out.push(copy(value[i], depth + 1, walk) ?? null);
    }
    return out;
  }
  const source = value as Record<string, unknown>;
  if (typeof source.toJSON === 'function') return copy(source.toJSON(), depth, walk);
  const out: Record<string, unknown> = {};
  for (const key in source) {
    if (!Object.hasOwn(source, key)) continue;
    spend(walk, key.length + 4);
    const child = source[key];
    const copied =
      looksSecretKey(key) && child !== null && child !== undefined && typeof child !== 'boolean'
        ? REDACTED
        : copy(child, depth + 1, walk);
    if (copied === undefined) continue;
    // defineProperty: a `__proto__` key from JSON.parse is data, and must not become a prototype.
    Object.defineProperty(out, scrub(key, walk), {
      value: copied,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/**
 * What the activity log replaces verbatim for these upstreams: every value of their `env` and
 * `headers`, whatever its name (the issue asks for all of them; unlike the stderr filter, which
 * keeps NODE_ENV=production readable), plus what secretValuesOf finds inside them, in args, the
 * URL and the OAuth client secret. Values shorter than MIN_KNOWN_SECRET are dropped by redactValue.
 */
export function activitySecretsOf(upstreams: readonly UpstreamConfig[]): string[] {
  const found = new Set<string>();
  for (const upstream of upstreams) {
    const record = upstream.kind === 'stdio' ? upstream.env : upstream.headers;
    for (const value of Object.values(record)) found.add(value);
    for (const value of secretValuesOf(upstream)) found.add(value);
  }
  return [...found];
}
