// Outbound delivery: sanitize, prefix, chunk, then send each part in order on the send child (send-client.ts),
// recording every part `pending` before the send and `sent`/`failed` after. A part whose outcome is in doubt is
// looked up in history (reconcile.ts) before anything is sent again; `failed` only when imsg said so.
import { statSync } from "node:fs";
import { isAbsolute } from "node:path";
import type { ReplyActions, TapbackAction } from "./actions.ts";
import { chunkCapped, type Truncation } from "./chunk.ts";
import { outboundRefusal } from "./files.ts";
import type { ImessageAccount } from "./config.ts";
import type { SendResult } from "./imsg.ts";
import { getLog, redact } from "./log.ts";
import { lookForPart, matchSent, SETTLE_MS, sinceRecorded, wasHandedOver } from "./reconcile.ts";
import { RpcError } from "./rpc.ts";
import { normalizeForEcho, sanitizeOutbound } from "./sanitize.ts";
import { classifySendError, SendClient } from "./send-client.ts";
import { capsOf, deliverTapback } from "./send-tapback.ts";
import type { Stager } from "./stage.ts";
import type { OutboundRow, Store } from "./store.ts";
import { formatTarget, type Target, targetToSendParams } from "./targets.ts";

// The send child and the reconciliation moved to their own modules; importers keep using this one.
export { classifySendError, SEND_TIMEOUT_MS, SendClient } from "./send-client.ts";
export { lookForPart, matchSent, reconcileOutbound, SETTLE_MS, sinceRecorded } from "./reconcile.ts";

/** Immediate re-sends of a request that never ran, and of a part history proved absent, before backing off. */
const MAX_RETRIES = 3;
const MAX_RESENDS = 3;
const RETRY_MS = 250;

export interface Part {
  text: string;
  file?: string;
  /** A tapback part (empty text, no file): always seq 0, before the reply's text. */
  tapback?: TapbackAction;
  /** Sent as a threaded reply to this message guid where the send child can (else plain, recorded as such). */
  replyTo?: string;
}

/**
 * imsg refused a threaded send (it did not send it: no bridge, a helper that cannot thread attachments, a parent
 * it cannot find): it goes again at once, unthreaded. A send in doubt or never started is not a refusal.
 */
function refusesReplyTo(e: unknown): boolean {
  if (!(e instanceof RpcError)) return false;
  return e.classified.kind === "bridge_unavailable" || classifySendError(e) === "refused";
}

/**
 * Turns a reply into the parts to send: the tapback (actions.react) first, then sanitized, prefixed text chunks,
 * then one part per valid media file, each of those threaded under actions.replyTo when set. Pure apart from
 * stat() on media paths; rejected media are returned with their reasons.
 */
export function planParts(
  text: string,
  media: string[],
  account:
    & Pick<ImessageAccount, "responsePrefix" | "textChunkLimit" | "chunkMode" | "mediaMaxMb" | "mediaLocalRoots">
    & Partial<Pick<ImessageAccount, "replyMaxChars" | "replyMaxParts">>,
  /**
   * sanitize: false for user-typed text (send); whole: one part, unchunked (pairing and command replies);
   * stateDir (with configPath): agent media may not come from it (nor from other secret places, nor from outside
   * mediaLocalRoots when set; see `outboundRefusal`).
   */
  opts: { sanitize?: boolean; whole?: boolean; stateDir?: string; configPath?: string; actions?: ReplyActions } = {},
): { parts: Part[]; rejected: { path: string; reason: string }[]; truncated?: Truncation } {
  let body = opts.sanitize === false ? text.replace(/\r\n?/g, "\n").trim() : sanitizeOutbound(text);
  if (body && account.responsePrefix) body = `${account.responsePrefix} ${body}`;
  // Size caps (whole replies are the gateway's own short texts): a reply is at most maxParts messages in all.
  const maxParts = opts.whole ? Infinity : (account.replyMaxParts ?? Infinity);
  const capped = !body || opts.whole
    ? { chunks: body ? [body] : [] }
    : chunkCapped(body, account.textChunkLimit, account.chunkMode, { maxChars: account.replyMaxChars ?? Infinity, maxParts });
  const parts: Part[] = capped.chunks.map((t) => ({ text: t }));
  const rejected: { path: string; reason: string }[] = [];
  const max = account.mediaMaxMb * 1024 * 1024;
  for (const path of media) {
    if (parts.length >= maxParts) {
      rejected.push({ path, reason: `over replyMaxParts (${maxParts} messages per reply)` });
      continue;
    }
    if (!isAbsolute(path)) {
      rejected.push({ path, reason: "not an absolute path" });
      continue;
    }
    try {
      const st = statSync(path);
      const why = opts.stateDir !== undefined
        ? outboundRefusal(path, { stateDir: opts.stateDir, configPath: opts.configPath, roots: account.mediaLocalRoots })
        : undefined;
      if (why) rejected.push({ path, reason: why });
      else if (!st.isFile()) rejected.push({ path, reason: "not a regular file" });
      else if (st.size > max) rejected.push({ path, reason: `larger than mediaMaxMb (${account.mediaMaxMb} MB)` });
      else parts.push({ text: "", file: path });
    } catch {
      rejected.push({ path, reason: "file not found" });
    }
  }
  const replyTo = opts.actions?.replyTo;
  if (replyTo) { for (const p of parts) p.replyTo = replyTo; }
  // The tapback does not count against replyMaxParts: it is not a message in the chat.
  if (opts.actions?.react) parts.unshift({ text: "", tapback: opts.actions.react });
  return capped.truncated ? { parts, rejected, truncated: capped.truncated } : { parts, rejected };
}

