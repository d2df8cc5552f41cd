// Settling a part whose outcome is in doubt (its child died, timed out, or imsg said "outcome unknown") by
// looking for it in its chat's history, never by re-sending blindly. The window is anchored to the Mac: ROWIDs
// after the inbound row the part answers, or else dates of history rows (the Mac's clock, which can be off ours).
import { basename } from "node:path";
import type { ImsgMessage } from "./imsg.ts";
import { isAlive } from "./lock.ts";
import { getLog } from "./log.ts";
import { until } from "./queues.ts";
import { RpcClient } from "./rpc.ts";
import { normalizeForEcho } from "./sanitize.ts";
import { SEND_TIMEOUT_MS, type SendClient } from "./send-client.ts";
import type { OutboundRow, Store } from "./store.ts";
import { messagesHistory } from "./imsg.ts";
import { ownTapback, wantsFor } from "./tapback.ts";

/**
 * How long a part handed to imsg gets to land before history counts as proof that it did not: imsg 0.14+ waits up
 * to 8 s for a send's row itself, plus margin for a slow Messages.app.
 */
export const SETTLE_MS = 10_000;
/** Extra room at the start of a date window (rows are dated when Messages writes them, not when we asked). */
const DATE_SLACK_MS = 5000;
const LOOK_EVERY_MS = 500;

/**
 * The is_from_me history row matching an outbound part, if it landed: same text, or for a file part an attachment
 * with the same file name (imsg copies files but keeps their names). Rows already matched are skipped. Pure.
 */
export function matchSent(hist: ImsgMessage[], row: Pick<OutboundRow, "text" | "file">, used: Set<number> = new Set()): ImsgMessage | undefined {
  const want = normalizeForEcho(row.text);
  const name = row.file ? basename(row.file) : undefined;
  return hist.find((h) => {
    if (!h.isFromMe || used.has(h.id)) return false;
    if (name) return h.attachments.some((a) => basename(a.transferName || a.filename || a.originalPath) === name);
    return normalizeForEcho(h.text) === want;
  });
}

/**
 * The history rows that can be the part: those after `afterRowid` (the inbound row a reply answers: ROWIDs need
 * no clock), else those dated on the Mac since the part was recorded, measured back from the chat's newest row by
 * the time that passed here (a duration, so a skewed clock does not matter). Pure.
 */
export function sinceRecorded(hist: ImsgMessage[], row: Pick<OutboundRow, "createdAt">, opts: { afterRowid?: number; now: number }): ImsgMessage[] {
  if (opts.afterRowid !== undefined) return hist.filter((h) => h.id > opts.afterRowid!);
  const dates = hist.map((h) => Date.parse(h.createdAt)).filter(Number.isFinite);
  if (!dates.length) return hist;
  const start = Math.max(...dates) - Math.max(0, opts.now - row.createdAt) - DATE_SLACK_MS;
  return hist.filter((h) => !(Date.parse(h.createdAt) < start));
}

/** Where history comes from: the send client (busy-aware, replaces dead children) or a plain child. */
export type HistorySource = Pick<SendClient, "history"> | RpcClient;

function historyOf(src: HistorySource, chatId: number): Promise<ImsgMessage[]> {
  return src instanceof RpcClient ? messagesHistory(src, chatId, { limit: 200, attachments: true }, 10_000) : src.history(chatId);
}

class NoChat extends Error {}

/** A lookup's answer: the landed row, undefined when absent, null when history could not be read. */
export type Lookup = { id: number; guid: string; chatId: number } | undefined | null;

/**
 * Looks for a part until `deadline` (returning as soon as it is found): absent at the deadline is proof it did not
 * land; null when the last look failed (the part stays in doubt).
 */
export async function lookForPart(
  src: HistorySource,
  row: Pick<OutboundRow, "chatId" | "createdAt" | "text" | "file">,
  opts: { afterRowid?: number; used?: Set<number>; deadline: number; stopped?: () => boolean; resolveChat?: () => Promise<number | undefined> },
): Promise<Lookup> {
  if (!row.chatId && !opts.resolveChat) return null;
  return lookUntil(async () => {
    try {
      // A first contact's chat may only exist once the send created it: no chat yet means it did not land.
      const chatId = row.chatId ?? (await opts.resolveChat!());
      if (chatId === undefined) throw new NoChat();
      const hist = await historyOf(src, chatId);
      const m = matchSent(sinceRecorded(hist, row, { afterRowid: opts.afterRowid, now: Date.now() }), row, opts.used);
      return m ? { id: m.id, guid: m.guid, chatId } : undefined;
    } catch (e) {
      return e instanceof NoChat ? undefined : null;
    }
  }, opts);
}

/**
 * Looks every LOOK_EVERY_MS until a look finds something or `deadline` passes (or `stopped`); the last answer.
 * Only a found row ends the wait early: absent, unreadable and "gone" are final only at the deadline.
 */
async function lookUntil<T>(look: () => Promise<T>, opts: { deadline: number; stopped?: () => boolean }, found = (r: T) => !!r): Promise<T> {
  for (;;) {
    const r = await look();
    const left = opts.deadline - Date.now();
    if (found(r) || left <= 0 || opts.stopped?.()) return r;
    await new Promise((res) => setTimeout(res, Math.min(LOOK_EVERY_MS, left)));
  }
}

