// The gateway's whole memory: one SQLite file (node:sqlite, so Bun and Deno share it). Every SQL statement of the
// project lives here, in store-pairing.ts (behind typed methods) or in store-schema.ts (migrations), with the
// connection plumbing in store-sql.ts; times are epoch milliseconds.
import { chmodSync, closeSync, existsSync, openSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { PairingTables } from "./store-pairing.ts";
import { checkStateDir, ensureStateDir } from "./state-dir.ts";

// Row types live with the schema; re-exported for the modules that already import them from here.
export type {
  Activity,
  ApprovedRow,
  GroupPendingEntry,
  HistoryEntry,
  InboundInput,
  InboundPatch,
  InboundRow,
  InboundState,
  OutboundInput,
  OutboundRow,
  OutboundState,
  PairingRequestRow,
  PruneResult,
} from "./store-schema.ts";
import { json, migrate, opt, toInbound, toOutbound } from "./store-schema.ts";
import type { Activity, GroupPendingEntry, HistoryEntry, InboundInput, InboundPatch, InboundRow } from "./store-schema.ts";
import type { InboundState, OutboundInput, OutboundRow, PruneResult } from "./store-schema.ts";

const UNFINISHED: readonly InboundState[] = ["new", "dispatched", "replied"];
const UNFINISHED_SQL = UNFINISHED.map((s) => `'${s}'`).join(", ");
const DAY_MS = 86_400_000;

/** The journal key of an inbound row: its guid, or `rowid:<id>` for the rare row without one. */
export function inboundKey(guid: string, rowid: number): string {
  return guid !== "" ? guid : `rowid:${rowid}`;
}

// The db and its WAL/shm side files hold message text and handles: owner-only.
function tighten(path: string): void {
  for (const p of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(p)) chmodSync(p, 0o600);
}

/** The state database. Synchronous; safe to open from several processes at once (WAL + busy timeout). */
export class Store extends PairingTables {
  private constructor(path: string, db: DatabaseSync, now: () => number) {
    super(path, db, now);
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

  // ---- cursor -------------------------------------------------------------------------------------------------

  /** The highest imsg ROWID journaled for the account (the next `since_rowid`), if any. */
  getCursor(accountId: string): number | undefined {
    return opt(this.one("SELECT rowid FROM cursors WHERE account_id = ?", accountId)?.rowid);
  }

  /**
   * Moves the cursor forward (never back) without journaling: only for deliberately skipping history, e.g. a first
   * run that starts from the newest row instead of replaying the whole Messages database.
   */
  setCursor(accountId: string, rowid: number): void {
    this.run(
      `INSERT INTO cursors (account_id, rowid, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (account_id) DO UPDATE SET rowid = max(rowid, excluded.rowid), updated_at = excluded.updated_at`,
      accountId,
      rowid,
      this.now(),
    );
  }

  /**
   * Sets the cursor to `rowid` even when that is lower: only for a new Messages database (restore, new Mac, changed
   * dbPath), whose ROWIDs restart below a cursor that belonged to the old one.
   */
  resetCursor(accountId: string, rowid: number): void {
    this.run(
      `INSERT INTO cursors (account_id, rowid, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (account_id) DO UPDATE SET rowid = excluded.rowid, updated_at = excluded.updated_at`,
      accountId,
      rowid,
      this.now(),
    );
  }

  // ---- inbound journal ----------------------------------------------------------------------------------------

  /**
   * Journals a row and advances the cursor in one transaction. Returns false for a duplicate key (already decided);
   * the cursor still advances, so the cursor never moves past an unjournaled row.
   */
  journalInbound(accountId: string, row: InboundInput, state: InboundState = "new", reason?: string): boolean {
    const now = this.now();
    return this.tx(() => {
      const added = this.run(
        `INSERT OR IGNORE INTO inbound (account_id, key, guid, rowid, chat_id, sender, is_from_me, created_at,
           received_at, updated_at, state, reason, message_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        accountId,
        inboundKey(row.guid, row.rowid),
        row.guid,
        row.rowid,
        row.chatId,
        row.sender,
        row.isFromMe ? 1 : 0,
        row.createdAt,
        now,
        now,
        state,
        reason ?? null,
        json(row.message) ?? "null",
      );
      this.setCursor(accountId, row.rowid);
      return added === 1;
    });
  }

  /** Updates a journaled row; returns false when there is no such row. */
  setInbound(accountId: string, key: string, patch: InboundPatch): boolean {
    return (
      this.run(
        `UPDATE inbound SET updated_at = ?, state = coalesce(?, state), reason = coalesce(?, reason),
           reply_json = coalesce(?, reply_json), agent_id = coalesce(?, agent_id),
           session_key = coalesce(?, session_key), anchor_key = coalesce(?, anchor_key)
         WHERE account_id = ? AND key = ?`,
        this.now(),
        patch.state ?? null,
        patch.reason ?? null,
        json(patch.reply),
        patch.agentId ?? null,
        patch.sessionKey ?? null,
        patch.anchorKey ?? null,
        accountId,
        key,
      ) === 1
    );
  }

  /** One journaled row by key. */
  getInbound(accountId: string, key: string): InboundRow | undefined {
    const r = this.one("SELECT * FROM inbound WHERE account_id = ? AND key = ?", accountId, key);
    return r && toInbound(r);
  }

  /**
   * Closes a debounced burst: earlier rows (and rows an earlier anchor had merged) become "merged" into the anchor,
   * the newest, which is "dispatched". Before this a crash leaves the rows "new": replayed, the burst forms again.
   */
  mergeBurst(accountId: string, anchorKey: string, earlier: readonly string[], dispatch: { agentId: string; sessionKey: string }): void {
    const sql = `UPDATE inbound SET state = 'merged', anchor_key = ?1, reason = ?2, updated_at = ?3
      WHERE account_id = ?4 AND (key = ?5 OR anchor_key = ?5)`;
    this.tx(() => {
      for (const k of earlier) this.run(sql, anchorKey, `merged into ${anchorKey}`, this.now(), accountId, k);
      this.setInbound(accountId, anchorKey, { state: "dispatched", ...dispatch });
    });
  }

  /** The rows merged into an anchor's turn, oldest first. */
  mergedInto(accountId: string, anchorKey: string): InboundRow[] {
    const sql = "SELECT * FROM inbound WHERE account_id = ? AND anchor_key = ? AND state = 'merged' ORDER BY rowid, key";
    return this.all(sql, accountId, anchorKey).map(toInbound);
  }

  /** Rows a restarted gateway must resume (new, dispatched, replied), oldest ROWID first. */
  unfinishedInbound(accountId: string): InboundRow[] {
    return this.all(
      `SELECT * FROM inbound WHERE account_id = ? AND state IN (${UNFINISHED_SQL}) ORDER BY rowid, key`,
      accountId,
    ).map(toInbound);
  }

  /** Number of journaled rows of the account, optionally only those in `state`. */
  countInbound(accountId: string, state?: InboundState): number {
    const r = state === undefined
      ? this.one("SELECT count(*) AS n FROM inbound WHERE account_id = ?", accountId)
      : this.one("SELECT count(*) AS n FROM inbound WHERE account_id = ? AND state = ?", accountId, state);
    return Number(r?.n ?? 0);
  }

  // ---- outbound -----------------------------------------------------------------------------------------------

  /**
   * Records a chunk as "pending" before it is sent. With an inboundKey the call is idempotent on
   * (account, inboundKey, seq): a replayed reply gets the existing row (and its state) back.
   */
  recordOutbound(o: OutboundInput): OutboundRow {
    const now = this.now();
    return this.tx(() => {
      this.run(
        `INSERT OR IGNORE INTO outbound (account_id, inbound_key, seq, target, chat_id, text, file, state,
           created_at, updated_at, echo_key, tapback_json, reply_to) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)`,
        o.accountId,
        o.inboundKey ?? null,
        o.seq,
        o.target,
        o.chatId ?? null,
        o.text,
        o.file ?? null,
        now,
        now,
        o.echoKey || null,
        json(o.tapback),
        o.replyTo ?? null,
      );
      const r = o.inboundKey === undefined ? this.one("SELECT * FROM outbound WHERE id = last_insert_rowid()") : this.one(
        "SELECT * FROM outbound WHERE account_id = ? AND inbound_key = ? AND seq = ?",
        o.accountId,
        o.inboundKey,
        o.seq,
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
    this.run(
      `UPDATE outbound SET state = ?, updated_at = ?, message_id = coalesce(?, message_id),
         message_guid = coalesce(?, message_guid), error = coalesce(?, error) WHERE id = ?`,
      state,
      this.now(),
      info.messageId ?? null,
      info.messageGuid ?? null,
      info.error ?? null,
      id,
    );
  }

  /** Every chunk recorded for one inbound message, in send order. */
  outboundFor(accountId: string, inboundKey: string): OutboundRow[] {
    return this.all(
      "SELECT * FROM outbound WHERE account_id = ? AND inbound_key = ? ORDER BY seq",
      accountId,
      inboundKey,
    ).map(toOutbound);
  }

  /** Chunks whose fate is not known (pending or unknown): to reconcile after a crash before re-sending. */
  unsettledOutbound(accountId: string): OutboundRow[] {
    return this.all(
      "SELECT * FROM outbound WHERE account_id = ? AND state IN ('pending', 'unknown') ORDER BY id",
      accountId,
    ).map(toOutbound);
  }

  /** Other journaled rows of the same chat and sender dated within `windowMs` of `createdAt` (twin candidates). */
  inboundNear(accountId: string, chatId: number, sender: string, createdAt: number, windowMs: number, exceptKey: string): InboundRow[] {
    return this.all(
      `SELECT * FROM inbound WHERE account_id = ? AND chat_id = ? AND created_at BETWEEN ? AND ? AND sender = ? AND key <> ?
         AND is_from_me = 0 ORDER BY rowid LIMIT 20`,
      accountId,
      chatId,
      createdAt - windowMs,
      createdAt + windowMs,
      sender,
      exceptKey,
    ).map(toInbound);
  }

  /** Records which imsg child a part is about to be handed to. */
  setOutboundSender(id: number, pid: number | undefined): void {
    this.run("UPDATE outbound SET sender_pid = ?, updated_at = ? WHERE id = ?", pid ?? null, this.now(), id);
  }

  /** Records what the send does with a part (threaded or plain, which tapback by which way): OutboundRow.sentAs. */
  setOutboundSentAs(id: number, sentAs: string): void {
    this.run("UPDATE outbound SET sent_as = ? WHERE id = ?", sentAs, id);
  }

  /** Records (or clears) where a file part was staged on the remote Mac. */
  setOutboundStaged(id: number, stagedPath: string | undefined): void {
    // updated_at is left alone: it dates the part's state (activity, retention), not its staging.
    this.run("UPDATE outbound SET staged_path = ? WHERE id = ?", stagedPath ?? null, id);
  }

  /** Parts of the account that still have a staged copy on the remote Mac. */
  stagedOutbound(accountId: string): OutboundRow[] {
    return this.all("SELECT * FROM outbound WHERE account_id = ? AND staged_path IS NOT NULL ORDER BY id", accountId).map(toOutbound);
  }

  /** Corrects the chat a part went to (imsg's send result names it; auto may have picked SMS). */
  setOutboundChat(id: number, chatId: number): void {
    this.run("UPDATE outbound SET chat_id = ?, updated_at = ? WHERE id = ?", chatId, this.now(), id);
  }

  /** Back to pending, not with any imsg child: history proved it absent after the receipt window. */
  resetOutbound(id: number): void {
    this.run("UPDATE outbound SET state = 'pending', sender_pid = NULL, updated_at = ? WHERE id = ?", this.now(), id);
  }

  /** Parts sent (or being sent) since `sinceMs` whose normalized text is `echoKey` (the echo-defence lookup). */
  outboundByEcho(accountId: string, echoKey: string, sinceMs: number): OutboundRow[] {
    return this.all(
      "SELECT * FROM outbound WHERE account_id = ? AND echo_key = ? AND created_at >= ? ORDER BY created_at, id",
      accountId,
      echoKey,
      sinceMs,
    ).map(toOutbound);
  }

  /** True when we sent a message with this imsg guid (so an inbound row with it is our own echo); never a tapback. */
  hasOutboundGuid(accountId: string, guid: string): boolean {
    const sql = "SELECT 1 AS x FROM outbound WHERE account_id = ? AND message_guid = ? AND tapback_json IS NULL";
    return this.one(sql, accountId, guid) !== undefined;
  }

  /** True when the journal knows a message with this guid in this chat: a row we journaled or a part we sent. */
  knowsGuidInChat(accountId: string, guid: string, chatId: number): boolean {
    // A row with a guid is keyed by it (the primary key finds it); `guid = key` leaves out the `rowid:N` keys of
    // rows without one, which are no message guid.
    const sql = `SELECT 1 AS x FROM inbound WHERE account_id = ? AND key = ? AND guid = key AND chat_id = ?
       UNION ALL SELECT 1 FROM outbound WHERE account_id = ? AND message_guid = ? AND chat_id = ? LIMIT 1`;
    return this.one(sql, accountId, guid, chatId, accountId, guid, chatId) !== undefined;
  }

  /** The text of a message by its imsg guid: a part we sent, else a row we journaled (a tapback's context). */
  textOfGuid(accountId: string, guid: string): string | undefined {
    const sql = "SELECT text FROM outbound WHERE account_id = ? AND message_guid = ? AND tapback_json IS NULL ORDER BY id LIMIT 1";
    const o = this.one(sql, accountId, guid);
    if (o) return String(o.text);
    const i = this.one("SELECT json_extract(message_json, '$.text') AS text FROM inbound WHERE account_id = ? AND key = ?", accountId, guid);
    return typeof i?.text === "string" ? i.text : undefined;
  }

  /** The newest Contacts name imsg reported on a journaled row from each of these handles. */
  senderNames(accountId: string, handles: readonly string[]): Map<string, string> {
    const out = new Map<string, string>();
    if (!handles.length) return out;
    const rows = this.all(
      `SELECT sender, json_extract(message_json, '$.senderName') AS name FROM inbound
         WHERE account_id = ? AND sender IN (${handles.map(() => "?").join(", ")}) AND name IS NOT NULL ORDER BY rowid`,
      accountId,
      ...handles,
    );
    for (const r of rows) if (typeof r.name === "string" && r.name.trim()) out.set(String(r.sender), r.name);
    return out;
  }

  // ---- status -------------------------------------------------------------------------------------------------

  /** Last inbound journaled, last chunk sent, and how many inbound rows are still unfinished. */
  activity(accountId: string): Activity {
    const i = this.one(
      `SELECT max(received_at) AS last, sum(state IN (${UNFINISHED_SQL})) AS backlog FROM inbound
       WHERE account_id = ?`,
      accountId,
    );
    const o = this.one("SELECT max(updated_at) AS last FROM outbound WHERE account_id = ? AND state = 'sent'", accountId);
    return { lastInboundAt: opt(i?.last), lastOutboundAt: opt(o?.last), backlog: Number(i?.backlog ?? 0) };
  }

  // ---- session history ----------------------------------------------------------------------------------------

  /** Appends one turn to a session's history. */
  appendHistory(sessionKey: string, role: "user" | "assistant", text: string): void {
    this.run("INSERT INTO history (session_key, role, text, at) VALUES (?, ?, ?, ?)", sessionKey, role, text, this.now());
  }

  /** The last `limit` turns of a session, oldest first. */
  getHistory(sessionKey: string, limit: number): HistoryEntry[] {
    if (limit <= 0) return [];
    return this.all(
      `SELECT role, text FROM (SELECT id, role, text FROM history WHERE session_key = ? ORDER BY id DESC LIMIT ?)
       ORDER BY id`,
      sessionKey,
      limit,
    ).map((r) => ({ role: r.role as HistoryEntry["role"], text: r.text as string }));
  }

  /** Forgets a session's history (e.g. /reset). */
  clearHistory(sessionKey: string): void {
    this.run("DELETE FROM history WHERE session_key = ?", sessionKey);
  }

  // ---- pending group context ----------------------------------------------------------------------------------

  /** Remembers an unaddressed group message, keeping only the newest `limit` per chat (limit ≤ 0 keeps none). */
  addGroupPending(accountId: string, chatId: number, entry: { sender: string; text: string }, limit: number): void {
    this.tx(() => {
      if (limit > 0) {
        this.run(
          "INSERT INTO group_pending (account_id, chat_id, sender, text, at) VALUES (?, ?, ?, ?, ?)",
          accountId,
          chatId,
          entry.sender,
          entry.text,
          this.now(),
        );
      }
      this.run(
        `DELETE FROM group_pending WHERE account_id = ? AND chat_id = ? AND id NOT IN
           (SELECT id FROM group_pending WHERE account_id = ? AND chat_id = ? ORDER BY id DESC LIMIT ?)`,
        accountId,
        chatId,
        accountId,
        chatId,
        Math.max(0, limit),
      );
    });
  }

  /** The pending context of a group, oldest first, without removing it (with the id to clear up to). */
  peekGroupPending(accountId: string, chatId: number): { entries: GroupPendingEntry[]; upTo: number } {
    const rows = this.all(
      "SELECT id, sender, text, at FROM group_pending WHERE account_id = ? AND chat_id = ? ORDER BY id",
      accountId,
      chatId,
    );
    return {
      entries: rows.map((r) => ({ sender: r.sender as string, text: r.text as string, at: r.at as number })),
      upTo: rows.length ? (rows.at(-1)!.id as number) : 0,
    };
  }

  /** Removes a group's pending context up to and including id `upTo` (what a finished turn consumed). */
  clearGroupPending(accountId: string, chatId: number, upTo: number): void {
    this.run("DELETE FROM group_pending WHERE account_id = ? AND chat_id = ? AND id <= ?", accountId, chatId, upTo);
  }

  takeGroupPending(accountId: string, chatId: number): GroupPendingEntry[] {
    return this.tx(() => {
      const rows = this.all(
        "SELECT sender, text, at FROM group_pending WHERE account_id = ? AND chat_id = ? ORDER BY id",
        accountId,
        chatId,
      );
      this.run("DELETE FROM group_pending WHERE account_id = ? AND chat_id = ?", accountId, chatId);
      return rows.map((r) => ({ sender: r.sender as string, text: r.text as string, at: r.at as number }));
    });
  }

  // ---- pairing (policy lives in pairing.ts) -------------------------------------------------------------------

  // ---- meta ---------------------------------------------------------------------------------------------------

  /** A value from the key-value table. */
  getMeta(key: string): string | undefined {
    return opt(this.one("SELECT value FROM meta WHERE key = ?", key)?.value);
  }

  /** Sets a key-value entry. */
  setMeta(key: string, value: string): void {
    this.run("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
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
    return this.tx(() => ({
      inbound: this.run("DELETE FROM inbound WHERE updated_at < ?", cutoff),
      outbound: this.run("DELETE FROM outbound WHERE updated_at < ?", cutoff),
      history: this.run("DELETE FROM history WHERE at < ?", cutoff),
      groupPending: this.run("DELETE FROM group_pending WHERE at < ?", cutoff),
    }));
  }
}