export interface DeliverJob {
  account: ImessageAccount;
  target: Target;
  /** The conversation's chat id when known (replies): lets a part in doubt be looked up in history. */
  chatId?: number;
  /** The conversation's chat guid when known: a send result naming another chat corrects the part's chat. */
  chatGuid?: string;
  /** The ROWID of the inbound row a reply answers: its parts' rows come after it (a clock-free lookup window). */
  afterRowid?: number;
  /** Ties parts to the inbound message they answer, making re-delivery idempotent. */
  inboundKey?: string;
  parts: Part[];
}

export interface DeliverResult {
  sent: OutboundRow[];
  /** Set when a part failed or is still pending; later parts were not sent (order matters). */
  error?: string;
  /** The part is still pending (imsg unavailable, or its outcome not settled yet): deliver again later. */
  retryable?: boolean;
}

export interface DeliverOptions {
  /** How long a part handed to imsg gets to land before history counts as proof it did not (SETTLE_MS). */
  settleMs?: number;
}

type Sender =
  & Pick<SendClient, "send" | "history" | "pid" | "stopped">
  & Partial<Pick<SendClient, "chatIdByGuid" | "chatIdFor" | "stager" | "tapback" | "capabilities">>;

/**
 * Sends parts in order. A part already `sent` is skipped; a `failed` one stops the delivery (a failed tapback
 * does not: it never holds up the text). A part recorded earlier is sent as recorded (a restart under a changed
 * config must not send different text); one that was handed to imsg before is first looked up in history.
 */
