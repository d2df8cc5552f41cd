// A SQLite file shaped like Messages' chat.db, plus the queries `imsg rpc` runs against it
// (../shared/reference/imsg-rpc.md §2, §4, §5). Shared by the simulator process and by tests that inject
// inbound rows and inspect what was "sent". Bun-only (scripts/ and test/).
import { Database } from "bun:sqlite";
import { randomUUID } from "node:crypto";
import { chmodSync, existsSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, extname, resolve } from "node:path";

/** Absolute path of the simulator script. */
export const SIM_SCRIPT = resolve(import.meta.dir, "imsg-sim.ts");

const shQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Writes an executable `imsg` stand-in at `path`: a sh wrapper that runs the simulator with `env` as defaults
 * (the caller's environment overrides them), usable as `cliPath` exactly like the real binary.
 */
export function writeSimWrapper(path: string, env: Record<string, string>): void {
  const exports = Object.entries(env).map(([k, v]) => `[ -n "\${${k}+x}" ] || ${k}=${shQuote(v)}; export ${k}`);
  writeFileSync(path, ["#!/bin/sh", ...exports, `exec ${shQuote(process.execPath)} ${shQuote(SIM_SCRIPT)} "$@"`, ""].join("\n"));
  chmodSync(path, 0o755);
}

/** Milliseconds between the Unix epoch and Apple's (2001-01-01T00:00:00Z). */
export const APPLE_EPOCH_MS = 978_307_200_000;
/** The simulator's own handle unless IMSG_SIM_SELF says otherwise. */
export const DEFAULT_SELF = "+15550009999";
/** balloon_bundle_id of URL-preview rows, the only rows imsg de-duplicates (§5). */
export const URL_BALLOON = "com.apple.messages.URLBalloonProvider";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS handle (
  ROWID INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, country TEXT, service TEXT NOT NULL DEFAULT 'iMessage',
  UNIQUE (id, service));
CREATE TABLE IF NOT EXISTS chat (
  ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE, style INTEGER, chat_identifier TEXT,
  service_name TEXT, display_name TEXT);
CREATE TABLE IF NOT EXISTS message (
  ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL, text TEXT, attributedBody BLOB,
  handle_id INTEGER DEFAULT 0, service TEXT, date INTEGER, is_from_me INTEGER DEFAULT 0,
  cache_has_attachments INTEGER DEFAULT 0, destination_caller_id TEXT, associated_message_type INTEGER DEFAULT 0,
  associated_message_guid TEXT, thread_originator_guid TEXT, balloon_bundle_id TEXT);
CREATE TABLE IF NOT EXISTS chat_message_join (
  chat_id INTEGER, message_id INTEGER, message_date INTEGER DEFAULT 0, PRIMARY KEY (chat_id, message_id));
CREATE TABLE IF NOT EXISTS chat_handle_join (chat_id INTEGER, handle_id INTEGER, UNIQUE (chat_id, handle_id));
CREATE TABLE IF NOT EXISTS attachment (
  ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE, created_date INTEGER DEFAULT 0, filename TEXT,
  uti TEXT, mime_type TEXT, transfer_name TEXT, total_bytes INTEGER DEFAULT 0, is_sticker INTEGER DEFAULT 0);
CREATE TABLE IF NOT EXISTS message_attachment_join (
  message_id INTEGER, attachment_id INTEGER, UNIQUE (message_id, attachment_id));
CREATE INDEX IF NOT EXISTS message_idx_date ON message (date);
CREATE INDEX IF NOT EXISTS cmj_message ON chat_message_join (message_id);
`;

/** Tapback kinds as the read side names them (`emphasis`, not `emphasize`: §4.4). */
export type ReactionType = "love" | "like" | "dislike" | "laugh" | "emphasis" | "question" | "custom";
const REACTIONS: { type: ReactionType; emoji: string; verb: string; removed: string }[] = [
  { type: "love", emoji: "❤️", verb: "Loved", removed: "a heart" },
  { type: "like", emoji: "👍", verb: "Liked", removed: "a like" },
  { type: "dislike", emoji: "👎", verb: "Disliked", removed: "a dislike" },
  { type: "laugh", emoji: "😂", verb: "Laughed at", removed: "a laugh" },
  { type: "emphasis", emoji: "‼️", verb: "Emphasized", removed: "an exclamation" },
  { type: "question", emoji: "❓", verb: "Questioned", removed: "a question mark" },
  { type: "custom", emoji: "", verb: "Reacted", removed: "" },
];

/** What `inject` writes: one message row plus whatever chat/handle/attachment rows it needs. */
export interface InjectOptions {
  /** Sender handle; for `isFromMe` rows in a direct chat, the other party (chat.db stores the recipient). */
  from: string;
  /** Defaults to one U+FFFC per attachment (as Messages stores them), else "". */
  text?: string;
  /** Existing chat to post into; `0` leaves the row joined to no chat (chat_id 0 in payloads). */
  chatId?: number;
  /** Post into a group chat `iMessage;+;<identifier>`, created (or extended) on demand. */
  group?: { identifier?: string; name?: string; participants?: string[] };
  attachments?: { path: string; mimeType?: string; uti?: string; transferName?: string; totalBytes?: number; isSticker?: boolean }[];
  /** Message date; an old date on a new row reproduces "old rows with new ROWIDs". */
  createdAt?: Date;
  isFromMe?: boolean;
  /** Defaults to the simulator's own handle, as on real inbound and outbound rows; "" leaves it empty. */
  destinationCallerId?: string;
  guid?: string;
  service?: "iMessage" | "SMS";
  /** Makes this row a tapback on message `to` (a guid); text defaults to Messages' wording. */
  reaction?: { to: string; type: ReactionType; remove?: boolean; emoji?: string };
  /** associated_message_guid of an ordinary (non-tapback) reply; stored with a `p:0/` prefix. */
  replyToGuid?: string;
  threadOriginatorGuid?: string;
  balloonBundleId?: string;
}

/** Result of `inject`. */
export interface Injected {
  rowid: number;
  guid: string;
  chatId: number;
}

/** One `is_from_me=1` row as tests want to see it. */
export interface SentRow {
  rowid: number;
  guid: string;
  text: string;
  chatId: number;
  chatIdentifier: string;
  chatGuid: string;
  /** The row's handle, else the chat identifier (group sends have no handle). */
  recipient: string;
  /** First attachment's filename, for file sends. */
  file?: string;
  createdAt: Date;
}

/** A raw message row, decoded. */
export interface MessageRow {
  rowid: number;
  guid: string;
  text: string;
  handle: string;
  isFromMe: boolean;
  chatId: number;
  createdAt: Date;
  destinationCallerId: string;
  associatedMessageType: number;
  associatedMessageGuid: string;
  files: string[];
}

/** A chat row with its participants. */
export interface ChatRow {
  id: number;
  guid: string;
  identifier: string;
  displayName: string | null;
  service: string;
  participants: string[];
}

/** Chat fields as imsg's ChatCache hands them out (name = display_name, else identifier). */
export interface ChatInfo {
  id: number;
  identifier: string;
  guid: string;
  name: string;
  service: string;
  participants: string[];
}

/** RPC Attachment object (§4.3). */
export interface AttachmentPayload {
  filename: string;
  transfer_name: string;
  uti: string;
  mime_type: string;
  total_bytes: number;
  is_sticker: boolean;
  original_path: string;
  missing: boolean;
}

/** RPC Reaction object (§4.4). */
export interface ReactionPayload {
  id: number;
  type: ReactionType;
  emoji: string;
  sender: string;
  is_from_me: boolean;
  created_at: string;
}

/** RPC Message object (§4.2, §3.3); optional fields are omitted, never null. */
export interface MessagePayload {
  id: number;
  chat_id: number;
  guid: string;
  sender: string;
  is_from_me: boolean;
  text: string;
  created_at: string;
  attachments: AttachmentPayload[];
  reactions: ReactionPayload[];
  reply_to_guid?: string;
  reply_to_text?: string;
  reply_to_sender?: string;
  thread_originator_guid?: string;
  destination_caller_id?: string;
  is_reaction?: boolean;
  reaction_type?: ReactionType;
  reaction_emoji?: string;
  is_reaction_add?: boolean;
  reacted_to_guid?: string;
  chat_identifier: string;
  chat_guid: string;
  chat_name: string;
  participants: string[];
  is_group: boolean;
}

/** RPC Chat object of `chats.list` (§4.1). */
export interface ChatPayload {
  id: number;
  identifier: string;
  guid: string;
  name: string;
  service: string;
  last_message_at: string;
  participants: string[];
  is_group: boolean;
}

/** Filters of messages.history (participants, start inclusive, end exclusive; ms since the Unix epoch). */
export interface HistoryQuery {
  chatId: number;
  limit: number;
  participants?: string[];
  startMs?: number;
  endMs?: number;
  attachments?: boolean;
}

interface RawMessage {
  id: number;
  guid: string;
  text: string;
  is_from_me: number;
  date_ms: number;
  handle: string;
  dest: string;
  amt: number;
  amg: string;
  tog: string;
  balloon: string;
  chat_id: number;
}

const MESSAGE_SELECT = `
SELECT m.ROWID AS id, m.guid AS guid, IFNULL(m.text, '') AS text, IFNULL(m.is_from_me, 0) AS is_from_me,
  IFNULL(m.date, 0) / 1000000 AS date_ms, IFNULL(h.id, '') AS handle, IFNULL(m.destination_caller_id, '') AS dest,
  IFNULL(m.associated_message_type, 0) AS amt, IFNULL(m.associated_message_guid, '') AS amg,
  IFNULL(m.thread_originator_guid, '') AS tog, IFNULL(m.balloon_bundle_id, '') AS balloon,
  IFNULL((SELECT MIN(j.chat_id) FROM chat_message_join j WHERE j.message_id = m.ROWID), 0) AS chat_id
FROM message m LEFT JOIN handle h ON h.ROWID = m.handle_id`;
const NOT_TAPBACK = "IFNULL(m.associated_message_type, 0) NOT BETWEEN 2000 AND 3006";

/** `YYYY-MM-DDTHH:MM:SS.sssZ`, the only timestamp format imsg emits. */
export function isoFromMs(ms: number): string {
  return new Date(ms).toISOString();
}

/** Apple-epoch nanoseconds (chat.db `date`) for a JS date; BigInt because the value exceeds 2^53. */
export function appleNanos(d: Date): bigint {
  return BigInt(d.getTime() - APPLE_EPOCH_MS) * 1_000_000n;
}

/** True iff the chat identifier or guid marks a group (`;+;`), imsg's only rule. */
export function isGroupChat(identifier: string, guid: string): boolean {
  return identifier.includes(";+;") || guid.includes(";+;");
}

/** `~/x` → `$HOME/x`; anything else unchanged. */
export function expandTilde(p: string): string {
  return p === "~" || p.startsWith("~/") ? homedir() + p.slice(1) : p;
}

/** Drops a `p:0/`-style prefix (everything up to the last `/`); `bp:` prefixes without `/` stay (§3.3). */
export function stripGuidPrefix(guid: string): string {
  const i = guid.lastIndexOf("/");
  return i >= 0 ? guid.slice(i + 1) : guid;
}

const MIME_BY_EXT: Record<string, [mime: string, uti: string]> = {
  ".jpg": ["image/jpeg", "public.jpeg"],
  ".jpeg": ["image/jpeg", "public.jpeg"],
  ".png": ["image/png", "public.png"],
  ".heic": ["image/heic", "public.heic"],
  ".gif": ["image/gif", "com.compuserve.gif"],
  ".pdf": ["application/pdf", "com.adobe.pdf"],
  ".txt": ["text/plain", "public.plain-text"],
  ".caf": ["audio/x-caf", "com.apple.coreaudio-format"],
  ".m4a": ["audio/mp4", "public.mpeg-4-audio"],
  ".mp4": ["video/mp4", "public.mpeg-4"],
  ".mov": ["video/quicktime", "com.apple.quicktime-movie"],
};

/** Decodes a tapback row's kind; type/emoji are absent when a custom emoji can't be recovered (§3.3). */
function decodeReaction(amt: number, text: string): { add: boolean; type?: ReactionType; emoji?: string } {
  const add = amt < 3000;
  const spec = REACTIONS[amt % 1000];
  if (!spec) return { add };
  if (spec.type !== "custom") return { add, type: spec.type, emoji: spec.emoji };
  const m = add ? /^Reacted (.+?) to /u.exec(text) : /^Removed (?:an? )?(.+?) from /u.exec(text);
  return m?.[1] ? { add, type: "custom", emoji: m[1] } : { add };
}

/** The chat.db stand-in. Open one per process; WAL + busy timeout let a test write while the simulator reads. */
export class SimDb {
  /** The underlying connection, for tests that need raw SQL (e.g. breaking the schema on purpose). */
  readonly sql: Database;
  readonly path: string;
  readonly selfHandle: string;
  // imsg's ChatCache is per process and never invalidated (§2.1); only the simulator process turns it on.
  #chatCache: Map<number, ChatInfo> | undefined;
  // URL-preview de-duplication state lives on the store, shared by all subscriptions (§5).
  #urlSeen = new Map<string, number>();

  constructor(path: string, opts: { cacheChatInfo?: boolean; selfHandle?: string } = {}) {
    this.path = path;
    this.selfHandle = opts.selfHandle ?? DEFAULT_SELF;
    this.#chatCache = opts.cacheChatInfo ? new Map() : undefined;
    this.sql = new Database(path, { create: true });
    this.sql.exec("PRAGMA busy_timeout = 5000");
    this.sql.exec("PRAGMA journal_mode = WAL");
    this.sql.exec(SCHEMA);
  }

  /** Closes the connection. */
  close(): void {
    this.sql.close();
  }

  /**
   * Bumps the database file's mtime so watchers see a change event after a commit. A watcher woken by the WAL
   * write itself can poll before the commit is readable and would then wait for the fallback poll.
   */
  touch(): void {
    const now = new Date();
    utimesSync(this.path, now, now);
  }

  /** Highest message ROWID (0 when empty): where a watch without `since_rowid` starts. */
  maxRowid(): number {
    return this.sql.query<{ m: number }, []>("SELECT IFNULL(MAX(ROWID), 0) AS m FROM message").get()?.m ?? 0;
  }

  /** Finds or creates a handle row; returns its ROWID. */
  handleId(id: string, service = "iMessage"): number {
    this.sql.query("INSERT OR IGNORE INTO handle (id, service) VALUES (?, ?)").run(id, service);
    return this.sql.query<{ r: number }, [string, string]>("SELECT ROWID AS r FROM handle WHERE id = ? AND service = ?").get(id, service)!.r;
  }

  /** A chat by ROWID, straight from the database. */
  chatById(id: number): ChatRow | undefined {
    const row = this.sql
      .query<{ id: number; guid: string | null; identifier: string | null; display_name: string | null; service: string | null }, [number]>(
        "SELECT ROWID AS id, guid, chat_identifier AS identifier, display_name, service_name AS service FROM chat WHERE ROWID = ?",
      )
      .get(id);
    if (!row) return undefined;
    return {
      id: row.id,
      guid: row.guid ?? "",
      identifier: row.identifier ?? "",
      displayName: row.display_name,
      service: row.service ?? "",
      participants: this.#participants(row.id),
    };
  }

  /** A chat by exact guid. */
  chatByGuid(guid: string): ChatRow | undefined {
    const r = this.sql.query<{ id: number }, [string]>("SELECT ROWID AS id FROM chat WHERE guid = ?").get(guid);
    return r ? this.chatById(r.id) : undefined;
  }

  /** The first chat with this chat_identifier. */
  chatByIdentifier(identifier: string): ChatRow | undefined {
    const r = this.sql.query<{ id: number }, [string]>("SELECT ROWID AS id FROM chat WHERE chat_identifier = ? ORDER BY ROWID LIMIT 1").get(identifier);
    return r ? this.chatById(r.id) : undefined;
  }

  /** Every chat, by ROWID. */
  chats(): ChatRow[] {
    return this.sql
      .query<{ id: number }, []>("SELECT ROWID AS id FROM chat ORDER BY ROWID")
      .all()
      .map((r) => this.chatById(r.id)!);
  }

  /** The direct chat `<service>;-;<handle>`, created with its handle joined when missing. */
  ensureDirectChat(handle: string, service: "iMessage" | "SMS" = "iMessage"): ChatRow {
    const guid = `${service};-;${handle}`;
    const existing = this.chatByGuid(guid);
    if (existing) return existing;
    const id = Number(
      this.sql
        .query("INSERT INTO chat (guid, style, chat_identifier, service_name, display_name) VALUES (?, 45, ?, ?, NULL)")
        .run(guid, handle, service).lastInsertRowid,
    );
    this.sql.query("INSERT OR IGNORE INTO chat_handle_join (chat_id, handle_id) VALUES (?, ?)").run(id, this.handleId(handle, service));
    return this.chatById(id)!;
  }

  /** The group chat `iMessage;+;<identifier>`, created or extended with the given participants. */
  ensureGroupChat(opts: { identifier?: string; name?: string; participants?: string[] }): ChatRow {
    const identifier = opts.identifier ?? `chat${Date.now()}${String(Math.floor(Math.random() * 1e6)).padStart(6, "0")}`;
    const guid = `iMessage;+;${identifier}`;
    let id = this.chatByGuid(guid)?.id;
    if (id === undefined) {
      id = Number(
        this.sql
          .query("INSERT INTO chat (guid, style, chat_identifier, service_name, display_name) VALUES (?, 43, ?, 'iMessage', ?)")
          .run(guid, identifier, opts.name ?? null).lastInsertRowid,
      );
    } else if (opts.name !== undefined) {
      this.sql.query("UPDATE chat SET display_name = ? WHERE ROWID = ?").run(opts.name, id);
    }
    for (const p of opts.participants ?? []) {
      this.sql.query("INSERT OR IGNORE INTO chat_handle_join (chat_id, handle_id) VALUES (?, ?)").run(id, this.handleId(p));
    }
    return this.chatById(id)!;
  }

  /** Writes one message row (DM, group, or unjoined) as Messages would; see InjectOptions. */
  inject(o: InjectOptions): Injected {
    const write = this.sql.transaction((): Injected => {
      const service = o.service ?? "iMessage";
      let chat: ChatRow | undefined;
      if (o.chatId !== undefined) {
        if (o.chatId !== 0) {
          chat = this.chatById(o.chatId);
          if (!chat) throw new Error(`unknown chat_id ${o.chatId}`);
        }
      } else if (o.group) {
        chat = this.ensureGroupChat({ ...o.group, participants: [...(o.group.participants ?? []), ...(o.isFromMe ? [] : [o.from])] });
      } else {
        chat = this.ensureDirectChat(o.from, service);
      }
      const group = chat ? isGroupChat(chat.identifier, chat.guid) : false;
      // Outgoing group rows carry no handle (sender falls back to destination_caller_id, §4.5).
      const handleId = o.from && !(o.isFromMe && group) ? this.handleId(o.from, service) : 0;
      // Senders join the chat's participants, except our own handle (echo and self-chat twins).
      if (chat && handleId && !o.isFromMe && o.from !== this.selfHandle) {
        this.sql.query("INSERT OR IGNORE INTO chat_handle_join (chat_id, handle_id) VALUES (?, ?)").run(chat.id, handleId);
      }
      const date = appleNanos(o.createdAt ?? new Date());
      const guid = o.guid ?? randomUUID().toUpperCase();
      const attachments = o.attachments ?? [];
      let text = o.text ?? "\ufffc".repeat(attachments.length);
      let amt = 0;
      let amg: string | null = o.replyToGuid ? `p:0/${o.replyToGuid}` : null;
      if (o.reaction) {
        const idx = REACTIONS.findIndex((r) => r.type === o.reaction!.type);
        amt = (o.reaction.remove ? 3000 : 2000) + idx;
        amg = `p:0/${o.reaction.to}`;
        if (o.text === undefined) text = this.#reactionText(o.reaction, idx);
      }
      const rowid = Number(
        this.sql
          .query(
            `INSERT INTO message (guid, text, handle_id, service, date, is_from_me, cache_has_attachments, destination_caller_id,
               associated_message_type, associated_message_guid, thread_originator_guid, balloon_bundle_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            guid,
            text,
            handleId,
            service,
            date,
            o.isFromMe ? 1 : 0,
            attachments.length ? 1 : 0,
            o.destinationCallerId ?? this.selfHandle,
            amt,
            amg,
            o.threadOriginatorGuid ?? null,
            o.balloonBundleId ?? null,
          ).lastInsertRowid,
      );
      if (chat) {
        this.sql.query("INSERT INTO chat_message_join (chat_id, message_id, message_date) VALUES (?, ?, ?)").run(chat.id, rowid, date);
      }
      for (const a of attachments) {
        const [mime, uti] = MIME_BY_EXT[extname(a.path).toLowerCase()] ?? ["", ""];
        const size = a.totalBytes ?? (existsSync(a.path) ? statSync(a.path).size : 0);
        const attId = this.sql
          .query(
            `INSERT INTO attachment (guid, created_date, filename, uti, mime_type, transfer_name, total_bytes, is_sticker)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(randomUUID().toUpperCase(), date / 1_000_000_000n, a.path, a.uti ?? uti, a.mimeType ?? mime, a.transferName ?? basename(a.path), size, a.isSticker ? 1 : 0)
          .lastInsertRowid;
        this.sql.query("INSERT INTO message_attachment_join (message_id, attachment_id) VALUES (?, ?)").run(rowid, attId);
      }
      return { rowid, guid, chatId: chat?.id ?? 0 };
    });
    const injected = write.immediate();
    this.touch();
    return injected;
  }

  /** Outgoing rows (`is_from_me=1`) after `sinceRowid`, oldest first. */
  sent(opts: { sinceRowid?: number } = {}): SentRow[] {
    return this.messages()
      .filter((m) => m.isFromMe && m.rowid > (opts.sinceRowid ?? 0))
      .map((m) => {
        const chat = m.chatId ? this.chatById(m.chatId) : undefined;
        return {
          rowid: m.rowid,
          guid: m.guid,
          text: m.text,
          chatId: m.chatId,
          chatIdentifier: chat?.identifier ?? "",
          chatGuid: chat?.guid ?? "",
          recipient: m.handle || (chat?.identifier ?? ""),
          ...(m.files[0] !== undefined ? { file: m.files[0] } : {}),
          createdAt: m.createdAt,
        };
      });
  }

  /** Every message row, by ROWID. */
  messages(): MessageRow[] {
    return this.sql
      .query<RawMessage, []>(`${MESSAGE_SELECT} ORDER BY m.ROWID`)
      .all()
      .map((r) => ({
        rowid: r.id,
        guid: r.guid,
        text: r.text,
        handle: r.handle,
        isFromMe: r.is_from_me === 1,
        chatId: r.chat_id,
        createdAt: new Date(r.date_ms + APPLE_EPOCH_MS),
        destinationCallerId: r.dest,
        associatedMessageType: r.amt,
        associatedMessageGuid: r.amg,
        files: this.#attachmentRows(r.id).map((a) => a.filename),
      }));
  }

  /** Chat fields through the (optional, never invalidated) per-process cache. */
  chatInfo(chatId: number): ChatInfo | undefined {
    const cached = this.#chatCache?.get(chatId);
    if (cached) return cached;
    const row = this.chatById(chatId);
    if (!row) return undefined;
    const info = { id: row.id, identifier: row.identifier, guid: row.guid, name: row.displayName ?? row.identifier, service: row.service, participants: row.participants };
    this.#chatCache?.set(chatId, info);
    return info;
  }

  /** `chats.list`: chats with at least one message, newest last message first. */
  listChats(limit: number): ChatPayload[] {
    const rows = this.sql
      .query<{ id: number; identifier: string; name: string; service: string; last_ms: number }, [number]>(
        `SELECT c.ROWID AS id, IFNULL(c.chat_identifier, '') AS identifier, IFNULL(c.display_name, IFNULL(c.chat_identifier, '')) AS name,
           IFNULL(c.service_name, '') AS service, MAX(IFNULL(m.date, 0)) / 1000000 AS last_ms
         FROM chat c JOIN chat_message_join j ON j.chat_id = c.ROWID JOIN message m ON m.ROWID = j.message_id
         GROUP BY c.ROWID ORDER BY MAX(IFNULL(m.date, 0)) DESC LIMIT ?`,
      )
      .all(limit);
    return rows.map((r) => {
      const info = this.chatInfo(r.id);
      const identifier = info?.identifier ?? r.identifier;
      const guid = info?.guid ?? "";
      return {
        id: r.id,
        identifier,
        guid,
        name: info?.name ? info.name : r.name,
        service: info?.service ?? r.service,
        last_message_at: isoFromMs(r.last_ms + APPLE_EPOCH_MS),
        participants: info?.participants ?? [],
        is_group: isGroupChat(identifier, guid),
      };
    });
  }

  /** `messages.history`: filters in SQL before the limit, newest first, tapbacks hidden, reactions always filled. */
  history(q: HistoryQuery): MessagePayload[] {
    const where = ["EXISTS (SELECT 1 FROM chat_message_join j WHERE j.chat_id = ? AND j.message_id = m.ROWID)", NOT_TAPBACK];
    const args: (number | string)[] = [q.chatId];
    if (q.participants?.length) {
      where.push(`LOWER(IFNULL(h.id, '')) IN (${q.participants.map(() => "LOWER(?)").join(", ")})`);
      args.push(...q.participants);
    }
    if (q.startMs !== undefined) {
      where.push("IFNULL(m.date, 0) / 1000000 >= ?");
      args.push(q.startMs - APPLE_EPOCH_MS);
    }
    if (q.endMs !== undefined) {
      where.push("IFNULL(m.date, 0) / 1000000 < ?");
      args.push(q.endMs - APPLE_EPOCH_MS);
    }
    args.push(q.limit);
    const rows = this.sql.prepare<RawMessage, (number | string)[]>(`${MESSAGE_SELECT} WHERE ${where.join(" AND ")} ORDER BY m.date DESC LIMIT ?`).all(...args);
    return rows.map((r) => this.#payload(r, { attachments: q.attachments ?? false, reactions: true }));
  }

  /**
   * One watch poll: up to `limit` rows with ROWID > `after`, ascending. `lastRowid` is where the cursor moves,
   * including past URL-preview duplicates that are dropped here.
   */
  messagesAfter(
    after: number,
    o: { chatId?: number; limit: number; includeReactions: boolean; attachments: boolean },
  ): { messages: MessagePayload[]; lastRowid: number } {
    const where = ["m.ROWID > ?"];
    const args: number[] = [after];
    if (o.chatId !== undefined) {
      where.push("EXISTS (SELECT 1 FROM chat_message_join j WHERE j.chat_id = ? AND j.message_id = m.ROWID)");
      args.push(o.chatId);
    }
    if (!o.includeReactions) where.push(NOT_TAPBACK);
    args.push(o.limit);
    const rows = this.sql.query<RawMessage, number[]>(`${MESSAGE_SELECT} WHERE ${where.join(" AND ")} ORDER BY m.ROWID LIMIT ?`).all(...args);
    const messages: MessagePayload[] = [];
    for (const r of rows) {
      if (this.#isUrlDuplicate(r)) continue;
      messages.push(this.#payload(r, { attachments: o.attachments, reactions: o.includeReactions }));
    }
    return { messages, lastRowid: rows.at(-1)?.id ?? after };
  }

  #isUrlDuplicate(r: RawMessage): boolean {
    if (r.balloon !== URL_BALLOON) return false;
    const key = JSON.stringify([r.chat_id, r.is_from_me, r.handle || r.dest, r.text]);
    const seen = this.#urlSeen.get(key);
    this.#urlSeen.set(key, r.date_ms);
    return seen !== undefined && Math.abs(r.date_ms - seen) <= 90_000;
  }

  #reactionText(r: NonNullable<InjectOptions["reaction"]>, idx: number): string {
    const target = this.sql.query<{ text: string | null }, [string]>("SELECT text FROM message WHERE guid = ?").get(r.to)?.text ?? "";
    const spec = REACTIONS[idx]!;
    const quoted = `“${target}”`;
    if (spec.type === "custom") return r.remove ? `Removed a ${r.emoji ?? ""} from ${quoted}` : `Reacted ${r.emoji ?? ""} to ${quoted}`;
    return r.remove ? `Removed ${spec.removed} from ${quoted}` : `${spec.verb} ${quoted}`;
  }

  #participants(chatId: number): string[] {
    const ids = this.sql
      .query<{ id: string }, [number]>(
        "SELECT DISTINCT h.id AS id FROM chat_handle_join j JOIN handle h ON h.ROWID = j.handle_id WHERE j.chat_id = ? AND IFNULL(h.id, '') <> ''",
      )
      .all(chatId)
      .map((r) => r.id);
    return [...new Set(ids)].sort();
  }

  #attachmentRows(messageId: number) {
    return this.sql
      .query<{ filename: string; transfer_name: string; uti: string; mime_type: string; total_bytes: number; is_sticker: number }, [number]>(
        `SELECT IFNULL(a.filename, '') AS filename, IFNULL(a.transfer_name, '') AS transfer_name, IFNULL(a.uti, '') AS uti,
           IFNULL(a.mime_type, '') AS mime_type, IFNULL(a.total_bytes, 0) AS total_bytes, IFNULL(a.is_sticker, 0) AS is_sticker
         FROM message_attachment_join j JOIN attachment a ON a.ROWID = j.attachment_id WHERE j.message_id = ? ORDER BY a.ROWID`,
      )
      .all(messageId);
  }

  #attachments(messageId: number): AttachmentPayload[] {
    return this.#attachmentRows(messageId).map((a) => {
      const original = a.filename ? expandTilde(a.filename) : "";
      let missing = true;
      if (original) {
        try {
          missing = statSync(original).isDirectory();
        } catch {
          missing = true;
        }
      }
      return {
        filename: a.filename,
        transfer_name: a.transfer_name,
        uti: a.uti,
        mime_type: a.mime_type,
        total_bytes: a.total_bytes,
        is_sticker: a.is_sticker === 1,
        original_path: original,
        missing,
      };
    });
  }

  // Net current tapbacks on a message: removals cancel earlier adds of the same type by the same sender (§4.4).
  #reactions(guid: string): ReactionPayload[] {
    if (!guid) return [];
    const rows = this.sql
      .query<{ id: number; amt: number; text: string; handle: string; is_from_me: number; date_ms: number }, [string, string]>(
        `SELECT m.ROWID AS id, m.associated_message_type AS amt, IFNULL(m.text, '') AS text, IFNULL(h.id, '') AS handle,
           IFNULL(m.is_from_me, 0) AS is_from_me, IFNULL(m.date, 0) / 1000000 AS date_ms
         FROM message m LEFT JOIN handle h ON h.ROWID = m.handle_id
         WHERE m.associated_message_type BETWEEN 2000 AND 3006 AND (m.associated_message_guid = ? OR m.associated_message_guid LIKE ?)
         ORDER BY m.date, m.ROWID`,
      )
      .all(guid, `%/${guid}`);
    const out: ReactionPayload[] = [];
    for (const r of rows) {
      const d = decodeReaction(r.amt, r.text);
      if (!d.type) continue;
      const same = (x: ReactionPayload) => x.type === d.type && x.sender === r.handle && x.is_from_me === (r.is_from_me === 1);
      if (!d.add) {
        for (let i = out.length - 1; i >= 0; i--) if (same(out[i]!)) out.splice(i, 1);
        continue;
      }
      out.push({ id: r.id, type: d.type, emoji: d.emoji ?? "", sender: r.handle, is_from_me: r.is_from_me === 1, created_at: isoFromMs(r.date_ms + APPLE_EPOCH_MS) });
    }
    return out;
  }

  #payload(r: RawMessage, o: { attachments: boolean; reactions: boolean }): MessagePayload {
    const info = r.chat_id ? this.chatInfo(r.chat_id) : undefined;
    const identifier = info?.identifier ?? "";
    const chatGuid = info?.guid ?? "";
    const isReaction = r.amt >= 2000 && r.amt <= 3006;
    const p: MessagePayload = {
      id: r.id,
      chat_id: r.chat_id,
      guid: r.guid,
      sender: r.handle || r.dest,
      is_from_me: r.is_from_me === 1,
      text: r.text,
      created_at: isoFromMs(r.date_ms + APPLE_EPOCH_MS),
      attachments: o.attachments ? this.#attachments(r.id) : [],
      reactions: o.reactions ? this.#reactions(r.guid) : [],
      chat_identifier: identifier,
      chat_guid: chatGuid,
      chat_name: info?.name ?? "",
      participants: info?.participants ?? [],
      is_group: isGroupChat(identifier, chatGuid),
    };
    if (r.dest) p.destination_caller_id = r.dest;
    if (isReaction) {
      const d = decodeReaction(r.amt, r.text);
      p.is_reaction = true;
      if (d.type) {
        p.reaction_type = d.type;
        p.reaction_emoji = d.emoji!;
      }
      p.is_reaction_add = d.add;
      if (r.amg) p.reacted_to_guid = stripGuidPrefix(r.amg);
      return p;
    }
    const replyTo = r.amg ? stripGuidPrefix(r.amg) : "";
    if (replyTo) p.reply_to_guid = replyTo;
    if (r.tog) p.thread_originator_guid = r.tog;
    const parentGuid = replyTo || r.tog;
    if (parentGuid) {
      const parent = this.sql
        .query<{ text: string; handle: string }, [string]>(
          "SELECT IFNULL(m.text, '') AS text, IFNULL(h.id, '') AS handle FROM message m LEFT JOIN handle h ON h.ROWID = m.handle_id WHERE m.guid = ?",
        )
        .get(parentGuid);
      if (parent?.text) p.reply_to_text = parent.text;
      if (parent?.handle) p.reply_to_sender = parent.handle;
    }
    return p;
  }
}