/**
 * Looks for our own tapback on message `to` in its chat until `deadline`: the reaction row's id when there,
 * undefined when absent at the deadline, null when history could not be read, "gone" when the message is not in
 * the chat's recent history (nothing to prove either way: the tapback is given up, never sent blindly).
 */
export async function lookForTapback(
  src: HistorySource,
  chatId: number,
  row: Pick<OutboundRow, "tapback" | "sentAs">,
  opts: { deadline: number; stopped?: () => boolean },
): Promise<{ id: number } | undefined | null | "gone"> {
  const to = row.tapback?.to;
  if (!to) return "gone";
  return lookUntil(
    async (): Promise<{ id: number } | undefined | null | "gone"> => {
      try {
        const target = (await historyOf(src, chatId)).find((h) => h.guid === to);
        const own = target && ownTapback(target, wantsFor(row));
        return !target ? "gone" : own ? { id: own.id } : undefined;
      } catch {
        return null;
      }
    },
    opts,
    (r) => !!r && r !== "gone",
  );
}

/** Why a tapback whose message left the chat's recent history is given up. */
export const TAPBACK_GONE = "its message is not in the chat's recent history; not sent";

/** Waits (bounded) for the imsg child a part was handed to before a crash: it finishes that send, then exits. */
async function childGone(pid: number | undefined, timeoutMs: number): Promise<boolean> {
  return (await until(() => (pid === undefined || !isAlive(pid) ? true : undefined), timeoutMs, 100)) === true;
}

/** A part that was handed to an imsg child (or timed out there): it may have landed. */
export const wasHandedOver = (row: Pick<OutboundRow, "state" | "senderPid">) => row.state === "unknown" || row.senderPid !== undefined;

/**
 * Settles outbound parts a previous run left `pending` or `unknown` by looking for them in the chat's history,
 * after their child is gone and their receipt window has passed. Found → sent. Absent → pending and free to send
 * again. History unreadable → unchecked (its message waits for the next start). A part handed over with no chat
 * to look in cannot be proven either way → failed, not re-sent.
 */
export async function reconcileOutbound(
  store: Store,
  src: HistorySource,
  accountId: string,
  opts: { waitForSenderMs?: number; settleMs?: number } = {},
): Promise<{ confirmed: number; failed: number; resend: number; unchecked: Set<string> }> {
  const log = getLog(`deliver:${accountId}`);
  const out = { confirmed: 0, failed: 0, resend: 0, unchecked: new Set<string>() };
  const rows = store.unsettledOutbound(accountId);
  const used = new Set<number>();
  for (const row of rows) {
    const handed = wasHandedOver(row);
    // A send still running in the previous process's child may land after we look: let that child finish first.
    if (handed && !(await childGone(row.senderPid, opts.waitForSenderMs ?? SEND_TIMEOUT_MS))) {
      log.warn(`outbound ${row.id} is still with imsg (pid ${row.senderPid}); checking it again at the next start`);
      if (row.inboundKey) out.unchecked.add(row.inboundKey);
      continue;
    }
    if (!row.chatId) {
      if (!handed) out.resend++;
      else {
        store.markOutbound(row.id, "failed", { error: "outcome unknown and no chat to look in; not re-sent" });
        out.failed++;
      }
      continue;
    }
    if (row.tapback) {
      // A tapback: our reaction on its target message settles it; never re-sent without that look.
      const deadline = handed ? row.updatedAt + (opts.settleMs ?? SETTLE_MS) : 0;
      const found = await lookForTapback(src, row.chatId, row, { deadline });
      if (found === "gone") {
        store.markOutbound(row.id, "failed", { error: TAPBACK_GONE });
        out.failed++;
      } else if (found) {
        store.markOutbound(row.id, "sent", { messageId: found.id });
        out.confirmed++;
      } else if (found === null) {
        log.warn(`cannot reconcile tapback ${row.id}: its chat's history could not be read`);
        if (row.inboundKey) out.unchecked.add(row.inboundKey);
      } else {
        if (handed) store.resetOutbound(row.id);
        out.resend++;
      }
      continue;
    }
    const inbound = row.inboundKey ? store.getInbound(accountId, row.inboundKey) : undefined;
    if (row.inboundKey) { for (const o of store.outboundFor(accountId, row.inboundKey)) if (o.state === "sent" && o.messageId) used.add(o.messageId); }
    const deadline = handed ? row.updatedAt + (opts.settleMs ?? SETTLE_MS) : 0;
    const found = await lookForPart(src, row, { afterRowid: inbound?.rowid, used, deadline });
    if (found) {
      used.add(found.id);
      store.markOutbound(row.id, "sent", { messageId: found.id, messageGuid: found.guid || undefined });
      out.confirmed++;
    } else if (found === null) {
      log.warn(`cannot reconcile outbound ${row.id}: its chat's history could not be read`);
      if (row.inboundKey) out.unchecked.add(row.inboundKey);
    } else {
      if (handed) store.resetOutbound(row.id);
      out.resend++;
    }
  }
  if (rows.length) {
    log.info(`reconciled ${rows.length} unsettled outbound part(s): ${out.confirmed} confirmed sent, ${out.resend} to send, ${out.failed} given up`);
  }
  return out;
}
