import { specTypeSchemas } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { servedToolResult } from '../../src/server/tool-result.js';

const valid = (value: unknown) => {
  const checked = specTypeSchemas.CallToolResult['~standard'].validate(value);
  return !(checked instanceof Promise) && checked.issues === undefined;
};

describe('servedToolResult (what the SDK server makes of a tools/call result)', () => {
  it('serves valid results as they are, and gives a contentless one content: []', () => {
    const results = [
      { content: [{ type: 'text', text: 'x' }] },
      {
        content: [{ type: 'text', text: 'x', _meta: { a: 1 } }],
        structuredContent: { a: 1 },
        isError: false,
        _meta: {},
      },
      { content: [{ type: 'image', data: 'AAAA', mimeType: 'image/png' }] },
      { content: [{ type: 'text', text: 'x', annotations: { audience: ['user'] } }], extra: 'kept' },
    ];
    for (const result of results) {
      expect(valid(result)).toBe(true);
      expect(servedToolResult(result)).toBe(result);
    }
    expect(servedToolResult({ structuredContent: { a: 1 } })).toEqual({
      structuredContent: { a: 1 },
      content: [],
    });
  });

  it('refuses what the spec schema refuses, with -32602', () => {
    const results = [
      { content: [{ type: 'text' }] },
      { content: 'not an array' },
      { content: [], isError: 'yes' },
      { content: [{ type: 'text', text: 'x', annotations: { audience: 'user' } }] },
      { content: [], _meta: 5 },
    ];
    for (const result of results) {
      expect(valid(result)).toBe(false);
      expect(() => servedToolResult(result)).toThrow(expect.objectContaining({ code: -32602 }));
    }
  });
});
