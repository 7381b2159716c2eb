export interface LineSplitterOptions {
  /** The longest line kept, in bytes (without its newline). */
  readonly maxLineBytes: number;
  /** A complete line, without its `\n` (and a trailing `\r`, if any). */
  readonly onLine: (line: Buffer) => void;
  /** The current line just passed `maxLineBytes`: it is dropped, and so is the rest of it. */
  readonly onOverflow?: (() => void) | undefined;
  /** A dropped line ended (newline or end of stream); `bytes` is its full length. */
  readonly onDiscarded?: ((bytes: number) => void) | undefined;
}

const NEWLINE = 0x0a;
const CR = 0x0d;

/**
 * Splits a byte stream into lines without ever holding more than `maxLineBytes` of one line.
 * Pieces of a line are kept as slices of the chunks they arrived in and joined once, when the
 * newline comes, so a long line costs one copy instead of one per chunk. A line past the limit is
 * counted and thrown away, never decoded: a child that writes gigabytes without a newline costs
 * CPU, not memory. Splitting on the byte 0x0a is safe for UTF-8 (it never occurs inside a
 * multi-byte sequence).
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private discarding = false;
  private discarded = 0;

  constructor(private readonly options: LineSplitterOptions) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, start);
      const end = newline === -1 ? chunk.length : newline;
      this.take(chunk, start, end);
      if (newline === -1) return;
      this.finishLine();
      start = newline + 1;
    }
  }

  /** The stream ended: a last line without a newline still counts. */
  end(): void {
    if (this.size > 0 || this.discarding) this.finishLine();
  }

  private take(chunk: Buffer, start: number, end: number): void {
    const length = end - start;
    if (this.discarding) {
      this.discarded += length;
    } else if (this.size + length > this.options.maxLineBytes) {
      this.discarded = this.size + length;
      this.parts = [];
      this.size = 0;
      this.discarding = true;
      this.options.onOverflow?.();
    } else if (length > 0) {
      this.parts.push(chunk.subarray(start, end));
      this.size += length;
    }
  }

  private finishLine(): void {
    if (this.discarding) {
      const bytes = this.discarded;
      this.discarding = false;
      this.discarded = 0;
      this.options.onDiscarded?.(bytes);
      return;
    }
    const parts = this.parts;
    const size = this.size;
    this.parts = [];
    this.size = 0;
    let line = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    this.options.onLine(line);
  }
}
