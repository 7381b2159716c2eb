import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/upstream/line-splitter.js';

function collect(maxLineBytes: number) {
  const lines: string[] = [];
  const events: string[] = [];
  const splitter = new LineSplitter({
    maxLineBytes,
    onLine: (line) => {
      lines.push(line.toString('utf8'));
      events.push(`line:${line.length}`);
    },
    onOverflow: () => events.push('overflow'),
    onDiscarded: (bytes) => events.push(`discarded:${bytes}`),
  });
  return { splitter, lines, events };
}

describe('LineSplitter', () => {
  it('splits lines across chunk boundaries, strips \\r\\n, and keeps empty lines', () => {
    const { splitter, lines } = collect(1024);
    for (const chunk of ['{"a"', ':1}\r', '\n\n{"b":2}\n{"c', '":3}']) splitter.push(Buffer.from(chunk));
    expect(lines).toEqual(['{"a":1}', '', '{"b":2}']);
    splitter.end();
    expect(lines).toEqual(['{"a":1}', '', '{"b":2}', '{"c":3}']);
  });

  it('never splits a multi-byte character that straddles two chunks', () => {
    const { splitter, lines } = collect(1024);
    const bytes = Buffer.from('héllo wörld ✓\n', 'utf8');
    for (let i = 0; i < bytes.length; i++) splitter.push(bytes.subarray(i, i + 1));
    expect(lines).toEqual(['héllo wörld ✓']);
  });

  it('accepts a line of exactly the limit and drops one byte more, counting all of it', () => {
    const { splitter, lines, events } = collect(8);
    splitter.push(Buffer.from('12345678\n123456789\nok\n'));
    expect(lines).toEqual(['12345678', 'ok']);
    expect(events).toEqual(['line:8', 'overflow', 'discarded:9', 'line:2']);
  });

  it('holds at most the limit while a line without a newline goes on for many chunks', () => {
    const { splitter, lines, events } = collect(1000);
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let i = 0; i < 100; i++) splitter.push(chunk);
    // One overflow note, no line, and nothing kept: the next line after the newline is intact.
    expect(events).toEqual(['overflow']);
    expect((splitter as unknown as { size: number }).size).toBe(0);
    splitter.push(Buffer.from('tail\n{"next":true}\n'));
    expect(events).toEqual(['overflow', `discarded:${100 * chunk.length + 4}`, 'line:13']);
    expect(lines).toEqual(['{"next":true}']);
  });

  it('reports an over-long last line when the stream ends without a newline', () => {
    const { splitter, events } = collect(4);
    splitter.push(Buffer.from('abcdefgh'));
    splitter.end();
    expect(events).toEqual(['overflow', 'discarded:8']);
  });

  it('joins a long line that is under the limit from its pieces', () => {
    const { splitter, lines } = collect(3 * 64 * 1024);
    const piece = Buffer.alloc(64 * 1024, 'y');
    splitter.push(piece);
    splitter.push(piece);
    splitter.push(Buffer.concat([piece.subarray(0, 10), Buffer.from('\n')]));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toHaveLength(2 * 64 * 1024 + 10);
  });
});
