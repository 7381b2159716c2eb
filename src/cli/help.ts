/** Help texts, kept apart so printing them loads nothing else. */

export const START_HELP = `Usage: mcp-bridge start [--config PATH]

Runs the daemon: every upstream in the config file behind one MCP endpoint
(default http://127.0.0.1:8769/mcp). Stops cleanly on Ctrl-C / SIGTERM.

Options:
  -c, --config PATH   config file (default: $MCP_BRIDGE_CONFIG, else
                      $MCP_BRIDGE_CONFIG_DIR/config.json, else ~/.config/mcp-bridge/config.json)
  -h, --help          show this help

Exit codes: 0 stopped cleanly, 1 runtime error (e.g. port in use), 2 bad config or usage.
`;

export const STATUS_HELP = `Usage: mcp-bridge status [--json] [--config PATH]

Asks the running daemon for the state of every upstream.

Options:
  --json              print the raw JSON of GET /status
  -c, --config PATH   config file (to find the daemon's port and host)
  -h, --help          show this help

Exit codes: 0 daemon running, 1 daemon not reachable, 2 bad config or usage.
`;

export const OPEN_HELP = `Usage: mcp-bridge open [--no-open] [--config PATH]

Opens the daemon's status page (http://127.0.0.1:8769/) in the default browser: every upstream's
state, errors and their fixes, the connected clients and the last tool calls, live. The page
needs the local access token like /mcp does, so this command asks the running daemon (after it
proved it knows the token) for a login link that works once, within 60 seconds. The browser keeps
the login until it is closed, the daemon restarts or the token is rotated. The page never shows
the token itself: "mcp-bridge clients" prints the client settings with it.

Options:
  --no-open           print the link instead (for another browser on this machine)
  -c, --config PATH   config file (to find the daemon's port and host)
  -h, --help          show this help

Exit codes: 0 opened (or printed), 1 daemon not reachable, 2 bad config or usage.
`;

export const AUTH_HELP = `Usage: mcp-bridge auth [NAME...] [--no-open] [--timeout SECONDS] [--config PATH]
       npm run auth [-- NAME...]

Logs in to remote MCP servers that use OAuth. Without NAME, logs in to every upstream
that needs it (state needs_auth in a running daemon, or no stored login). The login URL
is always printed on its own line, and opened in the default browser unless --no-open.
The browser comes back to http://127.0.0.1:8769/oauth/callback: the running daemon
takes the tokens at once; without a daemon, this command listens there itself.
Tokens are kept in oauth-state.json (mode 0600) next to the config and refreshed by
the daemon; you should not need to log in again unless the server revokes access.

Options:
  --no-open           only print the URL (headless machines, SSH sessions)
  --timeout SECONDS   how long to wait for the browser (default 300)
  -c, --config PATH   config file
  -h, --help          show this help

Exit codes: 0 logged in, 1 a login failed, 2 bad config or usage.
`;

export const STDIO_HELP = `Usage: mcp-bridge stdio [--start-daemon] [--wait SECONDS] [--url URL] [--config PATH]
       mcp-bridge stdio --print-config

The stdio shim for clients that only speak stdio (Claude Desktop): forwards every JSON-RPC
message between stdin/stdout and the daemon at http://127.0.0.1:8769/mcp. A daemon restart
is hidden: the shim opens a new session, repeats requests that only read, and answers a
tool call that may already have run with an error saying so. stdout carries JSON-RPC only;
messages for people go to stderr.

Options:
  --print-config      print the Claude Desktop config entry for this installation
  --start-daemon      start the daemon in the background if nothing answers
  --wait SECONDS      how long requests wait for an unreachable daemon (default 30)
  --url URL           the daemon's MCP endpoint (default: from MCP_BRIDGE_PORT/HOST/MCP_PATH,
                      else the config file, else http://127.0.0.1:8769/mcp)
  -c, --config PATH   config file (for the endpoint, and passed on by --start-daemon)
  -h, --help          show this help
`;

export const IMPORT_HELP = `Usage: mcp-bridge import claude-desktop [--from PATH] [--rewrite] [--dry-run] [--config PATH]

Copies the stdio servers of Claude Desktop's config into the mcp-bridge config. Names that
already exist in the bridge config are skipped (and reported), as are remote entries and the
shim itself. With --rewrite, the imported servers are then replaced in Claude Desktop's config
by one entry that runs \`mcp-bridge stdio\`, after a timestamped backup of that file.

Options:
  --from PATH         Claude Desktop's config (default: its usual place on this OS)
  --rewrite           also rewrite Claude Desktop's config to use the shim
  --dry-run           show what would change, write nothing
  -c, --config PATH   the mcp-bridge config to add to (default: the usual one)
  -h, --help          show this help
`;

