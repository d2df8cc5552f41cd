// The gateway's whole memory: one SQLite file (node:sqlite, so Bun and Deno share it). Every SQL statement of the
// project lives here, behind typed methods; times are epoch milliseconds.
import { chmodSync, closeSync, existsSync, openSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { CliError } from "./errors.ts";
import { checkStateDir, ensureStateDir } from "./state-dir.ts";

/** Inbound journal states; see DESIGN.md (new → dropped | pairing | skipped | dispatched → replied → done | failed). */
export type InboundState = "new" | "dropped" | "pairing" | "skipped" | "dispatched" | "replied" | "done" | "failed";
/** Outbound chunk states: "unknown" = the send may or may not have happened (crash, timeout). */
export type OutboundState = "pending" | "sent" | "failed" | "unknown";

/** What the watcher hands to `journalInbound`. */
export interface InboundInput {
  guid: string;
  rowid: number;
  chatId: number;
  sender: string;
  isFromMe: boolean;
  createdAt: number;
  message: unknown;
}

/** A journaled inbound message. */
export interface InboundRow {
  accountId: string;
  key: string;
  guid: string;
  rowid: number;
  chatId: number;
  sender: string;
  isFromMe: boolean;
  createdAt: number;
  receivedAt: number;
  updatedAt: number;
  state: InboundState;
  reason?: string;
  message: unknown;
  reply?: unknown;
  agentId?: string;
  sessionKey?: string;
}

/** Fields `setInbound` may change; undefined fields are left alone. */
export interface InboundPatch {
  state?: InboundState;
  reason?: string;
  reply?: unknown;
  agentId?: string;
  sessionKey?: string;
}

/** One outbound chunk or file to record before sending. */
export interface OutboundInput {
  accountId: string;
  inboundKey?: string;
  seq: number;
  target: string;
  chatId?: number;
  text: string;
  file?: string;
  /** Normalized text for echo matching (sanitize.ts normalizeForEcho); empty → not matchable. */
  echoKey?: string;
}

/** A recorded outbound chunk or file. */
export interface OutboundRow {
  id: number;
  accountId: string;
  inboundKey?: string;
  seq: number;
  target: string;
  chatId?: number;
  text: string;
  file?: string;
  state: OutboundState;
  messageId?: number;
  messageGuid?: string;
  error?: string;
  /** The imsg child the part was handed to (for crash reconciliation). */
  senderPid?: number;
  createdAt: number;
  updatedAt: number;
}

/** A pending pairing request as stored (times in epoch ms). */
export interface PairingRequestRow {
  accountId: string;
  senderId: string;
  code: string;
  createdAt: number;
  lastSeenAt: number;
  meta: Record<string, string>;
}

/** A sender approved through pairing. */
export interface ApprovedRow {
  accountId: string;
  senderId: string;
  approvedAt: number;
}

/** One turn of a session's history. */
export interface HistoryEntry {
  role: "user" | "assistant";
  text: string;
}

/** A group message that was not addressed to the agent, kept as context for the next one that is. */
export interface GroupPendingEntry {
  sender: string;
  text: string;
  at: number;
}

/** Rows deleted by `prune`, per table. */
export interface PruneResult {
  inbound: number;
  outbound: number;
  history: number;
  groupPending: number;
}

/** Status numbers for probe/status output. */
export interface Activity {
  lastInboundAt?: number;
  lastOutboundAt?: number;
  backlog: number;
}

/**
 * Ordered schema migrations: entry i takes `user_version` from i to i+1. Append; never edit a shipped entry.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE cursors (account_id TEXT PRIMARY KEY, rowid INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE TABLE inbound (
    account_id TEXT NOT NULL, key TEXT NOT NULL, guid TEXT NOT NULL, rowid INTEGER NOT NULL,
    chat_id INTEGER NOT NULL, sender TEXT NOT NULL, is_from_me INTEGER NOT NULL, created_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT,
    message_json TEXT NOT NULL, reply_json TEXT, agent_id TEXT, session_key TEXT,
    PRIMARY KEY (account_id, key)
  );
  CREATE INDEX inbound_by_state ON inbound (account_id, state, rowid);
  CREATE TABLE outbound (
    id INTEGER PRIMARY KEY AUTOINCREMENT, account_id TEXT NOT NULL, inbound_key TEXT, seq INTEGER NOT NULL,
    target TEXT NOT NULL, chat_id INTEGER, text TEXT NOT NULL, file TEXT, state TEXT NOT NULL,
    message_id INTEGER, message_guid TEXT, error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
  );
  CREATE UNIQUE INDEX outbound_by_inbound ON outbound (account_id, inbound_key, seq) WHERE inbound_key IS NOT NULL;
  CREATE INDEX outbound_by_time ON outbound (account_id, created_at);
  CREATE INDEX outbound_by_guid ON outbound (account_id, message_guid) WHERE message_guid IS NOT NULL;
  CREATE TABLE history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_key TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')), text TEXT NOT NULL, at INTEGER NOT NULL
  );
  CREATE INDEX history_by_session ON history (session_key, id);
  CREATE TABLE group_pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT, account_id TEXT NOT NULL, chat_id INTEGER NOT NULL,
    sender TEXT NOT NULL, text TEXT NOT NULL, at INTEGER NOT NULL
  );
  CREATE INDEX group_pending_by_chat ON group_pending (account_id, chat_id, id);
  CREATE TABLE pairing_requests (
    account_id TEXT NOT NULL, sender_id TEXT NOT NULL, code TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL, meta_json TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (account_id, sender_id)
  );
  CREATE TABLE approved_senders (
    account_id TEXT NOT NULL, sender_id TEXT NOT NULL, approved_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, sender_id)
  );
  `,
  // 2: echo lookups by normalized text (indexed) instead of scanning every recent outbound row.
  `
  ALTER TABLE outbound ADD COLUMN echo_key TEXT;
  CREATE INDEX outbound_by_echo ON outbound (account_id, echo_key, created_at) WHERE echo_key IS NOT NULL;
  `,
  // 3: the pid of the imsg child a part was handed to: after a crash, wait for that child before judging the part.
  `
  ALTER TABLE outbound ADD COLUMN sender_pid INTEGER;
  `,
  // 4: finding iCloud twins (the same message written twice with different guids) by chat, sender and time.
  `
  CREATE INDEX inbound_by_chat_time ON inbound (account_id, chat_id, created_at);
  `,
];

const UNFINISHED: readonly InboundState[] = ["new", "dispatched", "replied"];
const UNFINISHED_SQL = UNFINISHED.map((s) => `'${s}'`).join(", ");
const DAY_MS = 86_400_000;

type Row = Record<string, unknown>;

/** The journal key of an inbound row: its guid, or `rowid:<id>` for the rare row without one. */
export function inboundKey(guid: string, rowid: number): string {
  return guid !== "" ? guid : `rowid:${rowid}`;
}

/**
 * Brings `db` up to `migrations.length`, one transaction per step (a failing step leaves the previous version).
 * Re-reads the version under the write lock so two processes opening a fresh file do not both migrate.
 */
export function migrate(db: DatabaseSync, migrations: readonly string[] = MIGRATIONS): number {
  for (;;) {
    db.exec("BEGIN IMMEDIATE");
    try {
      const version = userVersion(db);
      if (version > migrations.length) {
        throw new CliError(
          `state database schema v${version} is newer than this binary supports (v${migrations.length})`,
          undefined,
          "upgrade openclaw-imsg, or point --state-dir at a fresh directory",
        );
      }
      if (version === migrations.length) {
        db.exec("COMMIT");
        return version;
      }
      db.exec(migrations[version]!);
      // PRAGMA does not take bound parameters; the value is our own integer.
      db.exec(`PRAGMA user_version = ${version + 1}`);
      db.exec("COMMIT");
    } catch (err) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw err;
    }
  }
}