export async function deliver(store: Store, sender: Sender, job: DeliverJob, opts: DeliverOptions = {}): Promise<DeliverResult> {
  const log = getLog(`deliver:${job.account.accountId}`);
  const settleMs = opts.settleMs ?? SETTLE_MS;
  const sent: OutboundRow[] = [];
  const used = new Set<number>();
  const target = formatTarget(job.target);
  const pending = (why: string): DeliverResult => ({ sent, error: why, retryable: true });
  const startedAt = store.now();
  for (let seq = 0; seq < job.parts.length; seq++) {
    const part = job.parts[seq]!;
    let row = store.recordOutbound({
      accountId: job.account.accountId,
      inboundKey: job.inboundKey,
      seq,
      target,
      chatId: job.chatId,
      text: part.text,
      file: part.file,
      echoKey: part.tapback ? "" : normalizeForEcho(part.text),
      tapback: part.tapback,
      replyTo: part.replyTo,
    });
    const settled = (r: { id?: number; guid?: string }) => {
      store.markOutbound(row.id, "sent", { messageId: r.id, messageGuid: r.guid });
      if (r.id !== undefined) used.add(r.id);
      sent.push({ ...row, state: "sent", messageId: r.id, messageGuid: r.guid });
    };
    if (row.state === "sent") {
      if (row.messageId !== undefined && !row.tapback) used.add(row.messageId);
      sent.push(row);
      continue;
    }
    if (row.state === "failed" && row.tapback) continue;
    if (row.state === "failed") return { sent, error: `part ${seq} failed earlier; not re-sent` };
    if (row.tapback) {
      const fresh = row.createdAt >= startedAt;
      const r = await deliverTapback(store, sender, { account: job.account, chatGuid: job.chatGuid, target }, row, { settleMs, fresh });
      if ("pending" in r) return pending(r.pending);
      if (r.settled === "sent") sent.push({ ...row, state: "sent" });
      continue;
    }
    // Handed to imsg before (an earlier attempt, or a run that stopped): it may have landed.
    let handedAt = wasHandedOver(row) ? row.updatedAt : undefined;
    let retries = 0;
    let resends = 0;
    for (;;) {
      if (handedAt !== undefined) {
        const resolveChat = sender.chatIdFor && (() => sender.chatIdFor!(job.target, job.account.service));
        const found = await lookForPart(sender, row, {
          afterRowid: job.afterRowid,
          used,
          deadline: handedAt + settleMs,
          stopped: () => sender.stopped,
          resolveChat,
        });
        if (found) {
          if (!row.chatId && found.chatId) {
            store.setOutboundChat(row.id, found.chatId);
            row = { ...row, chatId: found.chatId };
          }
          log.debug(`part ${seq + 1}/${job.parts.length} to ${redact(target)} found in history; not sent again`);
          settled({ id: found.id, guid: found.guid || undefined });
          break;
        }
        if (found === null) {
          log.warn(`cannot check whether a part to ${redact(target)} landed; it stays pending and is checked again`);
          return pending("outcome of a send not settled yet (history unreadable)");
        }
        if (sender.stopped) return pending("stopping");
        if (++resends > MAX_RESENDS) return pending("imsg keeps failing the send");
        log.warn(`a part to ${redact(target)} is not in the chat's history after imsg's receipt window; sending it again`);
        handedAt = undefined;
      }
      if (sender.stopped) return pending("stopping");
      let threaded = false;
      try {
        // A threaded part goes to its chat with reply_to where this send child can; else plain (recorded).
        if (row.replyTo && row.sentAs !== "plain") {
          const caps = await capsOf(sender);
          threaded = caps?.advanced.reply_to === true && (job.chatGuid !== undefined || row.chatId !== undefined);
          if (!threaded) log.debug(`part ${seq + 1}/${job.parts.length} to ${redact(target)} goes unthreaded: this imsg cannot send reply_to`);
          // Recorded only when imsg said (a failed `status` decides nothing for the next attempt).
          if (caps !== null) {
            row.sentAs = threaded ? "threaded" : "plain";
            store.setOutboundSentAs(row.id, row.sentAs);
          }
        }
        const to = threaded ? (job.chatGuid ? { chat_guid: job.chatGuid } : { chat_id: row.chatId }) : targetToSendParams(job.target, job.account.service);
        const params: Record<string, unknown> = { ...to, region: job.account.region };
        if (threaded) params.reply_to = row.replyTo;
        if (row.file) {
          // The path imsg can read: the local file, or its staged copy when imsg runs on another host (it keeps
          // the file's base name, which is how a history lookup recognises the attachment).
          const staged = sender.stager ? await sender.stager.stage(row) : { path: row.file };
          if ("error" in staged) {
            if (!staged.retryable) store.markOutbound(row.id, "failed", { error: staged.error });
            log.warn(`cannot send a file to ${redact(target)}: ${staged.error}`);
            return { sent, error: staged.error, retryable: staged.retryable };
          }
          params.file = staged.path;
        }
        if (row.text) params.text = row.text;
        store.setOutboundSender(row.id, sender.pid());
        const at = Date.now();
        row = { ...row, updatedAt: at };
        try {
          const r = await sender.send(params);
          settled(await trusted(store, sender, job, row, r, used));
          log.debug(`sent part ${seq + 1}/${job.parts.length} to ${redact(target)}`);
          break;
        } catch (e) {
          handedAt = at;
          throw e;
        }
      } catch (e) {
        const why = (e as Error).message;
        // Shutdown cut the send short: it stays pending with its child, reconciled at the next start.
        if (sender.stopped) return pending("stopping");
        if (threaded && refusesReplyTo(e)) {
          handedAt = undefined;
          store.setOutboundSender(row.id, undefined);
          row.sentAs = "plain";
          store.setOutboundSentAs(row.id, "plain");
          log.debug(`imsg refused a threaded send to ${redact(target)} (${why}); sending it unthreaded`);
          continue;
        }
        const kind = classifySendError(e);
        if (kind === "in-doubt") {
          log.warn(`a send to ${redact(target)} has an unknown outcome (${why}); looking for it in history`);
          continue;
        }
        handedAt = undefined;
        store.setOutboundSender(row.id, undefined);
        if (kind === "retry" && ++retries <= MAX_RETRIES) {
          log.debug(`imsg did not start a send to ${redact(target)} (${why}); sending again`);
          await new Promise((r) => setTimeout(r, RETRY_MS * retries));
          continue;
        }
        if (kind !== "refused") {
          log.warn(`send to ${redact(target)} did not reach imsg (${why}); it stays queued`);
          return pending(why);
        }
        store.markOutbound(row.id, "failed", { error: why });
        log.error(`send to ${redact(target)} failed: ${why}`);
        return { sent, error: why };
      }
    }
    if (row.file) await sender.stager?.release(row.id);
  }
  return { sent };
}

