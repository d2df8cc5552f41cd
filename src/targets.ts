// Handle normalization, send targets and allow-list entries. Pure: no I/O, no logging.
// One normalizer serves config entries and inbound senders alike, so `+1 (555) 222-3333` in a config
// matches `+15552223333` on the wire (a config written by hand rarely matches imsg's form).
import type { Service } from "./config-schema.ts";
import { UsageError } from "./errors.ts";
import type { ImsgMessage } from "./imsg.ts";
import { stripInvisible } from "./text.ts";

/** Where a message goes: a chat by one of its three ids, or a handle with a service. */
export type Target =
  | { kind: "chat_id"; chatId: number }
  | { kind: "chat_guid"; chatGuid: string }
  | { kind: "chat_identifier"; chatIdentifier: string }
  | { kind: "handle"; to: string; service: Service };

/** The addressing part of the imsg `send` params (exactly one of the four shapes). */
export type SendParams =
  | { chat_id: number }
  | { chat_guid: string }
  | { chat_identifier: string }
  | { to: string; service: Service };

/** A parsed allowFrom / groupAllowFrom entry. */
export type AllowEntry =
  | { kind: "any" }
  | { kind: "handle"; handle: string }
  | { kind: "chat_id"; chatId: number }
  | { kind: "chat_guid"; chatGuid: string }
  | { kind: "chat_identifier"; chatIdentifier: string };

/** What an allow-list is matched against: the sender and the chat the message came from. */
export interface AllowSubject {
  sender: string;
  chatId?: number;
  chatGuid?: string;
  chatIdentifier?: string;
}

type ChatKind = "chat_id" | "chat_guid" | "chat_identifier";

const SERVICE_PREFIX = /^(imessage|sms|auto):/i;
const CHAT_PREFIX = /^(chat_identifier|chatidentifier|chatident|chat_guid|chatguid|guid|chat_id|chatid|chat):([\s\S]*)$/i;
const CHAT_ALIASES: Record<string, ChatKind> = {
  chat_identifier: "chat_identifier",
  chatidentifier: "chat_identifier",
  chatident: "chat_identifier",
  chat_guid: "chat_guid",
  chatguid: "chat_guid",
  guid: "chat_guid",
  chat_id: "chat_id",
  chatid: "chat_id",
  chat: "chat_id",
};
const HEX32 = /^[0-9a-f]{32}$/i;
const PHONE_LOOKING = /^[+\d\s().\-/\u00a0\u2010-\u2015\u2212]+$/;
// E.164 allows at most 15 digits; below 7 digits without `+`/`00` it is a carrier short code, kept bare.
const E164_MAX_DIGITS = 15;
const SHORT_CODE_MAX_DIGITS = 6;

function stripServicePrefixes(value: string): { rest: string; service?: Service } {
  let rest = value;
  let service: Service | undefined;
  for (let m = SERVICE_PREFIX.exec(rest); m; m = SERVICE_PREFIX.exec(rest)) {
    service ??= m[1]!.toLowerCase() as Service;
    rest = rest.slice(m[0].length).trim();
  }
  return { rest, service };
}

function splitChatPrefix(value: string): { kind: ChatKind; value: string } | undefined {
  const m = CHAT_PREFIX.exec(value);
  return m ? { kind: CHAT_ALIASES[m[1]!.toLowerCase()]!, value: m[2]!.trim() } : undefined;
}

const NATIONAL_DIGITS = 10;

/** True for a phone number written without a country code (what `normalizeHandle` leaves as bare digits). */
export function isNationalNumber(raw: string): boolean {
  return /^\d{10}$/.test(normalizeHandle(raw));
}

function toE164(value: string): string | undefined {
  if (!PHONE_LOOKING.test(value)) return undefined;
  let digits = value.replace(/\D/g, "");
  if (!digits) return undefined;
  const plus = value.startsWith("+");
  const international = plus || digits.startsWith("00");
  if (!plus && international) digits = digits.slice(2);
  if (!digits || digits.length > E164_MAX_DIGITS) return undefined;
  if (!international && digits.length <= SHORT_CODE_MAX_DIGITS) return digits;
  // Ten digits with no country code is a national number ("(555) 000-1111"): guessing "+555…" would address
  // someone else. Keep the digits; imsg applies `region` when sending, and config validation asks for E.164.
  if (!international && digits.length === NATIONAL_DIGITS) return digits;
  return `+${digits}`;
}

/**
 * Canonical form of a handle or chat reference: service prefixes dropped, chat prefixes canonical,
 * emails lowercased, a bare 32-hex id as `chat_identifier:`, phones as E.164, anything else without spaces.
 */
export function normalizeHandle(raw: string): string {
  const { rest } = stripServicePrefixes(stripInvisible(String(raw ?? "")).trim());
  if (!rest) return "";
  const chat = splitChatPrefix(rest);
  if (chat) return `${chat.kind}:${chat.value}`;
  // ASCII-only case folding: Unicode toLowerCase maps look-alikes (the Kelvin sign K) onto ASCII letters.
  if (rest.includes("@")) return rest.replace(/\s+/g, "").replace(/[A-Z]/g, (c) => c.toLowerCase());
  // A group chat identifier must never be turned into a fake phone number (OpenClaw #89235).
  if (HEX32.test(rest)) return `chat_identifier:${rest.toLowerCase()}`;
  return toE164(rest) ?? rest.replace(/\s+/g, "");
}

