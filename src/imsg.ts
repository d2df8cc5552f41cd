// Typed imsg objects (../shared/reference/imsg-rpc.md §4), their validation, and typed RPC calls.
import * as v from "valibot";
import type { RpcClient } from "./rpc.ts";

/** An attachment of a message, normalised to camelCase. */
export interface ImsgAttachment {
  filename: string;
  transferName: string;
  uti: string;
  mimeType: string;
  totalBytes: number;
  isSticker: boolean;
  originalPath: string;
  missing: boolean;
}

/** A `message` notification's message, normalised to camelCase; optional strings stay undefined. */
export interface ImsgMessage {
  id: number; // ROWID, the watch cursor
  chatId: number; // 0 when not joined to a chat
  guid: string;
  sender: string;
  senderName?: string;
  isFromMe: boolean;
  text: string;
  createdAt: string; // ISO
  attachments: ImsgAttachment[];
  replyToGuid?: string;
  replyToText?: string;
  replyToSender?: string;
  threadOriginatorGuid?: string;
  destinationCallerId?: string;
  chatIdentifier: string;
  chatGuid: string;
  chatName: string;
  participants: string[];
  isGroup: boolean;
  isReaction?: boolean;
  reactionType?: string;
  reactionEmoji?: string;
  isReactionAdd?: boolean;
  reactedToGuid?: string;
}

/** A `chats.list` entry, normalised to camelCase. */
export interface ImsgChat {
  id: number;
  identifier: string;
  guid: string;
  name: string;
  service: string;
  lastMessageAt: string;
  participants: string[];
  isGroup: boolean;
  contactName?: string;
}


const str = v.optional(v.string());
const AttachmentSchema = v.object({
  filename: v.optional(v.string(), ""),
  transfer_name: v.optional(v.string(), ""),
  uti: v.optional(v.string(), ""),
  mime_type: v.optional(v.string(), ""),
  total_bytes: v.optional(v.number(), 0),
  is_sticker: v.optional(v.boolean(), false),
  original_path: v.optional(v.string(), ""),
  missing: v.optional(v.boolean(), false),
});

// Lenient on optional fields (imsg omits them, older versions lack some), strict on the ones we act on.
const MessageSchema = v.object({
  id: v.pipe(v.number(), v.integer()),
  chat_id: v.optional(v.pipe(v.number(), v.integer()), 0),
  guid: v.optional(v.string(), ""),
  sender: v.optional(v.string(), ""),
  sender_name: str,
  is_from_me: v.boolean(),
  text: v.optional(v.string(), ""),
  created_at: v.optional(v.string(), ""),
  attachments: v.optional(v.array(AttachmentSchema), []),
  reply_to_guid: str,
  reply_to_text: str,
  reply_to_sender: str,
  thread_originator_guid: str,
  destination_caller_id: str,
  chat_identifier: v.optional(v.string(), ""),
  chat_guid: v.optional(v.string(), ""),
  chat_name: v.optional(v.string(), ""),
  participants: v.optional(v.array(v.string()), []),
  is_group: v.optional(v.boolean(), false),
  is_reaction: v.optional(v.boolean()),
  reaction_type: str,
  reaction_emoji: str,
  is_reaction_add: v.optional(v.boolean()),
  reacted_to_guid: str,
});

const ChatSchema = v.object({
  id: v.pipe(v.number(), v.integer()),
  identifier: v.optional(v.string(), ""),
  guid: v.optional(v.string(), ""),
  name: v.optional(v.string(), ""),
  service: v.optional(v.string(), ""),
  last_message_at: v.optional(v.string(), ""),
  participants: v.optional(v.array(v.string()), []),
  is_group: v.optional(v.boolean(), false),
  contact_name: str,
});

function issuesText(issues: v.BaseIssue<unknown>[]): string {
  return issues
    .slice(0, 3)
    .map((i) => `${v.getDotPath(i) ?? "(root)"}: ${i.message}`)
    .join("; ");
}

// The one wire ↔ camelCase field map, used by parseMessage and toWireMessage alike, so a field added here
// survives the journal round trip in both directions. Keys are typed against ImsgMessage/ImsgAttachment.
const ATTACHMENT_FIELDS = {
  filename: "filename",
  transferName: "transfer_name",
  uti: "uti",
  mimeType: "mime_type",
  totalBytes: "total_bytes",
  isSticker: "is_sticker",
  originalPath: "original_path",
  missing: "missing",
} as const satisfies Record<keyof ImsgAttachment, keyof v.InferOutput<typeof AttachmentSchema>>;

const MESSAGE_FIELDS = {
  id: "id",
  chatId: "chat_id",
  guid: "guid",
  sender: "sender",
  senderName: "sender_name",
  isFromMe: "is_from_me",
  text: "text",
  createdAt: "created_at",
  attachments: "attachments",
  replyToGuid: "reply_to_guid",
  replyToText: "reply_to_text",
  replyToSender: "reply_to_sender",
  threadOriginatorGuid: "thread_originator_guid",
  destinationCallerId: "destination_caller_id",
  chatIdentifier: "chat_identifier",
  chatGuid: "chat_guid",
  chatName: "chat_name",
  participants: "participants",
  isGroup: "is_group",
  isReaction: "is_reaction",
  reactionType: "reaction_type",
  reactionEmoji: "reaction_emoji",
  isReactionAdd: "is_reaction_add",
  reactedToGuid: "reacted_to_guid",
} as const satisfies Record<keyof ImsgMessage, keyof v.InferOutput<typeof MessageSchema>>;

