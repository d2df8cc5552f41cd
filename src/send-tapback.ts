// Sending one tapback part, exactly once: the way is decided from the send child's capabilities (tapback.ts), the
// way is recorded before the tapback is handed over, and one whose outcome is in doubt is looked up in history
// (its target's reactions) before anything is sent again. A tapback never holds up its reply: refused or dropped,
// its part is settled `failed` with the reason and the reply's text goes on.
import type { ImsgInfo } from "./capabilities.ts";
import type { ImessageAccount } from "./config.ts";
import { getLog, redact } from "./log.ts";
import { runProcess } from "./proc.ts";
import { lookForTapback, TAPBACK_GONE, wasHandedOver } from "./reconcile.ts";
import { RpcError } from "./rpc.ts";
import { classifySendError, type SendClient } from "./send-client.ts";
import type { OutboundRow, Store } from "./store.ts";
import { formatSentAs, newestIncoming, ownTapback, planTapback, type TapbackWay, wantsFor } from "./tapback.ts";

/** `imsg react` drives Messages.app's UI: allow it a while, but not a send's two minutes. */
export const REACT_TIMEOUT_MS = 30_000;
const MAX_TRIES = 3;
const RETRY_MS = 250;

export type TapbackSender =
  & Pick<SendClient, "history" | "pid" | "stopped">
  & Partial<Pick<SendClient, "tapback" | "capabilities" | "forgetCapabilities">>;

/** `stale`: the refusal shows the cached capabilities are out of date (asked again, and the way planned again once). */
type Outcome = { sent: true } | { refused: string; stale?: boolean } | { retry: string } | { doubt: string } | { notSent: string };

/** The argument array of `imsg react` (plus `--db` as the rpc child gets it). Pure. */
export function reactArgs(chatId: number, kind: string, dbPath?: string): string[] {
  return ["react", "--chat-id", String(chatId), "--reaction", kind, "--json", ...(dbPath ? ["--db", dbPath] : [])];
}

/** Runs `imsg react` (reacts to the chat's newest incoming message). Exit 0 is sent; a kill or timeout is in doubt. */
export async function runReact(
  account: Pick<ImessageAccount, "cliPath" | "dbPath">,
  chatId: number,
  kind: string,
  onSpawn?: (pid: number) => void,
  timeoutMs = REACT_TIMEOUT_MS,
): Promise<Outcome> {
  const r = await runProcess(account.cliPath, reactArgs(chatId, kind, account.dbPath), { timeoutMs, onSpawn });
  if (r.spawnError !== undefined) return { refused: `imsg react could not start (${r.spawnError})` };
  if (r.timedOut || r.code === null) return { doubt: `imsg react ${r.timedOut ? "timed out" : `was killed (${r.signal})`}` };
  let ok = r.code === 0;
  try {
    if (ok && (JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as { ok?: unknown }).ok === false) ok = false;
  } catch {
    // Not JSON: the exit status says it.
  }
  const tail = (r.stderr || r.stdout).trim().split("\n").at(-1)?.slice(0, 200);
  return ok ? { sent: true } : { refused: `imsg react failed (exit ${r.code}${tail ? `: ${tail}` : ""})` };
}

async function bridgeTapback(sender: TapbackSender, params: Record<string, unknown>): Promise<Outcome> {
  try {
    await sender.tapback!(params);
    return { sent: true };
  } catch (e) {
    const why = (e as Error).message;
    // What a failure means is the send path's one classifier; a bridge gone away is a refusal of this way only.
    const kind = classifySendError(e);
    if (e instanceof RpcError && e.classified.kind === "bridge_unavailable") return { refused: why, stale: true };
    if (kind === "in-doubt") return { doubt: why };
    if (kind === "retry") return { retry: why };
    if (kind === "not-sent") return { notSent: why };
    // An emoji the running bridge turns down: the capabilities promised more than it has.
    return { refused: why, stale: "emoji" in params };
  }
}

/** The capabilities of the current send child: undefined (nothing advanced) when imsg cannot say, null when asking failed. */
export async function capsOf(sender: Partial<Pick<SendClient, "capabilities">>): Promise<ImsgInfo | undefined | null> {
  return sender.capabilities ? await sender.capabilities().catch(() => null) : undefined;
}

/**
 * Sends one tapback part. Returns how it settled (sent, or failed with its reason: delivery goes on either way),
 * or why it stays pending (history unreadable while in doubt, imsg not startable, stopping).
 * `fresh`: recorded by this delivery just now, so nothing can have sent it before and the first look is skipped.
 */
