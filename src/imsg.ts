// Typed imsg objects (docs/IMSG-PROTOCOL.md, Payloads), their validation, and typed RPC calls.
import * as v from "valibot";
import type { RpcClient } from "./rpc.ts";
import { RpcError } from "./rpc-errors.ts";

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
  /** imsg's own conversion (watch.subscribe `convert_attachments`): CAF → M4A, GIF → PNG. */
  convertedPath?: string;
  convertedMimeType?: string;
}

/** A tapback on a message, as history reports it (net current ones: a removal cancels its add). */
export interface ImsgReaction {
  id: number;
  /** love, like, dislike, laugh, emphasis (the read side's name for emphasize), question, or custom. */
  type: string;
  emoji: string;
  sender: string;
  isFromMe: boolean;
  createdAt: string;
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
  /** The tapbacks on this message (history fills them; a watch row usually has none). */
  reactions?: ImsgReaction[];
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
  /** How the message arrived, as far as it can be verified (see messageService). */
  service: MessageService;
}

/**
 * The transport of an inbound message. Only "imessage" is authenticated by Apple; an SMS/RCS sender id can be
 * forged (and is relayed as such by Text Message Forwarding), and macOS 26's `any;` chats do not say which it was.
 */
export type MessageService = "imessage" | "sms" | "rcs" | "unverified";

const SERVICE_NAMES: Record<string, MessageService> = { imessage: "imessage", sms: "sms", rcs: "rcs" };

/**
 * The service from imsg's own `service` field (when a version sends one) and the chat guid prefix
 * (`iMessage;`, `SMS;`, `RCS;`; `any;` or none is unverified). The less trusted of the two wins, except that an
 * explicit field refines an `any;` guid. Pure.
 */
export function messageService(field: string | undefined, chatGuid: string): MessageService {
  const prefix = /^([A-Za-z]+);/.exec(chatGuid)?.[1]?.toLowerCase();
  const fromGuid = prefix === "any" ? undefined : (SERVICE_NAMES[prefix ?? ""] ?? "unverified");
  const fromField = field === undefined || field.trim() === "" ? undefined : (SERVICE_NAMES[field.trim().toLowerCase()] ?? "unverified");
  const known = [fromGuid, fromField].filter((x): x is MessageService => x !== undefined);
  if (!known.length) return "unverified";
  return known.find((x) => x !== "imessage") ?? "imessage";
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
  converted_path: str,
  converted_mime_type: str,
});

const ReactionSchema = v.object({
  id: v.optional(v.number(), 0),
  type: v.optional(v.string(), ""),
  emoji: v.optional(v.string(), ""),
  sender: v.optional(v.string(), ""),
  is_from_me: v.optional(v.boolean(), false),
  created_at: v.optional(v.string(), ""),
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
  // Only history's lookups act on them (our own tapback landed?): a malformed list is ignored, not fatal.
  reactions: v.fallback(v.optional(v.array(ReactionSchema)), undefined),
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
  // Not in imsg's output up to 0.15; read when present, and a value of another type is ignored, not fatal.
  service: v.fallback(v.optional(v.string()), undefined),
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
  convertedPath: "converted_path",
  convertedMimeType: "converted_mime_type",
} as const satisfies Record<keyof ImsgAttachment, keyof v.InferOutput<typeof AttachmentSchema>>;

const REACTION_FIELDS = {
  id: "id",
  type: "type",
  emoji: "emoji",
  sender: "sender",
  isFromMe: "is_from_me",
  createdAt: "created_at",
} as const satisfies Record<keyof ImsgReaction, keyof v.InferOutput<typeof ReactionSchema>>;

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
  reactions: "reactions",
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
  service: "service",
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
  if (r.output.reactions) m.reactions = r.output.reactions.map((x) => renameKeys(x, REACTION_FIELDS, false) as unknown as ImsgReaction);
  else delete m.reactions;
  m.service = messageService(r.output.service, r.output.chat_guid);
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

export function objectResult(method: string, r: unknown): Record<string, unknown> {
  if (!r || typeof r !== "object" || Array.isArray(r)) throw new Error(`imsg ${method}: unexpected result ${JSON.stringify(r)?.slice(0, 200)}`);
  return r as Record<string, unknown>;
}

/** `chats.list`: the raw chat objects as imsg returns them (docs/SPEC.md §4.2: `chats --json` prints them unchanged). */
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
  convertAttachments?: boolean;
  /** 0.14+ only: rows per wake-up before the stream ends with watch.overflow (1–4096). */
  bufferLimit?: number;
}

