import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { NotDelivered, wasRefused } from './http-read.js';

export interface ShimAccess {
  /** The token file's current token, if there is one. */
  token(): string | undefined;
  /** Whether `proof` is the daemon's answer to `challenge` on `port` for `token` (see challengeProof). */
  proofMatches(token: string, port: number, challenge: string, proof: unknown): boolean;
  /** What the shim sends after initialize: good for that one session only (see sessionCredential). */
  sessionCredential(token: string, sessionId: string): string;
  /**
   * The local config does not say `"auth": "none"`: a daemon that claims to need no token while a
   * token file exists is not believed (it may be a program squatting on the port).
   */
  readonly required: boolean;
  /** Where the token lives, for error messages. */
  readonly file: string;
}

export interface ProofOptions {
  /** The daemon's MCP endpoint (its /healthz is asked). */
  readonly url: string;
  readonly version: string;
  readonly waitMs: number;
  readonly log: (line: string) => void;
  readonly access?: ShimAccess | undefined;
  readonly startDaemon?: (() => Promise<void>) | undefined;
}

/** How long a proof of the listener covers 2026-07-28 requests (while no connection failed). */
const PROOF_FRESH_MS = 1000;

/**
 * Whether what answers on the daemon's port is our daemon: it must prove it knows the local access
 * token before the token (or a request) is sent to it, so a program squatting on the port never
 * receives either. Also where the shim learns which token to send.
 */
export class DaemonProof {
  private versionChecked = false;
  /** The last proof for 2026-07-28 requests; `epoch` counts connections lost since. */
  private proof: { at: number; epoch: number; token: Promise<string | undefined> } | undefined;
  private epoch = 0;
  private waiting: Promise<void> | undefined;

  constructor(private readonly options: ProofOptions) {}

  /** A connection failed or a stream ended: the next stateless request proves the listener again. */
  connectionLost(): void {
    this.epoch++;
  }

  /**
   * The raw token for a 2026-07-28 request (no session credential exists there): proved again
   * unless a proof began within the last second and no connection failed or stream ended since.
   */
  provenToken(force = false): Promise<string | undefined> {
    const now = Date.now();
    const last = this.proof;
    if (!force && last && now - last.at < PROOF_FRESH_MS && last.epoch === this.epoch) return last.token;
    const token = this.verify();
    const proof = { at: now, epoch: this.epoch, token };
    this.proof = proof;
    token.catch(() => {
      if (this.proof === proof) this.proof = undefined;
    });
    return token;
  }

  /** Resolves once the daemon proves itself (starting it, with --start-daemon); single-flight. */
  daemonUp(): Promise<void> {
    this.waiting ??= (async () => {
      const deadline = Date.now() + this.options.waitMs;
      let started = false;
      for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
        try {
          await this.provenToken(true);
          return;
        } catch (error) {
          if (!(error instanceof NotDelivered) || Date.now() > deadline)
            throw error instanceof NotDelivered ? new Error(error.message) : error;
          if (!started && this.options.startDaemon) {
            started = true;
            await this.options.startDaemon().catch(() => {});
          }
          await sleep(delay);
        }
      }
    })().finally(() => {
      this.waiting = undefined;
    });
    return this.waiting;
  }

  /**
   * Asks /healthz to prove it knows the local access token before the token is sent anywhere;
   * resolves with the token to send (none when the daemon asks for none). Also checks the version.
   */
  async verify(): Promise<string | undefined> {
    const { url, access } = this.options;
    const challenge = randomBytes(16).toString('base64url');
    const health = new URL(`/healthz?challenge=${challenge}`, url);
    let body: { version?: string; auth?: string; proof?: unknown };
    try {
      body = (await (await fetch(health, { signal: AbortSignal.timeout(5000) })).json()) as typeof body;
    } catch (error) {
      const code = wasRefused(error);
      if (code) throw new NotDelivered(`nothing answers at ${url} (${code})`);
      throw new Error(`what answers at ${health.origin} is not an mcp-bridge daemon (${String(error)})`);
    }
    if (!this.versionChecked && body.version) {
      this.versionChecked = true;
      if (body.version !== this.options.version) {
        this.options.log(
          `version mismatch: this shim is mcp-bridge ${this.options.version}, the daemon is ${body.version}; restart the daemon (or point Claude Desktop at the same installation) so both match`,
        );
      }
    }
    if (!access) return undefined;
    const token = access.token();
    if (body.auth !== 'token') {
      // A daemon that asks for no token is sent none; but with a token file and a config that wants
      // one, it is more likely a program squatting on the port than our daemon.
      if (!token || !access.required) return undefined;
      throw new Error(
        `what answers at ${health.origin} does not ask for the access token in ${access.file}, although the config does (DAEMON_NOT_VERIFIED); if it is an older mcp-bridge, restart it; if "auth" should be "none", set it in the config`,
      );
    }
    if (!token) {
      throw new Error(
        `the daemon needs the local access token, and ${access.file} is missing or unreadable; start the daemon once as this user to create it`,
      );
    }
    const port = Number(health.port || (health.protocol === 'https:' ? 443 : 80));
    if (!access.proofMatches(token, port, challenge, body.proof)) {
      throw new Error(
        `what answers at ${health.origin} could not prove it knows the access token in ${access.file}, so the shim did not send it (DAEMON_NOT_VERIFIED); is another program using the port?`,
      );
    }
    return token;
  }
}
