// Recovery at start: settle the sends a previous run left in doubt, then resume every unfinished inbound row (a
// reply owed goes to the outbox again, a row not yet answered goes through the pipeline as catch-up).
import type { ImessageAccount } from "./config.ts";
import { reconcileOutbound, type SendClient } from "./deliver.ts";
import { type ImsgMessage, parseMessage, toWireMessage } from "./imsg.ts";
import type { Logger } from "./log.ts";
import type { OutboundReply, Outbox } from "./outbox.ts";
import { conversationOf } from "./policy.ts";
import type { InboundReason } from "./reasons.ts";
import type { InboundRow, Store } from "./store.ts";

export interface RecoveryContext {
  accountId: string;
  account: () => ImessageAccount;
  store: Store;
  sender: SendClient;
  settleMs: number;
  log: Logger;
  outbox: Pick<Outbox, "enqueue">;
  /** Background work shutdown waits for. */
  track: (p: Promise<void>) => void;
  /** Runs a journaled row through the pipeline as catch-up. */
  process: (key: string, msg: ImsgMessage) => Promise<void>;
}

/** Finishes what a previous run left: settle unknown sends, then resume every unfinished inbound row. */
export async function recover(ctx: RecoveryContext): Promise<void> {
  const { store, accountId: id } = ctx;
  const pendingOut = store.unsettledOutbound(id);
  const unfinished = store.unfinishedInbound(id);
  if (!pendingOut.length && !unfinished.length) return sweepStaged(ctx);
  // Parts whose fate could not be checked keep their message waiting for the next start: never re-sent blindly.
  const blocked = pendingOut.length ? (await reconcileOutbound(store, ctx.sender, id, { settleMs: ctx.settleMs })).unchecked : new Set<string>();
  sweepStaged(ctx);
  ctx.log.info(`resuming ${unfinished.length} unfinished message(s) from the journal`);
  for (const row of unfinished) ctx.track(resume(ctx, row, blocked));
}

/** Remote copies of parts settled while we were down, and orphaned staging dirs: removed in the background. */
function sweepStaged(ctx: RecoveryContext): void {
  const s = ctx.sender.stager;
  if (s) ctx.track(s.sweep());
}

async function resume(ctx: RecoveryContext, row: InboundRow, blocked: Set<string>): Promise<void> {
  const { store, accountId: id } = ctx;
  const parsed = parseMessage(toWireMessage(row.message));
  if ("error" in parsed) {
    store.setInbound(id, row.key, { state: "failed", reason: "journal entry unreadable" satisfies InboundReason });
    return;
  }
  const msg = parsed.message;
  if (row.state === "replied") {
    if (blocked.has(row.key)) return;
    const maxAge = ctx.account().recoveryMaxAgeMinutes;
    // A reply that could not go out for hours would arrive out of context: give it up instead.
    if (Date.now() - row.createdAt > maxAge * 60_000) {
      store.setInbound(id, row.key, { state: "failed", reason: `reply not delivered within ${maxAge} min` });
      return;
    }
    const { isGroup } = conversationOf(msg, ctx.account());
    return void ctx.outbox.enqueue(row.key, msg, row.reply as OutboundReply, isGroup);
  }
  return ctx.process(row.key, msg);
}
