import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../store/write-file-atomic.js';
import { VERSION } from '../version.js';
import type { Catalog } from './catalog.js';

/** Read by the stdio shim (src/shim/served-cache.ts), which repeats the name to load no daemon code. */
export const SERVED_CACHE_FILE = 'served-cache.json';
const DEBOUNCE_MS = 500;

export interface ServedCacheOptions {
  readonly configDir: string;
  readonly catalog: Catalog;
  /** What initialize answers (the served capabilities). */
  readonly capabilities: Record<string, unknown>;
  readonly logger: Logger;
  readonly debounceMs?: number;
  /**
   * Whether every upstream has come up or given up: a starting daemon shows no prompts or resources
   * of upstreams still connecting, and that must not replace a good cache.
   */
  readonly settled: () => boolean;
  /** Fires when an upstream's state changes (the lists may not change when one gives up). */
  readonly onStateChange: (listener: () => void) => () => void;
}

/**
 * Keeps `served-cache.json` equal to what clients are shown: the merged lists under their exposed
 * names and the initialize result. Only the catalog can compute those names (prefixes, hashes,
 * clashes), so the shim, which answers Claude Desktop before the daemon is up, reads them here.
 * Debounced (a starting daemon changes its lists once per upstream), atomic, 0600 (tool
 * descriptions are not secrets, but they are the user's business).
 */
export class ServedCacheWriter {
  readonly file: string;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private last = '';
  private readonly stops: (() => void)[];

  constructor(private readonly options: ServedCacheOptions) {
    this.file = join(options.configDir, SERVED_CACHE_FILE);
    this.stops = [
      options.catalog.onChanged(() => this.schedule()),
      options.onStateChange(() => this.schedule()),
    ];
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.options.debounceMs ?? DEBOUNCE_MS);
    this.timer.unref();
  }

  /** Writes the current surface now (if it changed); resolves when it is on disk. */
  flush(): Promise<void> {
    const { catalog } = this.options;
    if (!this.options.settled()) return this.writing;
    const text = JSON.stringify({
      version: 1,
      serverInfo: { name: 'mcp-bridge', version: VERSION },
      capabilities: this.options.capabilities,
      instructions: catalog.instructions(),
      tools: catalog.listTools(),
      prompts: catalog.listPrompts(),
      resources: catalog.listResources(),
      resourceTemplates: catalog.listResourceTemplates(),
    });
    if (text === this.last) return this.writing;
    this.last = text;
    this.writing = this.writing
      .then(() => writeFileAtomic(this.file, text, { mode: 0o600 }))
      .catch((error: unknown) => {
        this.last = '';
        this.options.logger.warn(
          { file: this.file, err: errorMessage(error) },
          'could not write the served cache',
        );
      });
    return this.writing;
  }

  /** Stops listening; writes what is pending so the next shim sees the latest surface. */
  async close(): Promise<void> {
    for (const stop of this.stops) stop();
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      await this.flush();
    }
    await this.writing;
  }
}
