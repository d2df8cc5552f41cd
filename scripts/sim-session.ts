// One real gateway (src/main.ts as a child process) on the bundled imsg simulator, in a temp dir: shared by
// `npm run demo` (a scripted conversation) and `npm run try` (a person typing). Owns the temp dir, the config
// file, the gateway child, its JSON log lines, the CLI runner and the journal look-ups that tell when a row settled.
import { type ChildProcess, spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Injected, isGroupChat, type SentRow, SimDb, writeSimWrapper } from "./sim-db.ts";
import { inboundKey, Store } from "../src/store.ts";

export const ROOT = resolve(import.meta.dir, "..");
export const MAIN = join(ROOT, "src/main.ts");
export const DEMO_AGENT = join(ROOT, "scripts/demo-agent.ts");

/** One gateway log line (`--log-format json`). */
export interface LogLine {
  t?: string;
  level: string;
  tag?: string;
  msg: string;
}

/** Journal states after which the gateway will do nothing more for a row. */
// "merged": answered by the turn of its burst's newest row (inbound debounce).
const SETTLED = new Set(["dropped", "skipped", "merged", "done", "failed"]);

export class SimSession {
  readonly dir: string;
  readonly dbPath: string;
  readonly stateDir: string;
  readonly configPath: string;
  /** The simulator's `imsg` wrapper: what the config's cliPath must be. */
  readonly cliPath: string;
  readonly db: SimDb;
  readonly logs: LogLine[] = [];
  /** Called for every gateway log line (JSON ones parsed, anything else as level "raw"). */
  onLog?: (l: LogLine) => void;
  /** Called when the gateway exits before stop(). */
  onExit?: (code: number | null) => void;
  #gw?: ChildProcess;
  #store?: Store;
  #seen = 0;
  #closed = false;

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    this.dbPath = join(this.dir, "chat.db");
    this.stateDir = join(this.dir, "state");
    this.configPath = join(this.dir, "openclaw.json");
    this.cliPath = join(this.dir, "imsg");
    this.db = new SimDb(this.dbPath);
    writeSimWrapper(this.cliPath, { IMSG_SIM_DB: this.dbPath, IMSG_SIM_POLL_MS: "100" });
  }

  writeConfig(doc: Record<string, unknown>): void {
    writeFileSync(this.configPath, JSON.stringify(doc, null, 2));
  }

  /** The environment children get: NODE_ENV dropped (bun test sets it; the gateway must run as it does for users). */
  #env(extra: Record<string, string> = {}): Record<string, string> {
    const { NODE_ENV: _drop, ...env } = process.env;
    return { ...(env as Record<string, string>), ...extra };
  }

  /** Runs `openclaw-imsg <args…>` against this session's config and state dir. */
  cli(...args: string[]): SpawnSyncReturns<string> {
    return spawnSync(process.execPath, [MAIN, ...args, "--config", this.configPath, "--state-dir", this.stateDir], {
      encoding: "utf8",
      env: this.#env({ NO_COLOR: "1" }),
    });
  }

  /** Spawns `gateway --verbose --log-format json` and resolves once it has subscribed to the watch. */
  async start(): Promise<void> {
    const gw = spawn(process.execPath, [MAIN, "gateway", "--config", this.configPath, "--state-dir", this.stateDir, "--log-format", "json", "--verbose"], {
      env: this.#env({ OPENCLAW_IMSG_TUNING: JSON.stringify({ debounceMs: 50 }) }),
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.#gw = gw;
    let buf = "";
    gw.stderr!.setEncoding("utf8");
    gw.stderr!.on("data", (c: string) => {
      buf += c;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let l: LogLine;
        try {
          l = JSON.parse(line) as LogLine;
        } catch {
          l = { level: "raw", msg: line };
        }
        this.logs.push(l);
        this.onLog?.(l);
      }
    });
    let exited: number | null | undefined;
    gw.once("exit", (code) => {
      exited = code;
      if (!this.#closed) this.onExit?.(code);
    });
    await this.until(() => exited !== undefined || this.logs.some((l) => l.msg.startsWith("subscribed")), "the gateway to subscribe");
    if (exited !== undefined) {
      const tail = this.logs.slice(-10).map((l) => `  ${l.level}: ${l.msg}`).join("\n");
      throw new Error(`the gateway exited (code ${exited}) before subscribing:\n${tail}`);
    }
  }

  /** Polls `fn` until it returns a truthy value, or throws after `ms`. */
  async until<T>(fn: () => T | undefined | false, what: string, ms = 15_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Rows the gateway sent (through imsg) since the last call, oldest first; never blocks. */
  takeSent(): SentRow[] {
    const rows = this.db.sent().slice(this.#seen);
    this.#seen += rows.length;
    return rows;
  }

  /** Waits for `n` more sent rows and takes them. */
  async nextSent(n: number, ms = 15_000): Promise<SentRow[]> {
    await this.until(() => this.db.sent().length >= this.#seen + n, `${n} repl${n === 1 ? "y" : "ies"}`, ms);
    const rows = this.db.sent().slice(this.#seen, this.#seen + n);
    this.#seen += n;
    return rows;
  }

  /** The gateway's journal entry for an injected row once it is settled (nothing more will happen for it). */
  settled(row: Injected, accountId = "default"): { state: string; reason?: string } | undefined {
    this.#store ??= Store.open(this.stateDir);
    const r = this.#store.getInbound(accountId, inboundKey(row.guid, row.rowid));
    if (!r || !SETTLED.has(r.state)) return undefined;
    return { state: r.state, ...(r.reason ? { reason: r.reason } : {}) };
  }

  /** "+15550001111" for a DM, `"Family" (chat 3)` for a group. */
  chatLabel(s: SentRow): string {
    if (!isGroupChat(s.chatIdentifier, s.chatGuid)) return s.recipient;
    const name = this.db.chatById(s.chatId)?.displayName;
    return `${name ? `"${name}"` : s.chatIdentifier} (chat ${s.chatId})`;
  }

  /** Stops the gateway (SIGTERM, waits for it) and removes the temp dir. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const gw = this.#gw;
    if (gw && gw.exitCode === null && gw.signalCode === null) {
      const gone = new Promise((r) => gw.once("exit", r));
      gw.kill("SIGTERM");
      await gone;
    }
    this.#store?.close();
    this.db.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