function userVersion(db: DatabaseSync): number {
  return Number((db.prepare("PRAGMA user_version").get() as Row).user_version);
}

function json(v: unknown): string | null {
  return v === undefined ? null : JSON.stringify(v);
}

function parseJson(v: unknown): unknown {
  return typeof v === "string" ? JSON.parse(v) : undefined;
}

// SQLite NULL becomes an absent optional field rather than `null` in the typed rows.
function opt<T>(v: unknown): T | undefined {
  return v === null || v === undefined ? undefined : (v as T);
}

function toInbound(r: Row): InboundRow {
  return {
    accountId: r.account_id as string,
    key: r.key as string,
    guid: r.guid as string,
    rowid: r.rowid as number,
    chatId: r.chat_id as number,
    sender: r.sender as string,
    isFromMe: r.is_from_me === 1,
    createdAt: r.created_at as number,
    receivedAt: r.received_at as number,
    updatedAt: r.updated_at as number,
    state: r.state as InboundState,
    reason: opt(r.reason),
    message: parseJson(r.message_json),
    reply: parseJson(r.reply_json),
    agentId: opt(r.agent_id),
    sessionKey: opt(r.session_key),
  };
}

function toOutbound(r: Row): OutboundRow {
  return {
    id: r.id as number,
    accountId: r.account_id as string,
    inboundKey: opt(r.inbound_key),
    seq: r.seq as number,
    target: r.target as string,
    chatId: opt(r.chat_id),
    text: r.text as string,
    file: opt(r.file),
    state: r.state as OutboundState,
    messageId: opt(r.message_id),
    messageGuid: opt(r.message_guid),
    error: opt(r.error),
    senderPid: opt(r.sender_pid),
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
  };
}

