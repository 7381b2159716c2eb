import { ProtocolError, ProtocolErrorCode, specTypeSchemas } from '@modelcontextprotocol/server';
import { isJsonObject as isObject } from '../json-object.js';

type Json = Record<string, unknown>;

const RESULT_KEYS = new Set(['content', 'isError', 'structuredContent', '_meta']);
const TEXT_KEYS = new Set(['type', 'text', '_meta']);

/** Plain text content and nothing else: certainly a valid CallToolResult, checked without zod. */
function plainTextResult(result: Json): boolean {
  for (const key in result) if (!RESULT_KEYS.has(key)) return false;
  const { content, isError, structuredContent, _meta } = result;
  if (!Array.isArray(content)) return false;
  if (isError !== undefined && typeof isError !== 'boolean') return false;
  if (structuredContent !== undefined && !isObject(structuredContent)) return false;
  if (_meta !== undefined && !isObject(_meta)) return false;
  for (const item of content) {
    if (!isObject(item) || item.type !== 'text' || typeof item.text !== 'string') return false;
    for (const key in item) if (!TEXT_KEYS.has(key)) return false;
    if (item._meta !== undefined && !isObject(item._meta)) return false;
  }
  return true;
}

/**
 * What the SDK server makes of a handler's tools/call result before sending it: a contentless
 * result gets `content: []` (normalizeContentlessToolResult), and a result that is not a valid
 * CallToolResult becomes -32602 "Invalid tools/call result". The common shape (text content) is
 * checked by hand; anything else by the spec schema.
 */
export function servedToolResult(result: Json): Json {
  const served =
    result.content !== undefined || 'task' in result || 'inputRequests' in result || 'requestState' in result
      ? result
      : { ...result, content: [] };
  if (plainTextResult(served)) return served;
  const checked = specTypeSchemas.CallToolResult['~standard'].validate(served);
  if (checked instanceof Promise) throw new Error('the CallToolResult schema is expected to be synchronous');
  if (checked.issues) {
    const reasons = checked.issues.map((issue) => {
      const path = (issue.path ?? []).map((p) => (typeof p === 'object' ? String(p.key) : String(p)));
      return path.length > 0 ? `${path.join('.')}: ${issue.message}` : issue.message;
    });
    throw new ProtocolError(
      ProtocolErrorCode.InvalidParams,
      `Invalid tools/call result: ${reasons.join('; ')}`,
    );
  }
  return served;
}
