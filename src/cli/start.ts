import { constants, existsSync } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { loadConfig } from '../config/load.js';
import type { BridgeConfig } from '../config/schema.js';
import { startDaemon } from '../daemon.js';
import { DaemonLock } from '../daemon-lock.js';
import { BridgeError, errorMessage } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { writeFileAtomic } from '../store/write-file-atomic.js';
import { VERSION } from '../version.js';
import { parseCommandArgs } from './args.js';

const EXAMPLE_CONFIG = {
  $schema: 'Rename this file to config.json and edit it. Every key but mcpServers is optional.',
  mcpServers: {
    filesystem: {
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-filesystem', '/path/to/a/folder'],
    },
    github: {
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-github'],
      env: { GITHUB_PERSONAL_ACCESS_TOKEN: '${env:GITHUB_TOKEN}' },
    },
  },
  port: 8769,
  callTimeoutMs: 120000,
};

export async function runStart(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('start', argv, { config: { type: 'string', short: 'c' } });
  const config = loadConfig({ configPath: values.config });
  if (!config.fileExists) await explainMissingConfig(config);

  await checkLogPath(config.logPath);
  const logger = createLogger({
    logPath: config.logPath,
    level: config.logLevel,
    pretty: process.stderr.isTTY === true,
  });
  // Before listening or spawning anything: a second daemon must not touch the first one's children.
  const lock = await DaemonLock.acquire(config.configDir, config.host);
  process.on('exit', () => lock.releaseSync());
  let daemon: Awaited<ReturnType<typeof startDaemon>>;
  try {
    daemon = await startDaemon({
      config,
      logger,
      reloadConfig: () => loadConfig({ configPath: values.config }),
      // Off where file events are unreliable (some network filesystems): SIGHUP still reloads.
      watchConfig: process.env.MCP_BRIDGE_WATCH_CONFIG !== '0',
      // Recorded before the upstreams start, while the event loop is still quiet.
      onListening: (port) => lock.listening(port),
    });
  } catch (error) {
    await lock.release();
    throw error;
  }
  process.stdout.write(
    `mcp-bridge ${VERSION} listening on ${daemon.url} (log: ${config.logPath}, rotated into numbered files beside it)\n`,
  );
  if (daemon.public) {
    const exposed = daemon.public.exposed();
    process.stdout.write(
      `public listener on ${config.host}:${daemon.public.port} for ${daemon.public.resource}: point your tunnel here; connectors the owner approves can use ${exposed.length > 0 ? exposed.join(', ') : 'no upstreams yet'} (docs/connectors.md)\n`,
    );
  }

  process.on('exit', () => daemon.registry.killAllSync());
  process.on('uncaughtException', uncaughtPolicy(logger));
  process.on('unhandledRejection', (error) =>
    logger.error({ err: errorMessage(error) }, 'unhandled rejection'),
  );

  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal; exiting now');
        daemon.registry.killAllSync();
        process.exit(1);
      }
      logger.info({ signal }, 'shutting down');
      daemon.close().then(
        () => lock.release().then(() => resolve(0)),
        (error: unknown) => {
          logger.error({ err: errorMessage(error) }, 'error during shutdown');
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // `systemctl reload` / `kill -HUP`: read the config again (a bad one changes nothing).
    process.on('SIGHUP', () => {
      logger.info({ signal: 'SIGHUP' }, 'reloading the config');
      void daemon.reload('SIGHUP');
    });
  });
}

async function explainMissingConfig(config: BridgeConfig): Promise<void> {
  const { file } = config;
  const example = join(config.configDir, 'config.example.json');
  try {
    await mkdir(config.configDir, { recursive: true, mode: 0o700 });
    if (!existsSync(example)) {
      await writeFileAtomic(example, `${JSON.stringify(EXAMPLE_CONFIG, null, 2)}\n`, { mode: 0o600 });
    }
    process.stderr.write(
      `mcp-bridge: no config file at ${file}; starting with no upstreams.\n` +
        `  To add MCP servers, copy ${example} to ${file} and edit it (Claude Desktop's "mcpServers" format).\n`,
    );
  } catch (error) {
    process.stderr.write(
      `mcp-bridge: no config file at ${file} (and cannot create ${config.configDir}: ${errorMessage(error)}); starting with no upstreams.\n`,
    );
  }
}

async function checkLogPath(logPath: string): Promise<void> {
  const dir = dirname(logPath);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await access(dir, constants.W_OK);
  } catch (error) {
    throw new BridgeError(
      'CONFIG_INVALID',
      `cannot write the log file ${logPath} (${errorMessage(error)}); set MCP_BRIDGE_LOG_PATH to a writable place`,
      { cause: error },
    );
  }
}

/**
 * An exception nothing caught (an event emitter of some child or socket without an 'error'
 * handler, say) is logged and survived: one upstream's bad moment must not take every other one
 * down. Only a storm of them (a daemon that is really broken) ends the process, so a service
 * manager can restart it.
 */
function uncaughtPolicy(logger: Logger, limit = 20, windowMs = 60_000): (error: unknown) => void {
  const recent: number[] = [];
  return (error) => {
    const now = Date.now();
    recent.push(now);
    while (recent.length > 0 && recent[0]! < now - windowMs) recent.shift();
    const stack = error instanceof Error ? error.stack : undefined;
    if (recent.length < limit) {
      logger.error({ err: errorMessage(error), stack }, 'uncaught exception (survived; please report it)');
      return;
    }
    logger.fatal(
      { err: errorMessage(error), stack },
      `${limit} uncaught exceptions within a minute; exiting`,
    );
    process.stderr.write(`mcp-bridge: fatal: ${errorMessage(error)}\n`);
    process.exit(1);
  };
}