function toPairing(r: Row): PairingRequestRow {
  return {
    accountId: r.account_id as string,
    senderId: r.sender_id as string,
    code: r.code as string,
    createdAt: r.created_at as number,
    lastSeenAt: r.last_seen_at as number,
    meta: JSON.parse(r.meta_json as string) as Record<string, string>,
  };
}

// The db and its WAL/shm side files hold message text and handles: owner-only.
function tighten(path: string): void {
  for (const p of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(p)) chmodSync(p, 0o600);
}

/** The state database. Synchronous; safe to open from several processes at once (WAL + busy timeout). */
export class Store {
  readonly #db: DatabaseSync;
  readonly #stmts = new Map<string, StatementSync>();

  private constructor(
    /** Absolute path of the database file. */
    readonly path: string,
    db: DatabaseSync,
    /** The clock every timestamp comes from (injectable for tests). */
    readonly now: () => number,
  ) {
    this.#db = db;
  }

  /** Opens `<stateDir>/state.db` if it exists (read-only commands: no state yet means nothing to show). */
  static openIfExists(stateDir: string, opts: { now?: () => number } = {}): Store | undefined {
    if (!checkStateDir(stateDir) || !existsSync(join(stateDir, "state.db"))) return undefined;
    return Store.open(stateDir, opts);
  }

  /** Opens (creating and migrating as needed) `<stateDir>/state.db`; an unsafe state dir is refused. */
  static open(stateDir: string, opts: { now?: () => number } = {}): Store {
    ensureStateDir(stateDir);
    const path = join(stateDir, "state.db");
    // Create the file 0600 before SQLite does: SQLite gives -wal/-shm the main file's mode.
    closeSync(openSync(path, "a", 0o600));
    const db = new DatabaseSync(path);
    try {
      // busy_timeout first: the other pragmas and migrations may already need the lock.
      db.exec("PRAGMA busy_timeout = 5000");
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA foreign_keys = ON");
      db.exec("PRAGMA synchronous = NORMAL");
      // Deleted (pruned) message text is overwritten, not left readable in free pages.
      db.exec("PRAGMA secure_delete = ON");
      migrate(db);
    } catch (err) {
      db.close();
      throw err;
    }
    tighten(path);
    return new Store(path, db, opts.now ?? Date.now);
  }

  /** Closes the database; the instance is unusable afterwards. */
  close(): void {
    this.#stmts.clear();
    this.#db.close();
  }

