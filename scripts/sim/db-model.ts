// Shapes and pure helpers of the simulated chat.db (docs/IMSG-PROTOCOL.md "Payloads"). Bun-only.
import { homedir } from "node:os";
/** Milliseconds between the Unix epoch and Apple's (2001-01-01T00:00:00Z). */
export const APPLE_EPOCH_MS = 978_307_200_000;
/** The simulator's own handle unless IMSG_SIM_SELF says otherwise. */
export const DEFAULT_SELF = "+15550009999";
/** balloon_bundle_id of URL-preview rows, the only rows imsg de-duplicates. */
export const URL_BALLOON = "com.apple.messages.URLBalloonProvider";

export const SCHEMA = `
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
CREATE TABLE IF NOT EXISTS sim_control (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sim_fault (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, method TEXT NOT NULL, kind TEXT NOT NULL, lands INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sim_contact (handle TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sim_presence (
  ROWID INTEGER PRIMARY KEY AUTOINCREMENT, method TEXT NOT NULL, chat_id INTEGER, target TEXT NOT NULL,
  typing INTEGER, ok INTEGER NOT NULL, error TEXT, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS cmj_message ON chat_message_join (message_id);
`;

/** One `typing`/`read` call as the simulator received it (SimDb.presenceEvents). */
export interface PresenceEvent {
  method: "typing" | "read";
  /** The chat it resolved to (undefined for a direct target without a chat yet). */
  chatId?: number;
  /** The chat GUID or identifier it addressed. */
  target: string;
  /** typing: on or off; undefined for read. */
  typing?: boolean;
  /** false when imsg refused it (no bridge). */
  ok: boolean;
  error?: string;
  /** Epoch ms (sub-ms precision) when the simulator handled it. */
  at: number;
}

/** Tapback kinds as the read side names them (`emphasis`, not `emphasize`). */
export type ReactionType = "love" | "like" | "dislike" | "laugh" | "emphasis" | "question" | "custom";
export const REACTIONS: { type: ReactionType; emoji: string; verb: string; removed: string }[] = [
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
  /** Leave `text` NULL and store the body only in `attributedBody`, as newer macOS often does. */
  attributedBodyOnly?: boolean;
  /** A new direct chat gets the macOS 26 `any;-;<handle>` guid instead of `<service>;-;<handle>`. */
  anyGuid?: boolean;
  /** display_name of a chat this inject creates; real Macs store '' for unnamed chats (default NULL). */
  displayName?: string;
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
  /** thread_originator_guid ("" when the row is not in a thread). */
  threadOriginatorGuid: string;
  files: string[];
}

/** One tapback row on a message, as SimDb.reactionsOn reports it (every row, adds and removals, oldest first). */
export interface TapbackRow {
  rowid: number;
  guid: string;
  /** The read side's kind (`emphasis`, `custom`); undefined for a custom row whose emoji cannot be recovered. */
  type?: ReactionType;
  emoji?: string;
  isFromMe: boolean;
  /** false for a removal (3000–3006). */
  add: boolean;
  /** The reacting handle ("" on our own rows in a group). */
  sender: string;
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

/** RPC Attachment object. */
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

/** RPC Reaction object. */
export interface ReactionPayload {
  id: number;
  type: ReactionType;
  emoji: string;
  sender: string;
  is_from_me: boolean;
  created_at: string;
}

/** RPC Message object; optional fields are omitted, never null. */
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
  /** 0.15: the sender's Contacts name, when known. */
  sender_name?: string;
  chat_identifier: string;
  chat_guid: string;
  chat_name: string;
  participants: string[];
  is_group: boolean;
}

