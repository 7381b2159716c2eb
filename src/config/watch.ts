import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

export interface ConfigWatchOptions {
  readonly file: string;
  readonly logger: Logger;
  /** Called once the file has been quiet for `debounceMs` after a change. */
  readonly onChange: () => void;
  readonly debounceMs?: number;
}

/**
 * Watches the config file's *directory*, filtered by name: editors that save by writing a temp file
 * and renaming it over the original replace the inode, which a watch on the file itself would lose.
 * A burst of events (one save is often several) becomes one call. If the watch breaks (the
 * directory was removed or renamed), it is armed again every second until it works.
 */
export function watchConfigFile(options: ConfigWatchOptions): () => void {
  const dir = dirname(options.file);
  const name = basename(options.file);
  const debounceMs = options.debounceMs ?? 300;
  let watcher: FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let rearm: NodeJS.Timeout | undefined;
  let closed = false;

  const changed = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      if (!closed) options.onChange();
    }, debounceMs);
    debounce.unref();
  };
  const arm = () => {
    rearm = undefined;
    if (closed) return;
    try {
      watcher = watch(dir, { persistent: false }, (_event, filename) => {
        // Some platforms report no name; then any change in the directory counts.
        if (filename === null || filename === undefined || filename.toString() === name) changed();
      });
      watcher.on('error', (error) => {
        options.logger.warn(
          { err: errorMessage(error), dir },
          'watching the config directory failed; retrying',
        );
        watcher?.close();
        watcher = undefined;
        retry();
      });
    } catch (error) {
      options.logger.debug({ err: errorMessage(error), dir }, 'cannot watch the config directory yet');
      retry();
    }
  };
  const retry = () => {
    if (closed || rearm) return;
    rearm = setTimeout(() => {
      arm();
      // Whatever happened to the file while nobody watched is picked up now.
      if (watcher) changed();
    }, 1000);
    rearm.unref();
  };
  arm();
  return () => {
    closed = true;
    clearTimeout(debounce);
    clearTimeout(rearm);
    watcher?.close();
  };
}