export const CLIENTS_HELP = `Usage: mcp-bridge clients [--json] [--config PATH]
       (also: mcp-bridge connect)

Prints ready-to-paste settings for Claude Desktop, Claude Code, Cursor, VS Code, the MCP Inspector
and the Python SDK. Those for HTTP clients carry the local access token as an Authorization header
(the token is created if the daemon has not run yet). Claude Desktop uses the stdio shim, which reads
the token itself.

Options:
  --json              the same as JSON
  -c, --config PATH   config file (for the port, host and mcpPath)
  -h, --help          show this help
`;

export const TOKEN_HELP = `Usage: mcp-bridge token rotate | path [--config PATH]

The local access token every request to the daemon needs (but /healthz and the OAuth callback).
It lives in access-token in the config dir (mode 0600); "auth": "none" in the config turns it off.

  rotate   write a new token; the running daemon uses it within a second. The shim and the CLI
           read the file themselves; clients with a header need "mcp-bridge clients" again.
  path     print where the token file is
`;

export const SERVICE_HELP = `Usage: mcp-bridge service install [--dry-run] [--force] | uninstall | status | restart | logs [--follow] [--lines N]

Runs the daemon as a service of your user, started at login and restarted after a crash:
a systemd --user unit (~/.config/systemd/user/mcp-bridge.service) on Linux, a LaunchAgent
(~/Library/LaunchAgents/dev.mcp-bridge.plist) on macOS. The unit runs this node and this
bin/mcp-bridge.js by absolute path, with your login shell's PATH (so npx, uvx, docker and
Homebrew are found as in a terminal) and the MCP_BRIDGE_* variables set now, except secrets.

  install     write the unit (again: it is updated in place) and start it
  uninstall   stop it and remove the unit
  status      what systemctl / launchctl say about it
  restart     restart it (after an upgrade, or a PATH change: install again instead)
  logs        the last lines of the daemon's log file; --follow keeps printing

Options:
  --dry-run       print the unit file install would write, change nothing
  --force         install even from a temporary dir or an npx cache (refused by default: the
                  unit would point at a path that vanishes)
  -f, --follow    logs: keep printing new lines
  -n, --lines N   logs: how many lines (default 100)
  -h, --help      show this help

Where systemctl --user or launchctl does not answer (no user session bus, a container), install
still writes the file, then exits 1 with the commands to run in your login session.
Exit codes: 0 done, 1 not done (the message says why), 2 usage.
`;

export const DOCTOR_HELP = `Usage: mcp-bridge doctor [--json] [--config PATH]

Checks the setup, one line per check, and says how to fix each one that fails: the Node
version, the config file, the port (free, or our daemon answering there with this version),
every stdio upstream's command on the PATH the service gets (the installed unit's, else your
login shell's), OAuth logins (from the running daemon), modes of the token files and the
config dir, the service, Claude Desktop's config (the shim entry, no server both there and in
the bridge) and the log file. With public.url set, also the public listener: the URL, the owner
password (where it is set, never its value), its port and connectors.json.

Options:
  --json              the checks as JSON
  -c, --config PATH   config file
  -h, --help          show this help

Exit codes: 0 every check passed (or does not apply), 1 a check failed.
`;

export const ACTIVITY_HELP = `Usage: mcp-bridge activity [--follow] [--upstream NAME] [--json] [--limit N]

Prints the activity log: one line per tool call, prompt get and resource read, with the client,
the name, the outcome (ok, tool error, or the error code), the time it took and the result size.
Calls that never reached an upstream are there too. The log is mcp-bridge-activity.<n>.jsonl
beside the daemon's log ($MCP_BRIDGE_LOG_PATH), rotated by size; arguments and results are in
it only with "activityLog": { "arguments": true } in the config, secrets redacted.

Options:
  -f, --follow        keep printing new entries until Ctrl-C
  --upstream NAME     only the calls that went to this upstream
  --json              the raw JSON lines
  -n, --limit N       how many entries (default 100; 0 for all)
  -h, --help          show this help
`;

export const CONNECTORS_HELP = `Usage: mcp-bridge connectors list [--json] [--config PATH]
       mcp-bridge connectors revoke <client-id> | --all [--json] [--config PATH]
       mcp-bridge connectors unlock [--json] [--config PATH]

The hosted connectors (ChatGPT, claude.ai) the owner approved on the public listener
(public.url; see docs/connectors.md). With the daemon running, the command asks it; when the
daemon is not running, it reads or changes connectors.json in the config dir itself, and says so.

  list     what the public listener exposes, whether its consent page is locked (and for how
           long), then one line per connector: name, client id, redirect host, created, last
           used, scopes
  revoke   remove a connector's registration, grants and tokens: its tokens stop working at once
           and its open sessions end; it must be connected (and approved) again. --all: every one
  unlock   clear the lock that 5 wrong passwords in 15 minutes put on the consent page (and the
           count of wrong passwords) in the running daemon; says whether it was locked and for how
           long. The count lives in the daemon's memory: with no daemon there is nothing to unlock

Options:
  --json              the same as JSON
  --all               revoke: every connector
  -c, --config PATH   config file
  -h, --help          show this help

Exit codes: 0 done, 1 unknown client id (CONNECTOR_NOT_FOUND) or daemon not reachable, 2 usage.
`;
