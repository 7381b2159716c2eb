import { BridgeError, errorMessage, exitCodeFor } from '../errors.js';
import { VERSION } from '../version.js';
import {
  ACTIVITY_HELP,
  AUTH_HELP,
  CLIENTS_HELP,
  CONNECTORS_HELP,
  DOCTOR_HELP,
  IMPORT_HELP,
  OPEN_HELP,
  SERVICE_HELP,
  START_HELP,
  STATUS_HELP,
  STDIO_HELP,
  TOKEN_HELP,
} from './help.js';

const MAIN_HELP = `mcp-bridge ${VERSION}: one MCP endpoint for all your MCP servers

Usage: mcp-bridge <command> [options]

Commands:
  start     run the daemon on http://127.0.0.1:8769/mcp (the default command)
  status    show the running daemon's upstreams
  open      open the live status page in the browser (a one-time login link)
  auth      log in to remote (OAuth) upstreams, once per server
  stdio     the stdio shim for Claude Desktop (forwards to the daemon)
  import    move Claude Desktop's servers into the bridge (import claude-desktop)
  clients   print settings for Claude Code, Cursor, VS Code, the Inspector (with the access token)
  token     token rotate: replace the local access token; token path: where it is
  service   service install | uninstall | status | restart | logs: run the daemon under launchd/systemd
  doctor    check the setup (node, config, port, commands on the service's PATH, logins, files)
  activity  the tool calls, prompt gets and resource reads clients made (--follow, --upstream, --json)
  connectors  connectors list: the ChatGPT/claude.ai connectors; connectors revoke ID | --all; connectors unlock
  help      show help for a command

Options:
  -h, --help       show help (also after any command: mcp-bridge start --help)
  -v, --version    print the version

Environment variables and the config file are described in the README.
`;

interface Command {
  readonly help: string;
  readonly run: (argv: string[]) => Promise<number>;
}

// Commands load their modules on demand, so `--help` and `status` never load the daemon.
const COMMANDS: Record<string, Command> = {
  start: { help: START_HELP, run: async (argv) => (await import('./start.js')).runStart(argv) },
  status: { help: STATUS_HELP, run: async (argv) => (await import('./status.js')).runStatus(argv) },
  open: { help: OPEN_HELP, run: async (argv) => (await import('./open.js')).runOpen(argv) },
  auth: { help: AUTH_HELP, run: async (argv) => (await import('./auth.js')).runAuth(argv) },
  stdio: { help: STDIO_HELP, run: async (argv) => (await import('./stdio.js')).runStdio(argv) },
  import: { help: IMPORT_HELP, run: async (argv) => (await import('./import.js')).runImport(argv) },
  clients: { help: CLIENTS_HELP, run: async (argv) => (await import('./clients.js')).runClients(argv) },
  connect: { help: CLIENTS_HELP, run: async (argv) => (await import('./clients.js')).runClients(argv) },
  token: { help: TOKEN_HELP, run: async (argv) => (await import('./token.js')).runToken(argv) },
  service: { help: SERVICE_HELP, run: async (argv) => (await import('./service.js')).runService(argv) },
  doctor: { help: DOCTOR_HELP, run: async (argv) => (await import('./doctor.js')).runDoctor(argv) },
  activity: { help: ACTIVITY_HELP, run: async (argv) => (await import('./activity.js')).runActivity(argv) },
  connectors: {
    help: CONNECTORS_HELP,
    run: async (argv) => (await import('./connectors.js')).runConnectors(argv),
  },
};

/** Parses argv, runs one command, and returns the process exit code. Never throws. */
export async function main(argv: string[]): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined || first === 'start' || (first.startsWith('-') && !isTopLevelFlag(first))) {
      return await runCommand('start', first === 'start' ? rest : argv);
    }
    if (first === '-h' || first === '--help') return print(MAIN_HELP);
    if (first === '-v' || first === '--version') return print(`${VERSION}\n`);
    if (first === 'help') {
      const topic = rest[0];
      return print(topic && COMMANDS[topic] ? COMMANDS[topic].help : MAIN_HELP);
    }
    if (COMMANDS[first]) return await runCommand(first, rest);
    throw new BridgeError(
      'USAGE',
      `unknown command "${first}"; run "mcp-bridge --help" for the list of commands`,
    );
  } catch (error) {
    process.stderr.write(`mcp-bridge: ${errorMessage(error)}\n`);
    return exitCodeFor(error);
  }
}

function isTopLevelFlag(arg: string): boolean {
  return ['-h', '--help', '-v', '--version'].includes(arg);
}

async function runCommand(name: string, argv: string[]): Promise<number> {
  const command = COMMANDS[name]!;
  if (argv.includes('--help') || argv.includes('-h')) return print(command.help);
  return command.run(argv);
}

function print(text: string): number {
  process.stdout.write(text);
  return 0;
}
