// Pairing requests and approved senders: the tables behind pairing.ts and the `pairing` commands.
import { toPairing } from "./store-schema.ts";
import type { ApprovedRow, PairingRequestRow } from "./store-schema.ts";
import { SqlTables } from "./store-sql.ts";

export class PairingTables extends SqlTables {
  /** Pending requests, all accounts or one, oldest first. */
  listPairingRequests(accountId?: string): PairingRequestRow[] {
    const rows = accountId === undefined
      ? this.all("SELECT * FROM pairing_requests ORDER BY created_at, account_id, sender_id")
      : this.all("SELECT * FROM pairing_requests WHERE account_id = ? ORDER BY created_at, sender_id", accountId);
    return rows.map(toPairing);
  }

  /** The pending request of one sender. */
  getPairingRequest(accountId: string, senderId: string): PairingRequestRow | undefined {
    const r = this.one("SELECT * FROM pairing_requests WHERE account_id = ? AND sender_id = ?", accountId, senderId);
    return r && toPairing(r);
  }

  /** The pending request holding `code` (exact match; callers normalise case). */
  findPairingByCode(code: string): PairingRequestRow | undefined {
    const r = this.one("SELECT * FROM pairing_requests WHERE code = ?", code);
    return r && toPairing(r);
  }

  /** Number of pending requests of an account. */
  countPairingRequests(accountId: string): number {
    return Number(this.one("SELECT count(*) AS n FROM pairing_requests WHERE account_id = ?", accountId)?.n ?? 0);
  }

  /** Inserts or replaces a sender's pending request. */
  upsertPairingRequest(r: PairingRequestRow): void {
    this.run(
      `INSERT INTO pairing_requests (account_id, sender_id, code, created_at, last_seen_at, meta_json)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (account_id, sender_id) DO UPDATE SET code = excluded.code, created_at = excluded.created_at,
         last_seen_at = excluded.last_seen_at, meta_json = excluded.meta_json`,
      r.accountId,
      r.senderId,
      r.code,
      r.createdAt,
      r.lastSeenAt,
      JSON.stringify(r.meta),
    );
  }

  /** Bumps a pending request's lastSeenAt. */
  touchPairingRequest(accountId: string, senderId: string, at: number): void {
    this.run("UPDATE pairing_requests SET last_seen_at = ? WHERE account_id = ? AND sender_id = ?", at, accountId, senderId);
  }

  /** Removes a sender's pending request; true when there was one. */
  deletePairingRequest(accountId: string, senderId: string): boolean {
    return this.run("DELETE FROM pairing_requests WHERE account_id = ? AND sender_id = ?", accountId, senderId) > 0;
  }

  /** Removes requests created before `before` (epoch ms); returns how many. */
  deletePairingRequestsCreatedBefore(before: number): number {
    return this.run("DELETE FROM pairing_requests WHERE created_at < ?", before);
  }

  /** Atomically turns a pending request into an approval; false when the request is gone. */
  approvePairingRequest(accountId: string, senderId: string): boolean {
    return this.tx(() => {
      if (!this.deletePairingRequest(accountId, senderId)) return false;
      this.addApproved(accountId, senderId);
      return true;
    });
  }

  /** Approves a sender (keeps the first approval time if already approved). */
  addApproved(accountId: string, senderId: string): void {
    this.run(
      "INSERT OR IGNORE INTO approved_senders (account_id, sender_id, approved_at) VALUES (?, ?, ?)",
      accountId,
      senderId,
      this.now(),
    );
  }

  /** Withdraws an approval; true when the sender was approved. */
  removeApproved(accountId: string, senderId: string): boolean {
    return this.run("DELETE FROM approved_senders WHERE account_id = ? AND sender_id = ?", accountId, senderId) > 0;
  }

  /** Approved senders, all accounts or one, in approval order. */
  listApproved(accountId?: string): ApprovedRow[] {
    const rows = accountId === undefined
      ? this.all("SELECT * FROM approved_senders ORDER BY approved_at, account_id, sender_id")
      : this.all("SELECT * FROM approved_senders WHERE account_id = ? ORDER BY approved_at, sender_id", accountId);
    return rows.map((r) => ({
      accountId: r.account_id as string,
      senderId: r.sender_id as string,
      approvedAt: r.approved_at as number,
    }));
  }
}