/**
 * What to record for a part imsg reports sent. A bridge send before imsg 0.15.1 can return the previous message's
 * GUID, so a bridge GUID is trusted only once history shows it as our is_from_me row of this part (else the part's
 * own row is looked up; else no GUID: the text echo check still covers it). A result naming the chat it went to
 * corrects the part's chat (auto may have picked SMS).
 */
async function trusted(
  store: Store,
  sender: Sender,
  job: DeliverJob,
  row: OutboundRow,
  r: SendResult,
  used: Set<number>,
): Promise<{ id?: number; guid?: string }> {
  if (r.chatGuid && r.chatGuid !== job.chatGuid && sender.chatIdByGuid) {
    const chatId = await sender.chatIdByGuid(r.chatGuid).catch(() => undefined);
    if (chatId !== undefined && chatId !== row.chatId) {
      store.setOutboundChat(row.id, chatId);
      row.chatId = chatId;
    }
  }
  if (r.transport !== "bridge" || !r.guid) return { id: r.id, guid: r.guid };
  if (!row.chatId) return { id: r.id };
  try {
    const hist = await sender.history(row.chatId);
    const own = hist.find((h) => h.guid === r.guid);
    if (own && matchSent([own], row, used)) return { id: own.id, guid: own.guid };
    const m = matchSent(sinceRecorded(hist, row, { afterRowid: job.afterRowid, now: Date.now() }), row, used);
    return m ? { id: m.id, guid: m.guid } : {};
  } catch {
    return {};
  }
}

/**
 * One-shot delivery for `send` and `pairing approve --notify`: same journal as the gateway, on a short-lived imsg
 * child. The text is sent as written (no agent-output sanitizing, no responsePrefix). Parts are recorded with the
 * chat they land in when imsg knows it, so a gateway running on this state dir recognises their echo rows (which
 * carry our own handle, not the recipient's) and a crashed child's part can be looked up in history.
 */
export async function sendOnce(
  store: Store,
  account: ImessageAccount,
  target: Target,
  text: string,
  files: string[] = [],
  stager?: Stager,
): Promise<{ result: DeliverResult; parts: Part[]; rejected: { path: string; reason: string }[] }> {
  const { parts, rejected } = planParts(text, files, { ...account, responsePrefix: undefined }, { sanitize: false });
  // A file the user named that cannot be sent fails the whole command before anything goes out.
  if (rejected.length) return { result: { sent: [], error: "unsendable file" }, parts, rejected };
  if (!parts.length) return { result: { sent: [], error: "nothing to send" }, parts, rejected };
  const sender = new SendClient(account);
  sender.stager = stager;
  try {
    let chatId: number | undefined;
    let chatGuid: string | undefined;
    try {
      const chat = await sender.chatFor(target, account.service);
      chatId = chat?.id;
      chatGuid = chat?.guid;
    } catch (e) {
      // Only the echo match and crash lookups lose their chat; the send itself reports real imsg trouble.
      getLog(`deliver:${account.accountId}`).debug(`cannot look up the chat of ${redact(formatTarget(target))}: ${(e as Error).message}`);
      if (target.kind === "chat_id") chatId = target.chatId;
    }
    const result = await deliver(store, sender, { account, target, chatId, chatGuid, parts });
    return { result, parts, rejected };
  } finally {
    await sender.stop();
  }
}
