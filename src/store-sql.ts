// The state database's plumbing: the connection, a statement cache, typed one/all/run helpers and transactions.
// The table methods build on it (store-pairing.ts, store.ts); SQL text stays in those modules and store-schema.ts.
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import type { Row } from "./store-schema.ts";

export class SqlTables {
  protected readonly db: DatabaseSync;
  private readonly stmts = new Map<string, StatementSync>();

  protected constructor(
    /** Absolute path of the database file. */
    readonly path: string,
    db: DatabaseSync,
    /** The clock every timestamp comes from (injectable for tests). */
    readonly now: () => number,
  ) {
    this.db = db;
  }

  /** Closes the database; the instance is unusable afterwards. */
  close(): void {
    this.stmts.clear();
    this.db.close();
  }

  protected q(sql: string): StatementSync {
    let s = this.stmts.get(sql);
    if (!s) this.stmts.set(sql, s = this.db.prepare(sql));
    return s;
  }

  protected one(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.q(sql).get(...params) as Row | undefined;
  }

  protected all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.q(sql).all(...params) as Row[];
  }

  protected run(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.q(sql).run(...params).changes);
  }

  // IMMEDIATE takes the write lock up front, so busy_timeout applies instead of a deadlock-avoiding SQLITE_BUSY.
  /** Runs `fn` in one transaction (joining the enclosing one when called inside `transaction`). */
  transaction<T>(fn: () => T): T {
    return this.tx(fn);
  }

  protected tx<T>(fn: () => T): T {
    if (this.db.isTransaction) return fn();
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      this.db.exec("COMMIT");
      return out;
    } catch (err) {
      if (this.db.isTransaction) this.db.exec("ROLLBACK");
      throw err;
    }
  }
}