/** RPC Chat object of `chats.list`. */
export interface ChatPayload {
  id: number;
  identifier: string;
  guid: string;
  name: string;
  service: string;
  last_message_at: string;
  participants: string[];
  is_group: boolean;
  /** 0.15: the Contacts name of a direct chat's handle, when known. */
  contact_name?: string;
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

export interface RawMessage {
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
  body: Uint8Array | null;
  chat_id: number;
}

export const MESSAGE_SELECT = `
SELECT m.ROWID AS id, m.guid AS guid, IFNULL(m.text, '') AS text, IFNULL(m.is_from_me, 0) AS is_from_me,
  IFNULL(m.date, 0) / 1000000 AS date_ms, IFNULL(h.id, '') AS handle, IFNULL(m.destination_caller_id, '') AS dest,
  IFNULL(m.associated_message_type, 0) AS amt, IFNULL(m.associated_message_guid, '') AS amg,
  IFNULL(m.thread_originator_guid, '') AS tog, IFNULL(m.balloon_bundle_id, '') AS balloon,
  m.attributedBody AS body,
  IFNULL((SELECT MIN(j.chat_id) FROM chat_message_join j WHERE j.message_id = m.ROWID), 0) AS chat_id
FROM message m LEFT JOIN handle h ON h.ROWID = m.handle_id`;
export const NOT_TAPBACK = "IFNULL(m.associated_message_type, 0) NOT BETWEEN 2000 AND 3006";
/** True for a tapback row's associated_message_type (2000–2006 add, 3000–3006 remove; the SQL above agrees). */
export const isTapbackType = (amt: number) => amt >= 2000 && amt <= 3006;

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

/** Drops a `p:0/`-style prefix (everything up to the last `/`); `bp:` prefixes without `/` stay. */
export function stripGuidPrefix(guid: string): string {
  const i = guid.lastIndexOf("/");
  return i >= 0 ? guid.slice(i + 1) : guid;
}

export const MIME_BY_EXT: Record<string, [mime: string, uti: string]> = {
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

/** Decodes a tapback row's kind; type/emoji are absent when a custom emoji can't be recovered. */
export function decodeReaction(amt: number, text: string): { add: boolean; type?: ReactionType; emoji?: string } {
  const add = amt < 3000;
  const spec = REACTIONS[amt % 1000];
  if (!spec) return { add };
  if (spec.type !== "custom") return { add, type: spec.type, emoji: spec.emoji };
  const m = add ? /^Reacted (.+?) to /u.exec(text) : /^Removed (?:an? )?(.+?) from /u.exec(text);
  return m?.[1] ? { add, type: "custom", emoji: m[1] } : { add };
}

/** What a queued fault makes the next matching mutation do (docs/IMSG-PROTOCOL.md "Typed delivery outcomes"). */
export type FaultKind = "still_in_flight" | "may_have_completed" | "not_started";

/**
 * A minimal NSAttributedString typedstream holding `text`: enough for the simulator's decoder (and shaped like
 * what Messages writes: the string follows the NSString class marker as `+`, a length, then UTF-8 bytes).
 */
export function encodeAttributedBody(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const len = bytes.length < 0x80 ? [bytes.length] : [0x81, bytes.length & 0xff, (bytes.length >> 8) & 0xff];
  const head = Uint8Array.from(
    "\x04\x0bstreamtyped\x81\xe8\x03\x84\x01@\x84\x84\x84\x12NSAttributedString\x00\x84\x84\x08NSObject\x00\x85\x92\x84\x84\x84\x08NSString\x01\x94\x84\x01+",
    (c) => c.charCodeAt(0),
  );
  return new Uint8Array([...head, ...len, ...bytes, 0x86, 0x84]);
}

/** Recovers the text of an attributedBody blob (the inverse of encodeAttributedBody); "" when unreadable. */
export function decodeAttributedBody(blob: Uint8Array | null | undefined): string {
  if (!blob) return "";
  const b = blob instanceof Uint8Array ? blob : new Uint8Array(blob as ArrayBufferLike);
  const marker = new TextEncoder().encode("NSString");
  for (let i = 0; i + marker.length < b.length; i++) {
    if (!marker.every((m, k) => b[i + k] === m)) continue;
    let j = i + marker.length;
    while (j < b.length && b[j] !== 0x2b) j++; // '+'
    j++;
    let len = b[j++] ?? 0;
    if (len === 0x81) {
      len = (b[j] ?? 0) | ((b[j + 1] ?? 0) << 8);
      j += 2;
    }
    return new TextDecoder().decode(b.slice(j, j + len));
  }
  return "";
}
