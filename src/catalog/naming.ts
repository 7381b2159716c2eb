import { createHash } from 'node:crypto';

/** Claude's rule for tool names; every exposed name satisfies it. */
export const EXPOSED_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const MAX_NAME_LENGTH = 64;
const SEPARATOR = '__';
const HASH_LENGTH = 8;

/** A short, stable digest of the original pair, so shortened names stay unique and deterministic. */
export function shortHash(upstream: string, tool: string): string {
  return createHash('sha256').update(`${upstream}\u0000${tool}`).digest('hex').slice(0, HASH_LENGTH);
}

/**
 * The name a client sees for `tool` of `upstream`: `<upstream>__<tool>` when that is legal,
 * otherwise illegal characters become `_` and the name is cut to fit with `_<hash>` appended.
 * Pure and deterministic; routing back goes through the catalog's map, never by splitting.
 */
export function exposedToolName(upstream: string, tool: string): string {
  const plain = `${upstream}${SEPARATOR}${tool}`;
  if (EXPOSED_NAME.test(plain)) return plain;
  const suffix = `_${shortHash(upstream, tool)}`;
  const cleaned = plain.replace(/[^a-zA-Z0-9_-]/g, '_');
  return `${cleaned.slice(0, MAX_NAME_LENGTH - suffix.length)}${suffix}`;
}

/** A further variant used only when two different tools would otherwise share a name. */
export function disambiguatedName(name: string, upstream: string, tool: string, round: number): string {
  const suffix = `_${createHash('sha256').update(`${upstream}\u0000${tool}\u0000${round}`).digest('hex').slice(0, HASH_LENGTH)}`;
  return `${name.slice(0, MAX_NAME_LENGTH - suffix.length)}${suffix}`;
}
