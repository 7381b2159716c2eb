import { describe, expect, it } from 'vitest';
import { mcpParamHeaders, mcpParamMismatch, paramDeclarations } from '../../src/upstream/param-headers.js';

const schema = {
  type: 'object',
  properties: {
    region: { type: 'string', 'x-mcp-header': 'Region' },
    retries: { type: 'integer', 'x-mcp-header': 'Retries' },
    target: { type: 'object', properties: { zone: { type: 'string', 'x-mcp-header': 'Zone' } } },
    list: { type: 'array', items: { type: 'string', 'x-mcp-header': 'Ignored' } },
    plain: { type: 'string' },
  },
};
const headersOf = (headers: Record<string, string>) => (name: string) =>
  Object.entries(headers).find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];

describe('Mcp-Param-* headers (SEP-2243)', () => {
  it('finds declarations along properties chains only', () => {
    expect(paramDeclarations(schema)).toEqual([
      { path: ['region'], header: 'Region' },
      { path: ['retries'], header: 'Retries' },
      { path: ['target', 'zone'], header: 'Zone' },
    ]);
  });

  it('mirrors primitive arguments, Base64-wrapping what is not plain ASCII, and the result checks out', () => {
    const args = { region: 'Zürich ', retries: 3, target: { zone: 'b' }, plain: 'x' };
    const headers = mcpParamHeaders(schema, args);
    expect(headers).toEqual({
      'Mcp-Param-Region': `=?base64?${Buffer.from('Zürich ').toString('base64')}?=`,
      'Mcp-Param-Retries': '3',
      'Mcp-Param-Zone': 'b',
    });
    expect(mcpParamMismatch(schema, args, headersOf(headers))).toBeUndefined();
  });

  it('names what is wrong: a missing header, a different value, bad Base64, a header without its argument', () => {
    const args = { region: 'eu' };
    expect(mcpParamMismatch(schema, args, headersOf({}))).toMatch(/Mcp-Param-Region is missing/);
    expect(mcpParamMismatch(schema, args, headersOf({ 'mcp-param-region': 'us' }))).toMatch(/does not match/);
    expect(mcpParamMismatch(schema, args, headersOf({ 'Mcp-Param-Region': '=?base64?ZXU?=' }))).toMatch(
      /not valid Base64/,
    );
    expect(
      mcpParamMismatch(schema, args, headersOf({ 'Mcp-Param-Region': '=?base64?ZXU=?=' })),
    ).toBeUndefined();
    expect(mcpParamMismatch(schema, {}, headersOf({ 'Mcp-Param-Region': 'eu' }))).toMatch(
      /argument "region" is absent/,
    );
    // A value that only looks like Base64 without the full wrapper is taken literally.
    expect(
      mcpParamMismatch(
        schema,
        { region: '=?base64?ZXU=' },
        headersOf({ 'Mcp-Param-Region': '=?base64?ZXU=' }),
      ),
    ).toBeUndefined();
  });
});
