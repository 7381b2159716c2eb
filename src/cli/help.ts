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