/** Renames an object's keys by `map` (camel → wire when `toWire`, wire → camel otherwise). */
function renameKeys(obj: Record<string, unknown>, map: Record<string, string>, toWire: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [camel, wire] of Object.entries(map)) {
    const [from, to] = toWire ? [camel, wire] : [wire, camel];
    out[to] = obj[from];
  }
  return out;
}

/** Parses a watch/history message; `{error}` for a malformed payload (logged and dropped by the caller). */
export function parseMessage(raw: unknown): { message: ImsgMessage } | { error: string } {
  const r = v.safeParse(MessageSchema, raw);
  if (!r.success) return { error: issuesText(r.issues) };
  const m = renameKeys(r.output, MESSAGE_FIELDS, false) as unknown as ImsgMessage;
  // Messages stores one U+FFFC per attachment in the text; it is not something the user typed.
  m.text = m.text.replace(/\uFFFC/g, "").trim();
  m.attachments = r.output.attachments.map((a) => renameKeys(a, ATTACHMENT_FIELDS, false) as unknown as ImsgAttachment);
  return { message: m };
}

/** Parses a chats.list entry. */
export function parseChat(raw: unknown): { chat: ImsgChat } | { error: string } {
  const r = v.safeParse(ChatSchema, raw);
  if (!r.success) return { error: issuesText(r.issues) };
  const c = r.output;
  return {
    chat: {
      id: c.id,
      identifier: c.identifier,
      guid: c.guid,
      name: c.name,
      service: c.service,
      lastMessageAt: c.last_message_at,
      participants: c.participants,
      isGroup: c.is_group,
      contactName: c.contact_name,
    },
  };
}

function objectResult(method: string, r: unknown): Record<string, unknown> {
  if (!r || typeof r !== "object" || Array.isArray(r)) throw new Error(`imsg ${method}: unexpected result ${JSON.stringify(r)?.slice(0, 200)}`);
  return r as Record<string, unknown>;
}

/** `chats.list`: the raw chat objects as imsg returns them (CONTRACT: `chats --json` prints them unchanged). */
export async function chatsList(client: RpcClient, limit: number, timeoutMs?: number): Promise<unknown[]> {
  const r = objectResult("chats.list", await client.request("chats.list", { limit }, { timeoutMs }));
  if (!Array.isArray(r.chats)) throw new Error("imsg chats.list: result has no chats array");
  return r.chats;
}

/** `watch.subscribe` options (sent snake_case). */
export interface WatchParams {
  sinceRowid?: number;
  attachments?: boolean;
  includeReactions?: boolean;
  debounceMs?: number;
}

/** `watch.subscribe` → subscription id. */
export async function watchSubscribe(client: RpcClient, p: WatchParams, timeoutMs?: number): Promise<number> {
  const params: Record<string, unknown> = { attachments: p.attachments ?? false, include_reactions: p.includeReactions ?? false };
  if (p.sinceRowid !== undefined) params.since_rowid = p.sinceRowid;
  if (p.debounceMs !== undefined) params.debounce_ms = p.debounceMs;
  const r = objectResult("watch.subscribe", await client.request("watch.subscribe", params, { timeoutMs }));
  if (typeof r.subscription !== "number") throw new Error("imsg watch.subscribe: no subscription id in result");
  return r.subscription;
}

/** `messages.history` (newest first, as imsg returns it), parsed; malformed entries skipped. */
export async function messagesHistory(
  client: RpcClient,
  chatId: number,
  opts: { limit?: number; start?: string; attachments?: boolean } = {},
  timeoutMs?: number,
): Promise<ImsgMessage[]> {
  const params: Record<string, unknown> = { chat_id: chatId, limit: opts.limit ?? 50 };
  if (opts.start) params.start = opts.start;
  if (opts.attachments) params.attachments = true;
  const r = objectResult("messages.history", await client.request("messages.history", params, { timeoutMs }));
  const list = Array.isArray(r.messages) ? r.messages : [];
  const out: ImsgMessage[] = [];
  for (const raw of list) {
    const p = parseMessage(raw);
    if ("message" in p) out.push(p.message);
  }
  return out;
}

/** `send` result; `id`/`guid` only from imsg 0.6.0 on, `transport` from 0.8.1. */
export interface SendResult {
  ok: boolean;
  id?: number;
  guid?: string;
  transport?: string;
}

/** `send` with already-built params (see targets.ts targetToSendParams). */
export async function sendMessage(client: RpcClient, params: Record<string, unknown>, timeoutMs?: number): Promise<SendResult> {
  const r = objectResult("send", await client.request("send", params, { timeoutMs }));
  return {
    ok: r.ok === true,
    id: typeof r.id === "number" ? r.id : undefined,
    guid: typeof r.guid === "string" && r.guid ? r.guid : undefined,
    transport: typeof r.transport === "string" ? r.transport : undefined,
  };
}

/** Parses `MAJOR.MINOR.PATCH` out of `imsg --version` output. */
export function parseVersion(text: string): [number, number, number] | undefined {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** `rpc` exists from imsg 0.3.0 on. */
export function versionSupportsRpc(v3: [number, number, number]): boolean {
  return v3[0] > 0 || v3[1] >= 3;
}

/** Back to imsg's wire shape (the journal stores ImsgMessage; resuming parses it again). */
export function toWireMessage(m: unknown): unknown {
  const x = m as ImsgMessage;
  if (!x || typeof x !== "object") return m;
  const wire = renameKeys(x as unknown as Record<string, unknown>, MESSAGE_FIELDS, true);
  wire.attachments = (x.attachments ?? []).map((a) => renameKeys(a as unknown as Record<string, unknown>, ATTACHMENT_FIELDS, true));
  return wire;
}
