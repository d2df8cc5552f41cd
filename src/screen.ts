// Screening: everything decided about an inbound row before policy. Our own rows and their echoes, rows too old
// to answer, iCloud twins and reflected assistant markup. Pure apart from the journal lookups, which come in
// through a narrow interface. Loop evidence is counted after policy (guard.ts): only admitted senders count.
import type { ImessageAccount } from "./config.ts";
import type { ImsgMessage } from "./imsg.ts";
import { conversationOf } from "./policy.ts";
import type { ScreenReason } from "./reasons.ts";
import { looksReflected, normalizeForEcho } from "./sanitize.ts";
import { normalizeHandle } from "./targets.ts";

/** The journal lookups screening needs (Store implements them, with the account bound). */
export interface ScreenLookups {
  /** A message guid we sent. */
  hasOutboundGuid(guid: string): boolean;
  /** Outbound parts with this echo key recorded since `sinceMs`. */
  outboundByEcho(echoKey: string, sinceMs: number): { chatId?: number; target: string }[];
  /** Inbound rows of the chat and sender dated within `windowMs` of `createdAt`, other than `exceptKey`. */
  inboundNear(chatId: number, sender: string, createdAt: number, windowMs: number, exceptKey: string): { rowid: number; message: unknown }[];
}

export interface ScreenInput {
  key: string;
  msg: ImsgMessage;
  /** The row was part of the backlog at subscription (older rows may be answered, up to recoveryMaxAgeMinutes). */
  catchup: boolean;
  account: Pick<ImessageAccount, "groups" | "maxAgeMinutes" | "recoveryMaxAgeMinutes">;
  /** An inbound row equal to something we sent in this conversation this recently is an echo. */
  echoWindowMs: number;
  now: number;
}

export type ScreenResult =
  | { pass: true; conv: string }
  | {
    drop: ScreenReason;
    detail?: string;
    /** "skipped": not judged (too old, undatable); "dropped": judged and refused. */
    state: "dropped" | "skipped";
    /** Evidence for the rate guard (echo-like content that was not an expected echo), if the sender is admitted. */
    echo?: boolean;
    /** An is_from_me row we did not send: the owner typed it by hand (kept as context, never answered). */
    owner?: boolean;
  };

/** The rate guard's key for a message's conversation: the chat for groups (policy's test), else the sender. */
export function convKey(msg: ImsgMessage, account: Pick<ImessageAccount, "groups">): string {
  const { isGroup, peer } = conversationOf(msg, account);
  return isGroup || !msg.sender ? `chat:${msg.chatId}` : `dm:${peer.id}`;
}

/** Screens one row, in order; the first rule that applies decides. */
export function screen(input: ScreenInput, lookups: ScreenLookups): ScreenResult {
  const { msg, account, now } = input;
  if (msg.isFromMe) return fromMe(input, lookups);
  if (msg.guid && lookups.hasOutboundGuid(msg.guid)) return { drop: "echo (our own message guid)", state: "dropped" };
  const age = now - Date.parse(msg.createdAt);
  // No usable date: the stale fence cannot be applied, so the row is not trusted to be fresh.
  if (!Number.isFinite(age)) return { drop: "unreadable created_at", detail: JSON.stringify(msg.createdAt), state: "skipped" };
  if (input.catchup) {
    if (age > account.recoveryMaxAgeMinutes * 60_000) {
      return { drop: "stale at catch-up", detail: `older than ${account.recoveryMaxAgeMinutes} min`, state: "skipped" };
    }
  } else if (age > account.maxAgeMinutes * 60_000) {
    return { drop: "stale", detail: `older than ${account.maxAgeMinutes} min`, state: "skipped" };
  }
  const conv = convKey(msg, account);
  // Expected echoes (imsg's duplicate rows, self-chat twins) are dropped but are no loop evidence: a long
  // chunked reply would otherwise pause the conversation.
  if (isTextEcho(msg, account, lookups, now - input.echoWindowMs)) return { drop: "echo (text we just sent)", state: "dropped" };
  const twin = twinOf(input.key, msg, lookups);
  if (twin !== undefined) return { drop: "icloud twin", detail: `duplicate of row ${twin} (same sender, text and time; another guid)`, state: "dropped" };
  if (looksReflected(msg.text)) return { drop: "reflected assistant content", state: "dropped", echo: true };
  return { pass: true, conv };
}

