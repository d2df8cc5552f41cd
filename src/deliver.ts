// Outbound delivery: sanitize, prefix, chunk, then send each part in order on a dedicated imsg child, recording
// every part `pending` before the send and `sent`/`failed`/`unknown` after (at most once per part).
import { statSync } from "node:fs";
import { basename, isAbsolute } from "node:path";
import { chunkText } from "./chunk.ts";
import { outboundRefusal } from "./files.ts";
import type { ImessageAccount, Service } from "./config.ts";
import { chatsList, messagesHistory, parseChat, sendMessage, type ImsgChat, type ImsgMessage, type SendResult } from "./imsg.ts";
import { getLog, redact } from "./log.ts";
import { isAlive } from "./lock.ts";
import { until } from "./queues.ts";
import { ImsgPermissionError, ImsgSpawnError, RpcClient, RpcClosedError, RpcError } from "./rpc.ts";
import { normalizeForEcho, sanitizeOutbound } from "./sanitize.ts";
import type { Stager } from "./stage.ts";
import type { OutboundRow, Store } from "./store.ts";
import { formatTarget, normalizeHandle, targetToSendParams, type Target } from "./targets.ts";

/** imsg serialises requests and AppleScript sends can stall for minutes (docs/IMSG-PROTOCOL.md). */
export const SEND_TIMEOUT_MS = 120_000;

/**
 * The send path's own imsg child, so a slow send never stalls the watch. Started on first use; a child that
 * timed out or died is dropped and the next send starts a fresh one.
 */
export class SendClient {
  #client?: RpcClient;
  #stopped = false;
  /** Set when imsg runs on another host: file parts are copied there first (stage.ts). */
  stager?: Stager;
  constructor(
    private readonly account: Pick<ImessageAccount, "cliPath" | "dbPath" | "probeTimeoutMs" | "accountId">,
    private readonly timeoutMs = SEND_TIMEOUT_MS,
  ) {}