function parseChatId(value: string): number {
  if (!value) throw new UsageError("chat_id is required (e.g. chat_id:42)");
  const id = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(id) || id <= 0) {
    throw new UsageError(`Invalid chat_id: ${value}. Use chat_identifier:${value} for hex identifiers.`);
  }
  return id;
}

/**
 * Parses a user-given target (`chat_id:42`, `chat_guid:…`, `chat_identifier:…`, `imessage:`/`sms:`/`auto:`
 * handles, bare phone or email). A service prefix in front of a chat target is ignored. Throws UsageError.
 */
export function parseTarget(raw: string, defaultService: Service = "auto"): Target {
  const value = stripInvisible(String(raw ?? "")).trim();
  if (!value) throw new UsageError("iMessage target is required", "Use chat_id:<id>, a phone number or an email.");
  const { rest, service } = stripServicePrefixes(value);
  if (!rest) throw new UsageError(`${service}: target is required (e.g. ${service}:+15550001111)`);
  const chat = splitChatPrefix(rest);
  if (chat?.kind === "chat_id") return { kind: "chat_id", chatId: parseChatId(chat.value) };
  if (chat?.kind === "chat_guid") {
    if (!chat.value) throw new UsageError("chat_guid is required (e.g. chat_guid:iMessage;+;chat123)");
    return { kind: "chat_guid", chatGuid: chat.value };
  }
  if (chat?.kind === "chat_identifier") {
    if (!chat.value) throw new UsageError("chat_identifier is required (e.g. chat_identifier:chat123)");
    return { kind: "chat_identifier", chatIdentifier: chat.value };
  }
  const to = normalizeHandle(rest);
  if (to.startsWith("chat_identifier:")) return { kind: "chat_identifier", chatIdentifier: to.slice(16) };
  return { kind: "handle", to, service: service ?? defaultService };
}

/**
 * The imsg `send` addressing params for a target. `service` (the account's) applies to handles whose own
 * service is `auto`; an explicit `imessage:`/`sms:` prefix wins.
 */
export function targetToSendParams(t: Target, service: Service): SendParams {
  switch (t.kind) {
    case "chat_id":
      return { chat_id: t.chatId };
    case "chat_guid":
      return { chat_guid: t.chatGuid };
    case "chat_identifier":
      return { chat_identifier: t.chatIdentifier };
    case "handle":
      return { to: t.to, service: t.service === "auto" ? service : t.service };
  }
}

/** Canonical string of a target (`chat_id:42`, `imessage:+15550001111`); parseTarget reads it back. */
export function formatTarget(t: Target): string {
  switch (t.kind) {
    case "chat_id":
      return `chat_id:${t.chatId}`;
    case "chat_guid":
      return `chat_guid:${t.chatGuid}`;
    case "chat_identifier":
      return `chat_identifier:${t.chatIdentifier}`;
    case "handle":
      return `${t.service}:${t.to}`;
  }
}

/**
 * Where a reply to `msg` goes: groups by chat id, DMs to the sender's handle on the service the chat uses
 * (so an SMS conversation is answered by SMS). `isGroup` is policy's answer (conversationOf), never imsg's flag alone.
 */
export function replyTargetFor(msg: ImsgMessage, isGroup: boolean): Target {
  if (isGroup && msg.chatId > 0) return { kind: "chat_id", chatId: msg.chatId };
  const guid = msg.chatGuid ?? "";
  const service: Service = guid.startsWith("iMessage;") ? "imessage" : guid.startsWith("SMS;") ? "sms" : "auto";
  return { kind: "handle", to: normalizeHandle(msg.sender), service };
}

/** Parses one allow-list entry; undefined for entries that can never match (empty, non-numeric chat_id). */
export function parseAllowEntry(entry: string): AllowEntry | undefined {
  const raw = String(entry ?? "").trim();
  if (raw === "*") return { kind: "any" };
  const n = normalizeHandle(raw);
  if (!n) return undefined;
  const chat = splitChatPrefix(n);
  if (!chat) return { kind: "handle", handle: n };
  if (!chat.value) return undefined;
  if (chat.kind === "chat_guid") return { kind: "chat_guid", chatGuid: chat.value };
  if (chat.kind === "chat_identifier") return { kind: "chat_identifier", chatIdentifier: chat.value };
  const id = /^\d+$/.test(chat.value) ? Number(chat.value) : NaN;
  return Number.isSafeInteger(id) && id > 0 ? { kind: "chat_id", chatId: id } : undefined;
}

// Chat guids/identifiers compare case-insensitively: the normalizer lowercases bare hex identifiers.
function sameId(a: string | undefined, b: string): boolean {
  return a !== undefined && a.trim() !== "" && a.trim().toLowerCase() === b.toLowerCase();
}

/**
 * True when any entry admits the subject: `"*"`, the normalized sender's handle, or the message's chat
 * (`chat_id:`, `chat_guid:`, `chat_identifier:`). An empty list admits nobody.
 */
export function matchesAllowList(entries: readonly string[], who: AllowSubject): boolean {
  const sender = normalizeHandle(who.sender);
  return entries.some((raw) => {
    const e = parseAllowEntry(raw);
    switch (e?.kind) {
      case "any":
        return true;
      case "handle":
        return sender !== "" && e.handle === sender;
      case "chat_id":
        return who.chatId === e.chatId;
      case "chat_guid":
        return sameId(who.chatGuid, e.chatGuid);
      case "chat_identifier":
        return sameId(who.chatIdentifier, e.chatIdentifier);
      default:
        return false;
    }
  });
}