/**
 * An inbound row that repeats what we just sent into the same conversation (imsg's duplicate echo rows,
 * self-chat twins). Same chat id, or for a DM the handle we sent to (a first-contact send had no chat yet).
 */
export function isTextEcho(
  msg: ImsgMessage,
  account: Pick<ImessageAccount, "groups">,
  lookups: Pick<ScreenLookups, "outboundByEcho">,
  sinceMs: number,
): boolean {
  const text = normalizeForEcho(msg.text);
  if (!text) return false;
  const { isGroup } = conversationOf(msg, account);
  // In a group, another member may well say "OK" after us: only a row under our own handle can be our echo.
  if (isGroup && !(msg.destinationCallerId && normalizeHandle(msg.sender) === normalizeHandle(msg.destinationCallerId))) return false;
  const handles = isGroup ? [] : [msg.sender, msg.chatIdentifier].filter(Boolean).map((h) => normalizeHandle(h));
  for (const o of lookups.outboundByEcho(text, sinceMs)) {
    if (o.chatId && o.chatId === msg.chatId) return true;
    const to = o.target.replace(/^(imessage|sms|auto):/, "");
    if (handles.includes(to)) return true;
  }
  return false;
}

/**
 * iCloud sync can write one message twice with different guids: an earlier row of the same chat and sender,
 * with the same text, dated within 2 s, makes this one a twin. Returns the earlier row's id.
 */
export function twinOf(key: string, msg: ImsgMessage, lookups: Pick<ScreenLookups, "inboundNear">): number | undefined {
  const text = normalizeForEcho(msg.text);
  const at = Date.parse(msg.createdAt);
  if (!text || !msg.chatId || !Number.isFinite(at)) return undefined;
  for (const r of lookups.inboundNear(msg.chatId, msg.sender, at, 2000, key)) {
    if (r.rowid < msg.id && normalizeForEcho((r.message as ImsgMessage | null)?.text ?? "") === text) return r.rowid;
  }
  return undefined;
}

/** How far back a from-me row is matched against what we sent: our own sends must never pass as the owner's. */
export const OWN_SEND_WINDOW_MS = 10 * 60_000;

/**
 * An is_from_me row: our own send coming back (by guid, or by text into the same chat), or the owner's reply typed
 * by hand. Never answered; only a fresh, texted reply of the owner is marked `owner` (a tapback never is).
 */
export function fromMe(input: ScreenInput, lookups: ScreenLookups): ScreenResult {
  const { msg, now } = input;
  if (msg.guid && lookups.hasOutboundGuid(msg.guid)) return { drop: "echo (our own message guid)", state: "dropped" };
  // Our own tapback coming back, or one the owner tapped: neither is a typed reply (no takeover, no context).
  if (msg.isReaction) return { drop: "from me", detail: "a tapback from this Mac's account", state: "dropped" };
  const text = normalizeForEcho(msg.text);
  if (!text) return { drop: "from me", state: "dropped" };
  const handles = [msg.sender, msg.chatIdentifier].filter(Boolean).map((h) => normalizeHandle(h));
  const ours = lookups.outboundByEcho(text, now - Math.max(OWN_SEND_WINDOW_MS, input.echoWindowMs)).some(
    (o) => (o.chatId !== undefined && o.chatId === msg.chatId) || handles.includes(o.target.replace(/^(imessage|sms|auto):/, "")),
  );
  if (ours) return { drop: "echo (text we just sent)", state: "dropped" };
  const age = now - Date.parse(msg.createdAt);
  const fence = (input.catchup ? input.account.recoveryMaxAgeMinutes : input.account.maxAgeMinutes) * 60_000;
  if (!(age <= fence)) return { drop: "from me", detail: "too old to keep as the owner's reply", state: "dropped" };
  return { drop: "from me", detail: "the owner's reply, kept as context", state: "dropped", owner: true };
}
