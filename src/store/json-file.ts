import { z } from 'zod';

export type ParsedJson<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly problem: string };

/**
 * Parses and validates the text of one of our files. A problem says where and what kind, never
 * what the text holds: JSON.parse and schema messages can quote it, and these files hold tokens.
 */
export function parseJsonText<T>(text: string, schema: z.ZodType<T>): ParsedJson<T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, problem: jsonSyntaxProblem(error, text) };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  // zod's default messages name the path and what was expected (a type, a literal of the schema),
  // never the input; on one line for a log field.
  return { ok: false, problem: z.prettifyError(parsed.error).replace(/\s*\n\s*/g, ' ') };
}

/**
 * "not valid JSON: Expected ',' or '}' after property value (line 3, column 14)": V8's reason and
 * position, never the text it quotes ('Unexpected token 'x', "…the text…" is not valid JSON').
 */
export function jsonSyntaxProblem(error: unknown, text: string): string {
  if (!(error instanceof SyntaxError)) return 'not readable as JSON';
  const message = error.message;
  const positioned = /^(.*) in JSON at position (\d+)/.exec(message);
  if (positioned && !positioned[1]!.includes('"')) {
    const offset = Math.min(Number(positioned[2]), text.length);
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    const column = offset - before.lastIndexOf('\n');
    return `not valid JSON: ${positioned[1]} (line ${line}, column ${column})`;
  }
  // One character says what to look for and cannot give a secret away.
  const token = /^Unexpected token '(.)'/u.exec(message);
  if (token) return `not valid JSON: unexpected character '${token[1]}'`;
  return message.includes('"') ? 'not valid JSON' : `not valid JSON: ${message}`;
}