/** `watch.subscribe` → subscription id. */
export async function watchSubscribe(client: RpcClient, p: WatchParams, timeoutMs?: number): Promise<number> {
  const params: Record<string, unknown> = { attachments: p.attachments ?? false, include_reactions: p.includeReactions ?? false };
  if (p.sinceRowid !== undefined) params.since_rowid = p.sinceRowid;
  if (p.debounceMs !== undefined) params.debounce_ms = p.debounceMs;
  if (p.convertAttachments) params.convert_attachments = true;
  if (p.bufferLimit !== undefined) params.buffer_limit = p.bufferLimit;
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

/**
 * `send` result; `id`/`guid` only from imsg 0.6.0 on, `transport` from 0.8.1; 0.14+ adds `message_id` (the
 * GUID), `service` and `chat_guid`: where the message actually went (auto may pick SMS).
 */
export interface SendResult {
  ok: boolean;
  id?: number;
  guid?: string;
  transport?: string;
  service?: string;
  chatGuid?: string;
}

/** `send` with already-built params (see targets.ts targetToSendParams). */
export async function sendMessage(client: RpcClient, params: Record<string, unknown>, timeoutMs?: number): Promise<SendResult> {
  const r = objectResult("send", await client.request("send", params, { timeoutMs }));
  const s = (x: unknown) => (typeof x === "string" && x ? x : undefined);
  return {
    ok: r.ok === true,
    id: typeof r.id === "number" ? r.id : undefined,
    guid: s(r.guid) ?? s(r.message_id),
    transport: s(r.transport),
    service: s(r.service),
    chatGuid: s(r.chat_guid),
  };
}

/** `typing {…target, typing}` (0.7.3+): starts or stops the typing indicator in a chat. */
export async function setTyping(client: RpcClient, target: Record<string, unknown>, typing: boolean, timeoutMs?: number): Promise<void> {
  objectResult("typing", await client.request("typing", { ...target, typing }, { timeoutMs }));
}

/** `read {…target}` (0.7.3+): marks the chat read, which sends a read receipt where the chat has them on. */
export async function markRead(client: RpcClient, target: Record<string, unknown>, timeoutMs?: number): Promise<void> {
  objectResult("read", await client.request("read", target, { timeoutMs }));
}

/** `tapback {chat_*, message_guid, reaction | emoji}` (bridge only): a tapback on one message. */
export async function sendTapback(client: RpcClient, params: Record<string, unknown>, timeoutMs?: number): Promise<void> {
  const r = objectResult("tapback", await client.request("tapback", params, { timeoutMs }));
  if (r.ok === false) throw new Error(`imsg tapback: not ok (${JSON.stringify(r).slice(0, 200)})`);
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
  if (x.reactions) wire.reactions = x.reactions.map((a) => renameKeys(a as unknown as Record<string, unknown>, REACTION_FIELDS, true));
  return wire;
}

// --- imsg 0.14+ reads: initialize/status and messages.after (absent on 0.9: -32601, reported as undefined) ---

/** What `initialize`/`status` report, reduced to what we act on; unknown fields are ignored. */
export interface ImsgStatus {
  version?: string;
  protocolVersion?: number;
  database: { ready: boolean; path?: string; error?: string };
  /** The IMCore bridge (tapback, reply_to, bridge sends); undefined when imsg does not report it. */
  bridge?: { ready: boolean; error?: string };
  /** Methods usable right now (database reads only while the database is ready). */
  methods: string[];
  /** Methods this imsg implements at all. */
  supportedMethods: string[];
  /** Database features that are on (reactions, reply_context, ...). */
  features: string[];
  /** Engine capability names that are on (e.g. tapback.emoji). */
  capabilities: string[];
  /** Each engine capability's level as imsg reports it (true → 1, off → 0): `tapback.emoji` 2 = emoji tapbacks send. */
  capabilityLevels?: Record<string, number>;
}

const strList = v.fallback(v.array(v.string()), []);
const onFlags = v.fallback(v.record(v.string(), v.unknown()), {});
const StatusSchema = v.object({
  version: v.fallback(v.optional(v.string()), undefined),
  protocol_version: v.fallback(v.optional(v.number()), undefined),
  database: v.object({
    ready: v.boolean(),
    path: v.fallback(v.optional(v.string()), undefined),
    error: v.fallback(v.optional(v.string()), undefined),
    features: v.optional(onFlags, {}),
  }),
  bridge: v.fallback(v.optional(v.object({ ready: v.boolean(), error: v.fallback(v.optional(v.string()), undefined) })), undefined),
  methods: v.optional(strList, []),
  supported_methods: v.optional(strList, []),
  capabilities: v.fallback(v.optional(v.object({ features: v.optional(onFlags, {}) })), undefined),
});

const isOn = (x: unknown) => x === true || (typeof x === "number" && x > 0) || (typeof x === "string" && x !== "" && x !== "0");
const level = (x: unknown) =>
  typeof x === "number" && Number.isFinite(x) ? x : typeof x === "string" && Number.isFinite(Number(x)) && x !== "" ? Number(x) : isOn(x) ? 1 : 0;

/** Parses an `initialize`/`status` result; `{error}` when even the database readiness is missing. */
export function parseStatus(raw: unknown): { status: ImsgStatus } | { error: string } {
  const r = v.safeParse(StatusSchema, raw);
  if (!r.success) return { error: issuesText(r.issues) };
  const s = r.output;
  return {
    status: {
      version: s.version,
      protocolVersion: s.protocol_version,
      database: { ready: s.database.ready, path: s.database.path, error: s.database.error },
      bridge: s.bridge && { ready: s.bridge.ready, error: s.bridge.error },
      methods: s.methods,
      supportedMethods: s.supported_methods,
      features: Object.keys(s.database.features).filter((k) => isOn(s.database.features[k])),
      capabilities: Object.keys(s.capabilities?.features ?? {}).filter((k) => isOn(s.capabilities!.features[k])),
      capabilityLevels: Object.fromEntries(Object.entries(s.capabilities?.features ?? {}).map(([k, x]) => [k, level(x)])),
    },
  };
}

export function isMethodNotFound(e: unknown): boolean {
  return e instanceof RpcError && e.code === -32601;
}

async function statusCall(client: RpcClient, method: string, params: Record<string, unknown>, timeoutMs?: number): Promise<ImsgStatus | undefined> {
  let raw: unknown;
  try {
    raw = await client.request(method, params, { timeoutMs });
  } catch (e) {
    if (isMethodNotFound(e)) return undefined;
    throw e;
  }
  const p = parseStatus(raw);
  if ("error" in p) throw new Error(`imsg ${method}: unexpected result (${p.error})`);
  return p.status;
}

/** `initialize {protocol_version}` (0.14+): the status snapshot; undefined on an imsg without it (0.9). */
export function initialize(client: RpcClient, protocolVersion = 1, timeoutMs?: number): Promise<ImsgStatus | undefined> {
  return statusCall(client, "initialize", { protocol_version: protocolVersion }, timeoutMs);
}

/** `status` (0.14+): the status snapshot; undefined on an imsg without it (0.9). */
export function status(client: RpcClient, timeoutMs?: number): Promise<ImsgStatus | undefined> {
  return statusCall(client, "status", {}, timeoutMs);
}
