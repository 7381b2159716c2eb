/**
 * Deepest JSON the bridge takes in, from clients and from upstreams alike. No MCP message nests
 * anywhere near this; deeper ones overflowed the stack wherever a parsed message is walked
 * recursively (the SDK's `JSON.stringify`, the tool cache, snapshot listeners: between 2,000 and
 * 5,000 levels on Node 20). `JSON.parse` itself copes with any depth.
 */
export const MAX_JSON_DEPTH = 1000;

/** Whether `value` has objects or arrays nested more than `limit` levels (no recursion: the input may be deep). */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const values: unknown[] = [value];
  const depths: number[] = [1];
  while (values.length > 0) {
    const current = values.pop();
    const depth = depths.pop() ?? 1;
    if (typeof current !== 'object' || current === null) continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (typeof child !== 'object' || child === null) continue;
      values.push(child);
      depths.push(depth + 1);
    }
  }
  return false;
}
