// The connection to a simulated chat.db and the simulator's own control tables (faults, runtime switches,
// Contacts names), plus the database swap. Bun-only; SimDb (scripts/sim-db.ts) adds the Messages queries.
import { Database } from "bun:sqlite";
import { renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { type FaultKind, type PresenceEvent, SCHEMA } from "./db-model.ts";

/** Marker file next to the database: while it exists the simulator treats the database as unreadable (no FDA). */
export const unreadableMarker = (dbPath: string) => `${dbPath}.sim-unreadable`;

/** Opens (creating) a chat.db-shaped file; WAL + busy timeout let a test write while the simulator reads. */
export function openSimSql(path: string): Database {
  const sql = new Database(path, { create: true });
  sql.exec("PRAGMA busy_timeout = 5000");
  sql.exec("PRAGMA journal_mode = WAL");
  sql.exec(SCHEMA);
  return sql;
}

export class SimControl {
  /** The underlying connection, for tests that need raw SQL (e.g. breaking the schema on purpose). */
  sql: Database;
  readonly path: string;

  constructor(path: string) {
    this.path = path;
    this.sql = openSimSql(path);
  }

  /** Closes the connection. */
  close(): void {
    this.sql.close();
  }

  /** Hook for caches that must not survive a replaceDatabase. */
  protected onReplaced(): void {}

  /**
   * Bumps the database file's mtime so watchers see a change event after a commit. A watcher woken by the WAL
   * write itself can poll before the commit is readable and would then wait for the fallback poll.
   */
  touch(): void {
    const now = new Date();
    utimesSync(this.path, now, now);
  }

  /** Adds (or renames) a Contacts entry: 0.15 payloads then carry sender_name / contact_name for the handle. */
  addContact(handle: string, name: string): void {
    this.sql.query("INSERT OR REPLACE INTO sim_contact (handle, name) VALUES (?, ?)").run(handle, name);
  }

  contactName(handle: string): string | undefined {
    return this.sql.query<{ name: string }, [string]>("SELECT name FROM sim_contact WHERE handle = ?").get(handle)?.name;
  }

  /** Sets a runtime control the simulator reads on each request (`bridge`, `receipt_delay_ms`, …); undefined clears it. */
  setControl(key: string, value: string | number | boolean | undefined): void {
    if (value === undefined || value === false) this.sql.query("DELETE FROM sim_control WHERE key = ?").run(key);
    else this.sql.query("INSERT OR REPLACE INTO sim_control (key, value) VALUES (?, ?)").run(key, value === true ? "1" : String(value));
  }

  control(key: string): string | undefined {
    return this.sql.query<{ value: string }, [string]>("SELECT value FROM sim_control WHERE key = ?").get(key)?.value;
  }

  /**
   * Queues a fault for the next `count` calls of `method` (any simulator process on this database consumes it).
   * `lands`: whether the message row is still written after the error (default: yes unless not_started).
   */
  queueFault(method: string, kind: FaultKind, opts: { count?: number; lands?: boolean } = {}): void {
    const lands = opts.lands ?? kind !== "not_started";
    for (let i = 0; i < (opts.count ?? 1); i++) {
      this.sql.query("INSERT INTO sim_fault (method, kind, lands) VALUES (?, ?, ?)").run(method, kind, lands ? 1 : 0);
    }
  }

  /** Removes and returns the oldest queued fault for `method`. */
  takeFault(method: string): { kind: FaultKind; lands: boolean } | undefined {
    const take = this.sql.transaction(() => {
      const r = this.sql.query<{ id: number; kind: FaultKind; lands: number }, [string]>(
        "SELECT ROWID AS id, kind, lands FROM sim_fault WHERE method = ? ORDER BY ROWID LIMIT 1",
      ).get(method);
      if (r) this.sql.query("DELETE FROM sim_fault WHERE ROWID = ?").run(r.id);
      return r;
    });
    const r = take.immediate();
    return r ? { kind: r.kind, lands: r.lands === 1 } : undefined;
  }

  /** Records a `typing`/`read` call (the simulator's side; tests read them with presenceEvents). */
  recordPresence(e: PresenceEvent): void {
    this.sql
      .query("INSERT INTO sim_presence (method, chat_id, target, typing, ok, error, at) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(e.method, e.chatId ?? null, e.target, e.typing === undefined ? null : e.typing ? 1 : 0, e.ok ? 1 : 0, e.error ?? null, e.at);
  }

  /** Every `typing`/`read` call any simulator process on this database received, oldest first. */
  presenceEvents(filter: { method?: "typing" | "read"; chatId?: number } = {}): PresenceEvent[] {
    type Row = { method: "typing" | "read"; chat_id: number | null; target: string; typing: number | null; ok: number; error: string | null; at: number };
    return this.sql
      .query<Row, []>("SELECT method, chat_id, target, typing, ok, error, at FROM sim_presence ORDER BY ROWID")
      .all()
      .filter((r) => (!filter.method || r.method === filter.method) && (filter.chatId === undefined || r.chat_id === filter.chatId))
      .map((r) => ({
        method: r.method,
        ...(r.chat_id !== null ? { chatId: r.chat_id } : {}),
        target: r.target,
        ...(r.typing !== null ? { typing: r.typing === 1 } : {}),
        ok: r.ok === 1,
        ...(r.error !== null ? { error: r.error } : {}),
        at: r.at,
      }));
  }

  /** Joins an unjoined row (inject with chatId 0) to a chat later, as Messages does a moment after the insert. */
  joinChat(rowid: number, chatId: number): void {
    const date = this.sql.query<{ d: bigint }, [number]>("SELECT date AS d FROM message WHERE ROWID = ?").get(rowid)?.d ?? 0;
    this.sql.query("INSERT OR IGNORE INTO chat_message_join (chat_id, message_id, message_date) VALUES (?, ?, ?)").run(chatId, rowid, date);
    this.touch();
  }

  /** Marks the database unreadable (as without Full Disk Access) or readable again; see unreadableMarker. */
  setUnreadable(on: boolean): void {
    if (on) writeFileSync(unreadableMarker(this.path), "");
    else rmSync(unreadableMarker(this.path), { force: true });
  }

  /**
   * Swaps the file at `path` for a new database whose message ROWIDs restart at 1 (a restore, a new Mac, an
   * iCloud re-download): chats, handles and contacts are copied with their ids, messages are not. This
   * connection follows the new file; a simulator process holding the old one sees what its version would.
   */
  replaceDatabase(): void {
    const tmp = `${this.path}.replacing`;
    rmSync(tmp, { force: true });
    const next = openSimSql(tmp);
    const copy = (table: string, cols: string) => {
      const rows = this.sql.query<Record<string, unknown>, []>(`SELECT ${cols} FROM ${table}`).all();
      const names = cols.split(",").map((c) => c.trim());
      const ins = next.prepare(`INSERT OR IGNORE INTO ${table} (${cols}) VALUES (${names.map(() => "?").join(", ")})`);
      for (const r of rows) ins.run(...(names.map((n) => r[n]) as never[]));
      // An unfinalized statement keeps `next` open as a zombie on the renamed file: this process would then share
      // its (deleted) -wal/-shm and write where no other process reads.
      ins.finalize();
    };
    copy("handle", "ROWID, id, country, service");
    copy("chat", "ROWID, guid, style, chat_identifier, service_name, display_name");
    copy("chat_handle_join", "chat_id, handle_id");
    copy("sim_contact", "handle, name");
    copy("sim_control", "key, value");
    next.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    next.close();
    this.sql.close();
    for (const ext of ["-wal", "-shm"]) rmSync(this.path + ext, { force: true });
    renameSync(tmp, this.path);
    for (const ext of ["-wal", "-shm"]) rmSync(tmp + ext, { force: true });
    this.sql = openSimSql(this.path);
    this.onReplaced();
    this.touch();
  }
}