  #get(): RpcClient {
    // After stop() nothing may start a new child: a send then would race the closing of the store.
    if (this.#stopped) throw new RpcClosedError("send client stopped");
    if (!this.#client?.alive) {
      this.#client = RpcClient.start({
        cliPath: this.account.cliPath,
        dbPath: this.account.dbPath,
        timeoutMs: this.account.probeTimeoutMs,
        tag: `send:${this.account.accountId}`,
      });
    }
    return this.#client;
  }

  async send(params: Record<string, unknown>): Promise<SendResult> {
    const c = this.#get();
    try {
      return await sendMessage(c, params, this.timeoutMs);
    } catch (e) {
      if (!(e instanceof RpcError)) {
        // Timeout or dead child: this child may be wedged; never reuse it.
        c.kill();
        this.#client = undefined;
      }
      throw e;
    }
  }

  /** The pid of the child the next send goes to (starting it if needed); undefined if it cannot start. */
  pid(): number | undefined {
    try {
      return this.#get().pid;
    } catch {
      return undefined;
    }
  }

  /** Looks for a part in its chat's history: the landed row, undefined when absent, null when unknown. */
  async confirm(row: OutboundRow): Promise<{ id: number; guid: string } | undefined | null> {
    if (!row.chatId) return null;
    try {
      const m = matchSent(await historySince(this.#get(), row), row);
      return m ? { id: m.id, guid: m.guid } : undefined;
    } catch {
      return null;
    }
  }

  /** The same child answers history lookups for reconciliation. */
  client(): RpcClient {
    return this.#get();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const c = this.#client;
    this.#client = undefined;
    if (c) await c.stop();
  }
}

/**
 * What a failed send means for the part: `refused` (imsg answered with an error: not sent), `not-sent` (imsg never
 * got the request: it could not start, or cannot read its database), `died` (the child exited mid-request: look in
 * history), `unknown` (a timeout: it may still land).
 */
export function classifySendError(e: unknown): "refused" | "not-sent" | "died" | "unknown" {
  if (e instanceof RpcError) return "refused";
  if (e instanceof ImsgSpawnError || e instanceof ImsgPermissionError) return "not-sent";
  if (e instanceof RpcClosedError) return "died";
  return "unknown";
}

/** How long to let a send that was in flight when its child died land in chat.db before looking (imsg verifies ~2 s). */
export const SETTLE_MS = 3000;

export interface Part {
  text: string;
  file?: string;
}

/**
 * Turns a reply into the parts to send: sanitized, prefixed text chunks first, then one part per valid media
 * file. Pure apart from stat() on media paths; rejected media are returned with their reasons.
 */
export function planParts(
  text: string,
  media: string[],
  account: Pick<ImessageAccount, "responsePrefix" | "textChunkLimit" | "chunkMode" | "mediaMaxMb" | "mediaLocalRoots">,
  /**
   * sanitize: false for user-typed text (send); whole: one part, unchunked (pairing and command replies);
   * stateDir (with configPath): agent media may not come from it (nor from other secret places, nor from outside
   * mediaLocalRoots when set; see `outboundRefusal`).
   */
  opts: { sanitize?: boolean; whole?: boolean; stateDir?: string; configPath?: string } = {},
): { parts: Part[]; rejected: { path: string; reason: string }[] } {
  let body = opts.sanitize === false ? text.replace(/\r\n?/g, "\n").trim() : sanitizeOutbound(text);
  if (body && account.responsePrefix) body = `${account.responsePrefix} ${body}`;
  const parts: Part[] = !body ? [] : opts.whole ? [{ text: body }] : chunkText(body, account.textChunkLimit, account.chunkMode).map((t) => ({ text: t }));
  const rejected: { path: string; reason: string }[] = [];
  const max = account.mediaMaxMb * 1024 * 1024;
  for (const path of media) {
    if (!isAbsolute(path)) {
      rejected.push({ path, reason: "not an absolute path" });
      continue;
    }
    try {
      const st = statSync(path);
      const why = opts.stateDir !== undefined ? outboundRefusal(path, { stateDir: opts.stateDir, configPath: opts.configPath, roots: account.mediaLocalRoots }) : undefined;
      if (why) rejected.push({ path, reason: why });
      else if (!st.isFile()) rejected.push({ path, reason: "not a regular file" });
      else if (st.size > max) rejected.push({ path, reason: `larger than mediaMaxMb (${account.mediaMaxMb} MB)` });
      else parts.push({ text: "", file: path });
    } catch {
      rejected.push({ path, reason: "file not found" });
    }
  }
  return { parts, rejected };
}

export interface DeliverJob {
  account: ImessageAccount;
  target: Target;
  /** The conversation's chat id when known (replies): lets a crash be reconciled from history. */
  chatId?: number;
  /** Ties parts to the inbound message they answer, making re-delivery idempotent. */
  inboundKey?: string;
  parts: Part[];
}

export interface DeliverResult {
  sent: OutboundRow[];
  /** Set when a part failed or its outcome is unknown; later parts were not sent (order matters). */
  error?: string;
  /** The failed part certainly did not reach imsg and is still pending: delivering again later is safe. */
  retryable?: boolean;
}

/**
 * Sends parts in order. A part already `sent` is skipped; an `unknown`/`failed` one stops the delivery. A part
 * recorded earlier is sent as recorded (a restart under a changed config must not send different text).
 */
export async function deliver(
  store: Store,
  sender: Pick<SendClient, "send"> & Partial<Pick<SendClient, "confirm" | "pid" | "stager">>,
  job: DeliverJob,
  opts: { settleMs?: number } = {},
): Promise<DeliverResult> {
  const log = getLog(`deliver:${job.account.accountId}`);
  const sent: OutboundRow[] = [];
  const target = formatTarget(job.target);
  for (let seq = 0; seq < job.parts.length; seq++) {
    const part = job.parts[seq]!;
    const row = store.recordOutbound({
      accountId: job.account.accountId,
      inboundKey: job.inboundKey,
      seq,
      target,
      chatId: job.chatId,
      text: part.text,
      file: part.file,
      echoKey: normalizeForEcho(part.text),
    });
    if (row.state === "sent") {
      sent.push(row);
      continue;
    }
    if (row.state !== "pending") return { sent, error: `part ${seq} is ${row.state}; not re-sent` };
    const params: Record<string, unknown> = { ...targetToSendParams(job.target, job.account.service), region: job.account.region };
    if (row.file) {
      // The path imsg can read: the local file, or its staged copy when imsg runs on another host.
      const staged = sender.stager ? await sender.stager.stage(row) : { path: row.file };
      if ("error" in staged) {
        if (!staged.retryable) store.markOutbound(row.id, "failed", { error: staged.error });
        log.warn(`cannot send a file to ${redact(target)}: ${staged.error}`);
        return { sent, error: staged.error, retryable: staged.retryable };
      }
      params.file = staged.path;
    }
    if (row.text) params.text = row.text;
    for (let attempt = 1; ; attempt++) {
      try {
        if (sender.pid) store.setOutboundSender(row.id, sender.pid());
        const r = await sender.send(params);
        store.markOutbound(row.id, "sent", { messageId: r.id, messageGuid: r.guid });
        sent.push({ ...row, state: "sent", messageId: r.id, messageGuid: r.guid });
        log.debug(`sent part ${seq + 1}/${job.parts.length} to ${redact(target)}`);
        break;
      } catch (e) {
        const kind = classifySendError(e);
        const why = (e as Error).message;
        if (kind === "not-sent") {
          log.warn(`send to ${redact(target)} did not reach imsg (${why}); it stays queued`);
          return { sent, error: why, retryable: true };
        }
        // The child died under the send: give the send time to land, look in the chat's history, and only
        // send again if it is not there (never blindly).
        if (kind === "died" && attempt < 3 && row.chatId && sender.confirm) {
          await new Promise((r) => setTimeout(r, opts.settleMs ?? SETTLE_MS));
          const landed = await sender.confirm(row).catch(() => null);
          if (landed) {
            store.markOutbound(row.id, "sent", { messageId: landed.id, messageGuid: landed.guid || undefined });
            sent.push({ ...row, state: "sent", messageId: landed.id, messageGuid: landed.guid || undefined });
            break;
          }
          if (landed === undefined) {
            log.warn(`imsg exited during a send to ${redact(target)}; not in the chat's history, sending again`);
            continue;
          }
        }
        // imsg refused → certainly not sent. Otherwise (timeout, history unreadable) → unknown: never retried blindly.
        const state = kind === "refused" ? "failed" : "unknown";
        store.markOutbound(row.id, state, { error: why });
        log.error(`send to ${redact(target)} ${state === "failed" ? "failed" : "has an unknown outcome"}: ${why}`);
        return { sent, error: why };
      }
    }
    if (row.file) await sender.stager?.release(row.id);
  }
  return { sent };
}

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

/** The chat's rows from just before the part was recorded on (a part's row cannot predate its record). */
async function historySince(client: RpcClient, row: Pick<OutboundRow, "chatId" | "createdAt">): Promise<ImsgMessage[]> {
  return messagesHistory(client, row.chatId!, { limit: 200, start: new Date(row.createdAt - 2000).toISOString(), attachments: true }, 10_000);
}

/** Waits (bounded) for the imsg child a part was handed to before a crash: it finishes that send, then exits. */
async function childGone(pid: number | undefined, timeoutMs: number): Promise<boolean> {
  return (await until(() => (pid === undefined || !isAlive(pid) ? true : undefined), timeoutMs, 100)) === true;
}

/**
 * Settles outbound parts left `pending` (crash mid-send) or `unknown` (timeout) by looking for them in the chat's
 * history. Found → sent. Not found: `pending` stays pending (it was never handed to Messages, re-sending is safe),
 * `unknown` becomes failed (it may still land; re-sending could duplicate it).
 */
export async function reconcileOutbound(
  store: Store,
  client: RpcClient,
  accountId: string,
  opts: { waitForSenderMs?: number } = {},
): Promise<{ confirmed: number; failed: number; resend: number; unchecked: Set<string> }> {
  const log = getLog(`deliver:${accountId}`);
  const out = { confirmed: 0, failed: 0, resend: 0, unchecked: new Set<string>() };
  const rows = store.unsettledOutbound(accountId);
  const used = new Set<number>();
  const byChat = new Map<number, ImsgMessage[]>();
  for (const row of rows) {
    let found: { id: number; guid: string } | undefined;
    // A send still running in the previous process's child may land after we look: let that child finish first.
    if (row.state === "pending" && !(await childGone(row.senderPid, opts.waitForSenderMs ?? SEND_TIMEOUT_MS))) {
      log.warn(`outbound ${row.id} is still with imsg (pid ${row.senderPid}); checking it again at the next start`);
      if (row.inboundKey) out.unchecked.add(row.inboundKey);
      continue;
    }
    if (row.chatId) {
      let hist = byChat.get(row.chatId);
      if (!hist) {
        try {
          hist = await historySince(client, row);
        } catch (e) {
          log.warn(`cannot reconcile outbound ${row.id}: ${(e as Error).message}`);
          if (row.inboundKey) out.unchecked.add(row.inboundKey);
          continue;
        }
        byChat.set(row.chatId, hist);
      }
      const m = matchSent(hist, row, used);
      if (m) found = { id: m.id, guid: m.guid };
    }
    if (found) {
      used.add(found.id);
      store.markOutbound(row.id, "sent", { messageId: found.id, messageGuid: found.guid || undefined });
      out.confirmed++;
    } else if (row.state === "unknown" || !row.chatId) {
      store.markOutbound(row.id, "failed", { error: "outcome unknown and not found in chat history; not re-sent" });
      out.failed++;
    } else out.resend++;
  }
  if (rows.length) log.info(`reconciled ${rows.length} unsettled outbound part(s): ${out.confirmed} confirmed sent, ${out.resend} to send, ${out.failed} given up`);
  return out;
}

/** How many chats `sendOnce` looks through to find the one a handle or chat id/guid send lands in. */
const CHAT_LOOKUP_LIMIT = 500;

/**
 * The chat a send to `target` lands in, among chats imsg already knows (undefined for a first contact). A handle
 * matches its direct chat on the service imsg sends it with, as Messages picks it (`SMS;-;` for sms, else
 * `iMessage;-;`, then `any;-;`).
 */
function chatIdFor(chats: ImsgChat[], target: Target, service: Service): number | undefined {
  const svc = target.kind === "handle" && target.service !== "auto" ? target.service : service;
  const prefixes = svc === "sms" ? ["SMS;", "any;"] : ["iMessage;", "any;"];
  const byPrefix = (cands: ImsgChat[]) => prefixes.map((p) => cands.find((c) => c.guid.startsWith(p))).find((c) => c)?.id;
  switch (target.kind) {
    case "chat_id":
      return target.chatId;
    case "chat_guid":
      return chats.find((c) => c.guid === target.chatGuid)?.id;
    case "chat_identifier": {
      const cands = chats.filter((c) => c.identifier === target.chatIdentifier);
      return cands.length === 1 ? cands[0]!.id : byPrefix(cands);
    }
    case "handle":
      return byPrefix(chats.filter((c) => !c.isGroup && normalizeHandle(c.identifier) === target.to));
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
    if (target.kind === "chat_id") chatId = target.chatId;
    else {
      try {
        const raw = await chatsList(sender.client(), CHAT_LOOKUP_LIMIT, account.probeTimeoutMs);
        const chats = raw.flatMap((c) => {
          const p = parseChat(c);
          return "chat" in p ? [p.chat] : [];
        });
        chatId = chatIdFor(chats, target, account.service);
      } catch (e) {
        // Only the echo match and crash lookups lose their chat; the send itself reports real imsg trouble.
        getLog(`deliver:${account.accountId}`).debug(`cannot look up the chat of ${redact(formatTarget(target))}: ${(e as Error).message}`);
      }
    }
    const result = await deliver(store, sender, { account, target, chatId, parts });
    return { result, parts, rejected };
  } finally {
    await sender.stop();
  }
}
