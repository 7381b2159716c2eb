/**
 * The size of a result as it goes over the wire, for the activity log's resultBytes, without
 * serializing it a second time: a tool result can be megabytes, and the log runs on every call.
 */

// Escaped as two characters (\" \\ \n …) or as six (\u0001).
const SHORT_ESCAPE = /["\\\n\r\t\b\f]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters JSON escapes
const LONG_ESCAPE = /[\u0000-\u0007\u000b\u000e-\u001f]/g;

// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters JSON escapes
const ANY_ESCAPE = /["\\\u0000-\u001f]/;

/** Past this length escapes are not counted: scanning a megabyte for them cost 2 ms a call. */
const EXACT_UP_TO = 4096;

/** Up to this length a string is first checked char by char: cheaper than two native calls. */
const SHORT = 64;

function stringBytes(text: string): number {
  // Keys and names are short printable ASCII without quotes or backslashes: length + the quotes.
  if (text.length <= SHORT && isPlain(text)) return text.length + 2;
  let bytes = Buffer.byteLength(text, 'utf8') + 2;
  // One test, no match arrays, for the common case (keys, plain text): nothing to escape.
  if (text.length > 0 && text.length <= EXACT_UP_TO && ANY_ESCAPE.test(text)) {
    bytes += text.match(SHORT_ESCAPE)?.length ?? 0;
    bytes += 5 * (text.match(LONG_ESCAPE)?.length ?? 0);
  }
  return bytes;
}

function isPlain(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}

/**
 * `Buffer.byteLength(JSON.stringify(value))`, computed by walking `value`. Exact for JSON values
 * but for the escapes of strings over 4 KiB (not counted) and lone surrogates (JSON escapes them
 * to six bytes, counted here as three). 0 for what JSON.stringify turns into undefined. Throws on a cycle, as JSON.stringify does (as a RangeError).
 */
export function jsonByteLength(value: unknown): number {
  return size(value) ?? 0;
}

/** undefined: what JSON leaves out of an object and writes as null in an array. */
function size(value: unknown): number | undefined {
  switch (typeof value) {
    case 'string':
      return stringBytes(value);
    case 'number':
      return Number.isFinite(value) ? String(value).length : 4;
    case 'boolean':
      return value ? 4 : 5;
    case 'object':
      break;
    default:
      return undefined;
  }
  if (value === null) return 4;
  const source = value as Record<string, unknown>;
  if (typeof source.toJSON === 'function') return size(source.toJSON());
  if (Array.isArray(value)) {
    let bytes = 2 + Math.max(0, value.length - 1);
    for (const item of value) bytes += size(item) ?? 4;
    return bytes;
  }
  let bytes = 2;
  let members = 0;
  // Object.keys, not for…in with hasOwn: the same keys JSON writes, at a fraction of the cost.
  for (const key of Object.keys(source)) {
    const member = size(source[key]);
    if (member === undefined) continue;
    bytes += stringBytes(key) + 1 + member;
    members++;
  }
  return bytes + Math.max(0, members - 1);
}