  #q(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) this.#stmts.set(sql, (s = this.#db.prepare(sql)));
    return s;
  }

  #get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.#q(sql).get(...params) as Row | undefined;
  }

  #all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.#q(sql).all(...params) as Row[];
  }

  #run(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.#q(sql).run(...params).changes);
  }

  // IMMEDIATE takes the write lock up front, so busy_timeout applies instead of a deadlock-avoiding SQLITE_BUSY.
  /** Runs `fn` in one transaction (joining the enclosing one when called inside `transaction`). */
  transaction<T>(fn: () => T): T {
    return this.#tx(fn);
  }

  #tx<T>(fn: () => T): T {
    if (this.#db.isTransaction) return fn();
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      this.#db.exec("COMMIT");
      return out;
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw err;
    }
  }

  // ---- cursor -------------------------------------------------------------------------------------------------

  /** The highest imsg ROWID journaled for the account (the next `since_rowid`), if any. */
  getCursor(accountId: string): number | undefined {
    return opt(this.#get("SELECT rowid FROM cursors WHERE account_id = ?", accountId)?.rowid);
  }

  /**
   * Moves the cursor forward (never back) without journaling: only for deliberately skipping history, e.g. a first
   * run that starts from the newest row instead of replaying the whole Messages database.
   */
  setCursor(accountId: string, rowid: number): void {
    this.#run(
      `INSERT INTO cursors (account_id, rowid, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (account_id) DO UPDATE SET rowid = max(rowid, excluded.rowid), updated_at = excluded.updated_at`,
      accountId, rowid, this.now(),
    );
  }

  // ---- inbound journal ----------------------------------------------------------------------------------------

  /**
   * Journals a row and advances the cursor in one transaction. Returns false for a duplicate key (already decided);
   * the cursor still advances, so the cursor never moves past an unjournaled row.
   */
  journalInbound(accountId: string, row: InboundInput, state: InboundState = "new", reason?: string): boolean {
    const now = this.now();
    return this.#tx(() => {
      const added = this.#run(
        `INSERT OR IGNORE INTO inbound (account_id, key, guid, rowid, chat_id, sender, is_from_me, created_at,
           received_at, updated_at, state, reason, message_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        accountId, inboundKey(row.guid, row.rowid), row.guid, row.rowid, row.chatId, row.sender,
        row.isFromMe ? 1 : 0, row.createdAt, now, now, state, reason ?? null, json(row.message) ?? "null",
      );
      this.setCursor(accountId, row.rowid);
      return added === 1;
    });
  }

  /** Updates a journaled row; returns false when there is no such row. */
  setInbound(accountId: string, key: string, patch: InboundPatch): boolean {
    return (
      this.#run(
        `UPDATE inbound SET updated_at = ?, state = coalesce(?, state), reason = coalesce(?, reason),
           reply_json = coalesce(?, reply_json), agent_id = coalesce(?, agent_id),
           session_key = coalesce(?, session_key)
         WHERE account_id = ? AND key = ?`,
        this.now(), patch.state ?? null, patch.reason ?? null, json(patch.reply), patch.agentId ?? null,
        patch.sessionKey ?? null, accountId, key,
      ) === 1
    );
  }

  /** One journaled row by key. */
  getInbound(accountId: string, key: string): InboundRow | undefined {
    const r = this.#get("SELECT * FROM inbound WHERE account_id = ? AND key = ?", accountId, key);
    return r && toInbound(r);
  }

  /** Rows a restarted gateway must resume (new, dispatched, replied), oldest ROWID first. */
  unfinishedInbound(accountId: string): InboundRow[] {
    return this.#all(
      `SELECT * FROM inbound WHERE account_id = ? AND state IN (${UNFINISHED_SQL}) ORDER BY rowid, key`,
      accountId,
    ).map(toInbound);
  }

  /** Number of journaled rows of the account, optionally only those in `state`. */
  countInbound(accountId: string, state?: InboundState): number {
    const r = state === undefined
      ? this.#get("SELECT count(*) AS n FROM inbound WHERE account_id = ?", accountId)
      : this.#get("SELECT count(*) AS n FROM inbound WHERE account_id = ? AND state = ?", accountId, state);
    return Number(r?.n ?? 0);
  }

  // ---- outbound -----------------------------------------------------------------------------------------------

  /**
   * Records a chunk as "pending" before it is sent. With an inboundKey the call is idempotent on
   * (account, inboundKey, seq): a replayed reply gets the existing row (and its state) back.
   */
  recordOutbound(o: OutboundInput): OutboundRow {
    const now = this.now();
    return this.#tx(() => {
      this.#run(
        `INSERT OR IGNORE INTO outbound (account_id, inbound_key, seq, target, chat_id, text, file, state,
           created_at, updated_at, echo_key) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
        o.accountId, o.inboundKey ?? null, o.seq, o.target, o.chatId ?? null, o.text, o.file ?? null, now, now,
        o.echoKey || null,
      );
      const r = o.inboundKey === undefined
        ? this.#get("SELECT * FROM outbound WHERE id = last_insert_rowid()")
        : this.#get(
          "SELECT * FROM outbound WHERE account_id = ? AND inbound_key = ? AND seq = ?",
          o.accountId, o.inboundKey, o.seq,
        );
      return toOutbound(r!);
    });
  }

  /** Settles a chunk after the send attempt; info fields not given keep their previous values. */
  markOutbound(
    id: number,
    state: "sent" | "failed" | "unknown",
    info: { messageId?: number; messageGuid?: string; error?: string } = {},
  ): void {
    this.#run(
      `UPDATE outbound SET state = ?, updated_at = ?, message_id = coalesce(?, message_id),
         message_guid = coalesce(?, message_guid), error = coalesce(?, error) WHERE id = ?`,
      state, this.now(), info.messageId ?? null, info.messageGuid ?? null, info.error ?? null, id,
    );
  }

  /** Every chunk recorded for one inbound message, in send order. */
  outboundFor(accountId: string, inboundKey: string): OutboundRow[] {
    return this.#all(
      "SELECT * FROM outbound WHERE account_id = ? AND inbound_key = ? ORDER BY seq",
      accountId, inboundKey,
    ).map(toOutbound);
  }

  /** Chunks whose fate is not known (pending or unknown): to reconcile after a crash before re-sending. */
  unsettledOutbound(accountId: string): OutboundRow[] {
    return this.#all(
      "SELECT * FROM outbound WHERE account_id = ? AND state IN ('pending', 'unknown') ORDER BY id",
      accountId,
    ).map(toOutbound);
  }


  /** Other journaled rows of the same chat and sender dated within `windowMs` of `createdAt` (twin candidates). */
  inboundNear(accountId: string, chatId: number, sender: string, createdAt: number, windowMs: number, exceptKey: string): InboundRow[] {
    return this.#all(
      `SELECT * FROM inbound WHERE account_id = ? AND chat_id = ? AND created_at BETWEEN ? AND ? AND sender = ? AND key <> ?
         AND is_from_me = 0 ORDER BY rowid LIMIT 20`,
      accountId, chatId, createdAt - windowMs, createdAt + windowMs, sender, exceptKey,
    ).map(toInbound);
  }

  /** Records which imsg child a part is about to be handed to. */
  setOutboundSender(id: number, pid: number | undefined): void {
    this.#run("UPDATE outbound SET sender_pid = ?, updated_at = ? WHERE id = ?", pid ?? null, this.now(), id);
  }

  /** Parts sent (or being sent) since `sinceMs` whose normalized text is `echoKey` (the echo-defence lookup). */
  outboundByEcho(accountId: string, echoKey: string, sinceMs: number): OutboundRow[] {
    return this.#all(
      "SELECT * FROM outbound WHERE account_id = ? AND echo_key = ? AND created_at >= ? ORDER BY created_at, id",
      accountId, echoKey, sinceMs,
    ).map(toOutbound);
  }

  /** True when we sent a message with this imsg guid (so an inbound row with it is our own echo). */
  hasOutboundGuid(accountId: string, guid: string): boolean {
    return this.#get("SELECT 1 AS x FROM outbound WHERE account_id = ? AND message_guid = ?", accountId, guid) !==
      undefined;
  }

  // ---- status -------------------------------------------------------------------------------------------------

  /** Last inbound journaled, last chunk sent, and how many inbound rows are still unfinished. */
  activity(accountId: string): Activity {
    const i = this.#get(
      `SELECT max(received_at) AS last, sum(state IN (${UNFINISHED_SQL})) AS backlog FROM inbound
       WHERE account_id = ?`,
      accountId,
    );
    const o = this.#get("SELECT max(updated_at) AS last FROM outbound WHERE account_id = ? AND state = 'sent'", accountId);
    return { lastInboundAt: opt(i?.last), lastOutboundAt: opt(o?.last), backlog: Number(i?.backlog ?? 0) };
  }

  // ---- session history ----------------------------------------------------------------------------------------

  /** Appends one turn to a session's history. */
  appendHistory(sessionKey: string, role: "user" | "assistant", text: string): void {
    this.#run("INSERT INTO history (session_key, role, text, at) VALUES (?, ?, ?, ?)", sessionKey, role, text, this.now());
  }

  /** The last `limit` turns of a session, oldest first. */
  getHistory(sessionKey: string, limit: number): HistoryEntry[] {
    if (limit <= 0) return [];
    return this.#all(
      `SELECT role, text FROM (SELECT id, role, text FROM history WHERE session_key = ? ORDER BY id DESC LIMIT ?)
       ORDER BY id`,
      sessionKey, limit,
    ).map((r) => ({ role: r.role as HistoryEntry["role"], text: r.text as string }));
  }

  /** Forgets a session's history (e.g. /reset). */
  clearHistory(sessionKey: string): void {
    this.#run("DELETE FROM history WHERE session_key = ?", sessionKey);
  }

  // ---- pending group context ----------------------------------------------------------------------------------

  /** Remembers an unaddressed group message, keeping only the newest `limit` per chat (limit ≤ 0 keeps none). */
  addGroupPending(accountId: string, chatId: number, entry: { sender: string; text: string }, limit: number): void {
    this.#tx(() => {
      if (limit > 0) {
        this.#run(
          "INSERT INTO group_pending (account_id, chat_id, sender, text, at) VALUES (?, ?, ?, ?, ?)",
          accountId, chatId, entry.sender, entry.text, this.now(),
        );
      }
      this.#run(
        `DELETE FROM group_pending WHERE account_id = ? AND chat_id = ? AND id NOT IN
           (SELECT id FROM group_pending WHERE account_id = ? AND chat_id = ? ORDER BY id DESC LIMIT ?)`,
        accountId, chatId, accountId, chatId, Math.max(0, limit),
      );
    });
  }

  /** Returns (oldest first) and forgets the pending context of a chat. */
  /** The pending context of a group, oldest first, without removing it (with the id to clear up to). */
  peekGroupPending(accountId: string, chatId: number): { entries: GroupPendingEntry[]; upTo: number } {
    const rows = this.#all(
      "SELECT id, sender, text, at FROM group_pending WHERE account_id = ? AND chat_id = ? ORDER BY id",
      accountId, chatId,
    );
    return {
      entries: rows.map((r) => ({ sender: r.sender as string, text: r.text as string, at: r.at as number })),
      upTo: rows.length ? (rows.at(-1)!.id as number) : 0,
    };
  }

  /** Removes a group's pending context up to and including id `upTo` (what a finished turn consumed). */
  clearGroupPending(accountId: string, chatId: number, upTo: number): void {
    this.#run("DELETE FROM group_pending WHERE account_id = ? AND chat_id = ? AND id <= ?", accountId, chatId, upTo);
  }

  takeGroupPending(accountId: string, chatId: number): GroupPendingEntry[] {
    return this.#tx(() => {
      const rows = this.#all(
        "SELECT sender, text, at FROM group_pending WHERE account_id = ? AND chat_id = ? ORDER BY id",
        accountId, chatId,
      );
      this.#run("DELETE FROM group_pending WHERE account_id = ? AND chat_id = ?", accountId, chatId);
      return rows.map((r) => ({ sender: r.sender as string, text: r.text as string, at: r.at as number }));
    });
  }

  // ---- pairing (policy lives in pairing.ts) -------------------------------------------------------------------

  /** Pending requests, all accounts or one, oldest first. */
  listPairingRequests(accountId?: string): PairingRequestRow[] {
    const rows = accountId === undefined
      ? this.#all("SELECT * FROM pairing_requests ORDER BY created_at, account_id, sender_id")
      : this.#all("SELECT * FROM pairing_requests WHERE account_id = ? ORDER BY created_at, sender_id", accountId);
    return rows.map(toPairing);
  }

  /** The pending request of one sender. */
  getPairingRequest(accountId: string, senderId: string): PairingRequestRow | undefined {
    const r = this.#get("SELECT * FROM pairing_requests WHERE account_id = ? AND sender_id = ?", accountId, senderId);
    return r && toPairing(r);
  }

  /** The pending request holding `code` (exact match; callers normalise case). */
  findPairingByCode(code: string): PairingRequestRow | undefined {
    const r = this.#get("SELECT * FROM pairing_requests WHERE code = ?", code);
    return r && toPairing(r);
  }

  /** Number of pending requests of an account. */
  countPairingRequests(accountId: string): number {
    return Number(this.#get("SELECT count(*) AS n FROM pairing_requests WHERE account_id = ?", accountId)?.n ?? 0);
  }

  /** Inserts or replaces a sender's pending request. */
  upsertPairingRequest(r: PairingRequestRow): void {
    this.#run(
      `INSERT INTO pairing_requests (account_id, sender_id, code, created_at, last_seen_at, meta_json)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (account_id, sender_id) DO UPDATE SET code = excluded.code, created_at = excluded.created_at,
         last_seen_at = excluded.last_seen_at, meta_json = excluded.meta_json`,
      r.accountId, r.senderId, r.code, r.createdAt, r.lastSeenAt, JSON.stringify(r.meta),
    );
  }

  /** Bumps a pending request's lastSeenAt. */
  touchPairingRequest(accountId: string, senderId: string, at: number): void {
    this.#run("UPDATE pairing_requests SET last_seen_at = ? WHERE account_id = ? AND sender_id = ?", at, accountId, senderId);
  }

  /** Removes a sender's pending request; true when there was one. */
  deletePairingRequest(accountId: string, senderId: string): boolean {
    return this.#run("DELETE FROM pairing_requests WHERE account_id = ? AND sender_id = ?", accountId, senderId) > 0;
  }

  /** Removes requests created before `before` (epoch ms); returns how many. */
  deletePairingRequestsCreatedBefore(before: number): number {
    return this.#run("DELETE FROM pairing_requests WHERE created_at < ?", before);
  }

  /** Atomically turns a pending request into an approval; false when the request is gone. */
  approvePairingRequest(accountId: string, senderId: string): boolean {
    return this.#tx(() => {
      if (!this.deletePairingRequest(accountId, senderId)) return false;
      this.addApproved(accountId, senderId);
      return true;
    });
  }

  /** Approves a sender (keeps the first approval time if already approved). */
  addApproved(accountId: string, senderId: string): void {
    this.#run(
      "INSERT OR IGNORE INTO approved_senders (account_id, sender_id, approved_at) VALUES (?, ?, ?)",
      accountId, senderId, this.now(),
    );
  }

  /** Withdraws an approval; true when the sender was approved. */
  removeApproved(accountId: string, senderId: string): boolean {
    return this.#run("DELETE FROM approved_senders WHERE account_id = ? AND sender_id = ?", accountId, senderId) > 0;
  }

  /** Approved senders, all accounts or one, in approval order. */
  listApproved(accountId?: string): ApprovedRow[] {
    const rows = accountId === undefined
      ? this.#all("SELECT * FROM approved_senders ORDER BY approved_at, account_id, sender_id")
      : this.#all("SELECT * FROM approved_senders WHERE account_id = ? ORDER BY approved_at, sender_id", accountId);
    return rows.map((r) => ({
      accountId: r.account_id as string,
      senderId: r.sender_id as string,
      approvedAt: r.approved_at as number,
    }));
  }

  // ---- meta ---------------------------------------------------------------------------------------------------

  /** A value from the key-value table. */
  getMeta(key: string): string | undefined {
    return opt(this.#get("SELECT value FROM meta WHERE key = ?", key)?.value);
  }

  /** Sets a key-value entry. */
  setMeta(key: string, value: string): void {
    this.#run("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
  }

  // ---- retention ----------------------------------------------------------------------------------------------

  /**
   * Deletes what is older than `retentionDays` (by last change): finished inbound rows, settled (sent/failed)
   * outbound rows, history turns and group context. Unfinished inbound and pending/unknown outbound are kept.
   */
  prune(retentionDays: number): PruneResult {
    const cutoff = this.now() - retentionDays * DAY_MS;
    // Unfinished rows go too once past the window: far beyond any catch-up fence they would only be skipped as
    // stale, and keeping them would keep message text forever (e.g. rows of an account since removed).
    return this.#tx(() => ({
      inbound: this.#run("DELETE FROM inbound WHERE updated_at < ?", cutoff),
      outbound: this.#run("DELETE FROM outbound WHERE updated_at < ?", cutoff),
      history: this.#run("DELETE FROM history WHERE at < ?", cutoff),
      groupPending: this.#run("DELETE FROM group_pending WHERE at < ?", cutoff),
    }));
  }
}
