// Conversation context beyond the current message: the owner's own replies (kept as their turns in the session
// history, with an optional takeover that quiets the agent in that chat) and the seeding of a new DM session from
// imsg's message history (OpenClaw's dmHistoryLimit / dms.<handle>.historyLimit). The decisions are pure; the
// store and the one imsg read come in as arguments.
import { routeAgent, sessionKey } from "./agents.ts";
import type { Config, ImessageAccount } from "./config.ts";
import { conversationOf } from "./policy.ts";
import { redact } from "./log.ts";
import { convKey } from "./screen.ts";
import { historyKey, quoteLines } from "./turn.ts";
import { type ImsgMessage, messagesHistory } from "./imsg.ts";
import type { Logger } from "./log.ts";
import type { RpcClient } from "./rpc.ts";
import type { HistoryEntry, Store } from "./store.ts";
import { ownerTurnText } from "./turn.ts";

/**
 * A from-me row as the conversation sees it: in a direct chat imsg gives the other party as `sender` (chat.db
 * stores the recipient); when it is missing, the chat's identifier is that party.
 */
export function ownerView(msg: ImsgMessage): ImsgMessage {
  return msg.sender || msg.isGroup ? msg : { ...msg, sender: msg.chatIdentifier };
}

/** Where an owner takeover of a conversation is remembered (the meta table: it survives restarts). */
export function takeoverKey(accountId: string, conv: string): string {
  return `takeover:${accountId}:${conv}`;
}

/** When the owner's takeover of `conv` ends, if it is still on. */
export function quietUntil(store: Pick<Store, "getMeta">, accountId: string, conv: string, now: number): number | undefined {
  const until = Number(store.getMeta(takeoverKey(accountId, conv)) ?? 0);
  return until > now ? until : undefined;
}

/** Starts (or extends) a takeover of `conv`; returns when it ends. */
export function startTakeover(store: Pick<Store, "setMeta">, accountId: string, conv: string, minutes: number, now: number): number {
  const until = now + minutes * 60_000;
  store.setMeta(takeoverKey(accountId, conv), String(until));
  return until;
}

/**
 * Records the owner's reply as their turn. Only a session the agent already has history in takes it, so the
 * owner's other chats are never stored. True when recorded.
 */
export function recordOwnerReply(store: Pick<Store, "getHistory" | "appendHistory">, historyKey: string, text: string): boolean {
  if (!store.getHistory(historyKey, 1).length) return false;
  store.appendHistory(historyKey, "assistant", ownerTurnText(text));
  return true;
}

/** The owner answered by hand (`msg` through ownerView): their turn joins the history; with ownerTakeoverMinutes the agent leaves the chat to them. */
export function ownerReplied(
  o: { store: Pick<Store, "getHistory" | "appendHistory" | "setMeta">; cfg: Config; account: ImessageAccount; log: Pick<Logger, "info"> },
  msg: ImsgMessage,
): void {
  const { isGroup, peer } = conversationOf(msg, o.account);
  const id = o.account.accountId;
  const agent = routeAgent(o.cfg, id, peer);
  if (agent) recordOwnerReply(o.store, historyKey(id, sessionKey(agent.id, id, peer, o.cfg.session), isGroup), msg.text);
  const minutes = o.account.ownerTakeoverMinutes;
  if (minutes <= 0) return;
  const conv = convKey(msg, o.account);
  startTakeover(o.store, id, conv, minutes, Date.now());
  o.log.info(`the owner replied by hand in ${isGroup ? conv : `a DM with ${redact(peer.id)}`}; the agent stays quiet there for ${minutes} min`);
}

/** How many messages seed a new DM session with this sender: `dms.<handle>.historyLimit`, else dmHistoryLimit. */
export function seedLimit(account: Pick<ImessageAccount, "dms" | "dmHistoryLimit">, senderId: string): number {
  return account.dms[senderId]?.historyLimit ?? account.dmHistoryLimit;
}

/**
 * The seed for a new session from imsg's history (newest first, as imsg returns it): the `limit` newest rows
 * before `beforeRowid` with text, oldest first. Rows from us are the agent's turns when we sent them, the owner's
 * when typed by hand. Pure.
 */
export function seedEntries(rows: readonly ImsgMessage[], beforeRowid: number, limit: number, sentByUs: (guid: string) => boolean): HistoryEntry[] {
  const picked = rows.filter((m) => m.id < beforeRowid && m.text.trim() !== "").slice(0, limit).reverse();
  return picked.map((m) =>
    // User text is quoted as in a turn's body, so a seeded line can never pose as the gateway's own.
    !m.isFromMe
      ? { role: "user", text: quoteLines(m.text).join("\n") }
      : { role: "assistant", text: m.guid && sentByUs(m.guid) ? m.text : ownerTurnText(m.text) }
  );
}

/** What seeding needs from the account runtime. */
export interface SeedDeps {
  store: Pick<Store, "getHistory" | "appendHistory" | "hasOutboundGuid" | "transaction">;
  account: Pick<ImessageAccount, "accountId" | "dms" | "dmHistoryLimit" | "probeTimeoutMs">;
  client: () => RpcClient;
  log: Pick<Logger, "debug">;
}

/** A new DM session (no history yet) starts with the chat's recent messages from imsg; a failed read seeds nothing. */
export async function seedDmSession(o: SeedDeps, historyKey: string, chatId: number, senderId: string, beforeRowid: number): Promise<void> {
  const limit = seedLimit(o.account, senderId);
  if (limit <= 0 || chatId <= 0 || o.store.getHistory(historyKey, 1).length) return;
  try {
    // Rows newer than the current message come back too (imsg is newest first): ask for some more than needed.
    const rows = await messagesHistory(o.client(), chatId, { limit: limit + 20 }, o.account.probeTimeoutMs);
    const seed = seedEntries(rows, beforeRowid, limit, (g) => o.store.hasOutboundGuid(o.account.accountId, g));
    o.store.transaction(() => seed.forEach((e) => o.store.appendHistory(historyKey, e.role, e.text)));
    o.log.debug(`seeded a new DM session with ${seed.length} message(s) from imsg history`);
  } catch (e) {
    o.log.debug(`history seeding skipped: ${(e as Error).message}`);
  }
}
