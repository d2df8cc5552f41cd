// The state database's shape: row types, the migrations that build the schema, and the mappers from SQLite
// rows to typed rows. Store (store.ts) holds the statements that use them.
import type { DatabaseSync } from "node:sqlite";
import type { TapbackAction } from "./actions.ts";
import { CliError } from "./errors.ts";

/**
 * Inbound journal states (docs/ARCHITECTURE.md): new → dropped | pairing | skipped | merged | dispatched → replied → done | failed.
 * "merged": the row was part of a debounced burst answered by one turn; `anchorKey` names the burst's newest row,
 * whose state carries the burst's fate.
 */
export type InboundState = "new" | "dropped" | "pairing" | "skipped" | "merged" | "dispatched" | "replied" | "done" | "failed";
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
  /** For a "merged" row: the key of the burst's anchor row. */
  anchorKey?: string;
}

/** Fields `setInbound` may change; undefined fields are left alone. */
export interface InboundPatch {
  state?: InboundState;
  reason?: string;
  reply?: unknown;
  agentId?: string;
  sessionKey?: string;
  anchorKey?: string;
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
  /** A tapback part (no text, no file): the tapback asked for. */
  tapback?: TapbackAction;
  /** A text/file part meant as a threaded reply to this message guid. */
  replyTo?: string;
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
  /** A file part's copy on the remote Mac (stage.ts), until it is cleaned up. */
  stagedPath?: string;
  /** A tapback part: the tapback asked for (the intent; `sentAs` says what was done). */
  tapback?: TapbackAction;
  /** The message guid a text/file part was meant to be threaded under. */
  replyTo?: string;
  /**
   * What the send actually did, decided from the send child's capabilities (formatSentAs in tapback.ts):
   * `threaded` / `plain` for a part with replyTo; `bridge:<kind>`, `bridge:emoji:<emoji>` or `react:<kind>` for a
   * tapback (recorded before it is handed over, so a lookup after a crash knows what to look for).
   */
  sentAs?: string;
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
  // 5: where a file part was staged on a remote Mac, so a crash neither loses the copy nor leaves it behind.
  `
  ALTER TABLE outbound ADD COLUMN staged_path TEXT;
  CREATE INDEX outbound_staged ON outbound (account_id) WHERE staged_path IS NOT NULL;
  `,
  // 6: debounced bursts: every row merged into a turn points at the row that anchors it.
  `
  ALTER TABLE inbound ADD COLUMN anchor_key TEXT;
  CREATE INDEX inbound_by_anchor ON inbound (account_id, anchor_key) WHERE anchor_key IS NOT NULL;
  `,
  // 7: agent actions: a tapback part's intent, a part's thread target, and what the send actually did.
  `
  ALTER TABLE outbound ADD COLUMN tapback_json TEXT;
  ALTER TABLE outbound ADD COLUMN reply_to TEXT;
  ALTER TABLE outbound ADD COLUMN sent_as TEXT;
  `,
];

export type Row = Record<string, unknown>;

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

export function json(v: unknown): string | null {
  return v === undefined ? null : JSON.stringify(v);
}

export function parseJson(v: unknown): unknown {
  return typeof v === "string" ? JSON.parse(v) : undefined;
}

// SQLite NULL becomes an absent optional field rather than `null` in the typed rows.
export function opt<T>(v: unknown): T | undefined {
  return v === null || v === undefined ? undefined : (v as T);
}

export function toInbound(r: Row): InboundRow {
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
    anchorKey: opt(r.anchor_key),
  };
}

export function toOutbound(r: Row): OutboundRow {
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
    stagedPath: opt(r.staged_path),
    tapback: opt<string>(r.tapback_json) === undefined ? undefined : (parseJson(r.tapback_json) as TapbackAction),
    replyTo: opt(r.reply_to),
    sentAs: opt(r.sent_as),
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
  };
}

export function toPairing(r: Row): PairingRequestRow {
  return {
    accountId: r.account_id as string,
    senderId: r.sender_id as string,
    code: r.code as string,
    createdAt: r.created_at as number,
    lastSeenAt: r.last_seen_at as number,
    meta: JSON.parse(r.meta_json as string) as Record<string, string>,
  };
}
