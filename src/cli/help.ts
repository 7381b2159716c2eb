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
