import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The package version, shown in serverInfo, /status and `--version`. */
export const VERSION: string = (require('../package.json') as { version: string }).version;