export async function deliverTapback(
  store: Store,
  sender: TapbackSender,
  job: { account: ImessageAccount; chatGuid?: string; target: string },
  row: OutboundRow,
  opts: { settleMs: number; fresh: boolean },
): Promise<{ pending: string } | { settled: "sent" | "failed" }> {
  const log = getLog(`deliver:${job.account.accountId}`);
  const t = row.tapback!;
  const fail = (why: string) => {
    store.setOutboundSender(row.id, undefined);
    store.markOutbound(row.id, "failed", { error: why });
    log.warn(`tapback in ${redact(job.target)} not sent: ${why}`);
    return { settled: "failed" } as const;
  };
  const sent = () => ({ settled: "sent" } as const);
  const pending = (why: string) => ({ pending: why });
  const chatId = row.chatId;
  if (!chatId) return fail("no chat to send it in");
  const reactFallback = job.account.reactFallback;
  let handedAt = wasHandedOver(row) ? row.updatedAt : undefined;
  let looked = opts.fresh && handedAt === undefined;
  let sentAs = row.sentAs;
  let replanned = false;
  for (let tries = 0;;) {
    if (!looked || handedAt !== undefined) {
      // Handed over before, or a part from an earlier run: it may be there already. Never re-sent without a look.
      const found = await lookForTapback(sender, chatId, { tapback: t, sentAs }, {
        deadline: handedAt !== undefined ? handedAt + opts.settleMs : 0,
        stopped: () => sender.stopped,
      });
      looked = true;
      if (found === "gone") return fail(TAPBACK_GONE);
      if (found) {
        store.markOutbound(row.id, "sent", { messageId: found.id });
        log.debug(`tapback in ${redact(job.target)} found in history; not sent again`);
        return sent();
      }
      if (found === null) return pending("outcome of a tapback not settled yet (history unreadable)");
      if (sender.stopped) return pending("stopping");
      if (handedAt !== undefined) {
        store.resetOutbound(row.id);
        if (++tries > MAX_TRIES) return fail("imsg keeps failing the tapback");
        log.warn(`a tapback in ${redact(job.target)} is not in history after imsg's receipt window; sending it again`);
      }
      handedAt = undefined;
    }
    if (sender.stopped) return pending("stopping");
    const caps = await capsOf(sender);
    // Best effort: a tapback never holds the reply's text back, not even while imsg cannot say what it can do.
    if (caps === null) return fail("cannot ask imsg what it can do (status failed)");
    const plan = planTapback(t, { tapback: caps?.advanced.tapback === true && !!sender.tapback, emoji: caps?.emojiTapback === true }, reactFallback);
    if ("drop" in plan) return fail(plan.drop);
    if (plan.via === "react") {
      // `imsg react` reacts to the newest incoming message: only while that is still the tapback's target.
      const hist = await sender.history(chatId).catch(() => undefined);
      if (!hist) return fail("cannot check that its message is still the chat's newest (history unreadable)");
      if (newestIncoming(hist)?.guid !== t.to) return fail("imsg react reacts to the newest incoming message only, and a newer one came");
      // Already there (a run that died after it, or the owner by hand): UI scripting the same tapback again
      // would toggle it off.
      const own = ownTapback(hist.find((h) => h.guid === t.to)!, wantsFor({ tapback: t, sentAs: formatSentAs(plan) }));
      if (own) {
        store.markOutbound(row.id, "sent", { messageId: own.id });
        return sent();
      }
    }
    sentAs = formatSentAs(plan);
    store.setOutboundSentAs(row.id, sentAs);
    // The process that holds it, so a restart waits for that very one: the imsg child, or `imsg react` (its own
    // process group, which outlives a killed gateway).
    if (plan.via === "bridge") store.setOutboundSender(row.id, sender.pid());
    const at = Date.now();
    const out = plan.via === "react"
      ? await runReact(job.account, chatId, plan.kind, (pid) => store.setOutboundSender(row.id, pid))
      : await bridgeTapback(sender, tapbackParams(plan, t.to, chatId, job.chatGuid));
    if ("sent" in out) {
      store.markOutbound(row.id, "sent", {});
      log.debug(`tapback ${sentAs} sent in ${redact(job.target)}`);
      return sent();
    }
    if (sender.stopped) return pending("stopping");
    if ("doubt" in out) {
      log.warn(`a tapback in ${redact(job.target)} has an unknown outcome (${out.doubt}); looking for it in history`);
      handedAt = at;
      continue;
    }
    store.setOutboundSender(row.id, undefined);
    if ("notSent" in out) return pending(out.notSent);
    if ("refused" in out && out.stale && !replanned && sender.forgetCapabilities) {
      // The bridge went away (or lost emoji tapbacks) since the child was asked: ask again, plan once more (the
      // nearest kind, `imsg react`, or a logged drop).
      log.debug(`tapback refused (${out.refused}); asking imsg again what it can do`);
      sender.forgetCapabilities();
      replanned = true;
      continue;
    }
    if ("retry" in out && ++tries <= MAX_TRIES) {
      await new Promise((r) => setTimeout(r, RETRY_MS * tries));
      continue;
    }
    return fail("refused" in out ? out.refused : out.retry);
  }
}

/** `tapback` params: the chat (guid when known), the message, and the kind or emoji. Pure. */
export function tapbackParams(w: TapbackWay, to: string, chatId: number, chatGuid?: string): Record<string, unknown> {
  return { ...(chatGuid ? { chat_guid: chatGuid } : { chat_id: chatId }), message_guid: to, ...("emoji" in w ? { emoji: w.emoji } : { reaction: w.kind }) };
}
