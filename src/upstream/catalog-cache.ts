import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Tool } from '@modelcontextprotocol/client';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { parseJsonText } from '../store/json-file.js';
import { moveAside } from '../store/move-aside.js';
import { writeFileAtomic } from '../store/write-file-atomic.js';

const CacheFileSchema = z.object({
  version: z.literal(1),
  upstreams: z.record(
    z.string(),
    z.object({
      savedAt: z.string(),
      tools: z.array(z.looseObject({ name: z.string() })),
    }),
  ),
});
type CacheFile = z.infer<typeof CacheFileSchema>;

const CACHE_FILE_NAME = 'tools-cache.json';

export interface CatalogCacheOptions {
  /** The config dir; the cache lives in `tools-cache.json` there. */
  readonly configDir: string;
  readonly logger: Logger;
}

/**
 * The last good tool list of every upstream, on disk, so a restarted daemon can answer tools/list
 * at once. Writes are atomic and serialized; a corrupt file is moved aside, never trusted.
 */
export class CatalogCache {
  readonly file: string;
  private data: CacheFile = { version: 1, upstreams: {} };
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(private readonly options: CatalogCacheOptions) {
    this.file = join(options.configDir, CACHE_FILE_NAME);
  }

  /** Reads the file once at start-up. A missing file is an empty cache. */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.options.logger.warn(
          { file: this.file, err: errorMessage(error) },
          'cannot read the tool cache; starting without it',
        );
      }
      return;
    }
    // The problem says where, never what: tool descriptions can hold anything a server sent.
    const parsed = parseJsonText(text, CacheFileSchema);
    if (parsed.ok) {
      this.data = parsed.value;
      return;
    }
    // If it cannot be moved, the next save replaces it atomically: a cache is only an optimization.
    const aside = await moveAside(this.file);
    this.options.logger.warn(
      { file: this.file, movedTo: aside ?? null, problem: parsed.problem },
      aside
        ? 'the tool cache is corrupt; moved it aside and starting without it (it is rebuilt as upstreams come up)'
        : 'the tool cache is corrupt and could not be moved aside; starting without it (the next save replaces it)',
    );
  }

  /** The cached tools of an upstream, if any were ever listed. */
  get(upstream: string): Tool[] | undefined {
    return this.data.upstreams[upstream]?.tools as Tool[] | undefined;
  }

  /** Records a fresh tool list and schedules an atomic write; resolves when it is on disk. */
  save(upstream: string, tools: readonly Tool[]): Promise<void> {
    this.data = {
      ...this.data,
      upstreams: {
        ...this.data.upstreams,
        [upstream]: { savedAt: new Date().toISOString(), tools: [...tools] },
      },
    };
    this.dirty = true;
    this.writing = this.writing.then(() => this.write());
    return this.writing;
  }

  /** Resolves once everything recorded so far is on disk. */
  flush(): Promise<void> {
    return this.writing;
  }

  private async write(): Promise<void> {
    // Several saves queued behind one write collapse into a single write of the latest data.
    if (!this.dirty) return;
    this.dirty = false;
    try {
      await writeFileAtomic(this.file, `${JSON.stringify(this.data, null, 2)}\n`, { mode: 0o600 });
    } catch (error) {
      this.options.logger.warn({ file: this.file, err: errorMessage(error) }, 'cannot write the tool cache');
    }
  }
}
