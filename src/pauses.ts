// Paused conversations: the rate guard's verdict applied to the journal. A paused conversation's admitted
// messages are held (journaled as unfinished, with the reason), its one notice is sent, and /resume answers the
// held messages or records them as skipped. Nothing here drops a message.
import type { ImessageAccount } from "./config.ts";
import { describeConv, type RateGuard } from "./guard.ts";
import { type ImsgMessage, parseMessage, toWireMessage } from "./imsg.ts";
import { type Logger, redact } from "./log.ts";
import type { InboundReason } from "./reasons.ts";
import { convKey } from "./screen.ts";
import type { InboundRow, Store } from "./store.ts";
import type { ConversationControl, Dispatch } from "./turn.ts";

/** The one notice a pause sends into its conversation. */
export const PAUSE_NOTICE =
  "Paused: messages here arrive like an automated loop, so I stopped answering. Nothing is lost; the owner can send /resume to continue.";

const HELD: InboundReason = "held (conversation paused)";

export interface PausesOptions {
  account: () => ImessageAccount;
  store: Pick<Store, "setInbound" | "unfinishedInbound">;
  guard: RateGuard;
  log: Logger;
  /** Sends a gateway text into the conversation of `msg`. */
  notify(key: string, msg: ImsgMessage, text: string, isGroup: boolean): void;
  /** Runs a held message through the pipeline again (guard skipped). */
  reprocess(key: string, msg: ImsgMessage): void;
  /** Cancels the conversation's running agent turn (/stop); false when none runs. */
  stop(conv: string): boolean;
}

export class Pauses {
  constructor(private readonly o: PausesOptions) {}

  /** The rate guard on an admitted message: held (its conversation is paused), delayed (a probe), or passed. */
  check(key: string, msg: ImsgMessage, conv: string, d: Dispatch, isGroup: boolean, live: boolean): "held" | "slow" | "pass" {
    const { guard, log } = this.o;
    const account = this.o.account();
    // The way out of a pause (and a look at it) is never held.
    const control = d.command && d.commandAuthorized && ["status", "stop", "resume"].includes(d.command.name);
    if (guard.paused(conv)) {
      if (control) return "pass";
      this.#hold(key, msg, conv);
      return "held";
    }
    // Replayed rows carry no timing evidence.
    if (!live) return "pass";
    const v = guard.inbound(conv, account);
    if (v === "slow") log.debug(`rate guard: ${describeConv(conv)} answers fast; the reply to row ${msg.id} is delayed ${account.loopFollowMs} ms to test it`);
    if (v !== "trip") return v === "slow" ? "slow" : "pass";
    this.pause(conv, msg, isGroup, `${account.loopMaxExchanges} messages in a row each came within ${account.loopFollowMs} ms of our reply`);
    this.#hold(key, msg, conv);
    return "held";
  }

  /** An admitted sender's row of reflected assistant markup. */
  echo(msg: ImsgMessage, isGroup: boolean): void {
    const account = this.o.account();
    const conv = convKey(msg, account);
    if (this.o.guard.echo(conv, account)) this.pause(conv, msg, isGroup, `${account.loopEchoRows} rows of reflected assistant markup within a minute`);
  }

  /** Pauses a conversation and sends its one notice, into the conversation itself (why: docs/SPEC.md §8.16). */
  pause(conv: string, msg: ImsgMessage, isGroup: boolean, reason: string): void {
    const { guard } = this.o;
    if (!guard.pause(conv, reason)) return;
    this.o.log.warn(`rate guard: paused ${describeConv(conv)}: ${reason}; its messages are held until an owner sends /resume`);
    // Keyed by the pause, not by a row: the notice answers no message, and is recorded (and sent) once.
    this.o.notify(`pause:${conv}:${guard.paused(conv)!.since}`, msg, PAUSE_NOTICE, isGroup);
  }

  #hold(key: string, msg: ImsgMessage, conv: string): void {
    this.o.store.setInbound(this.o.account().accountId, key, { state: "new", reason: HELD });
    this.o.log.debug(`hold row ${msg.id} from ${redact(msg.sender)}: ${describeConv(conv)} is paused`);
  }

  /** Held rows of a conversation, oldest first. */
  held(conv: string): { row: InboundRow; msg: ImsgMessage }[] {
    const account = this.o.account();
    const out: { row: InboundRow; msg: ImsgMessage }[] = [];
    for (const row of this.o.store.unfinishedInbound(account.accountId)) {
      if (row.reason !== HELD) continue;
      const p = parseMessage(toWireMessage(row.message));
      if (!("error" in p) && convKey(p.message, account) === conv) out.push({ row, msg: p.message });
    }
    return out;
  }

  /** Lifts a pause: held rows go through the pipeline again (oldest first), or are recorded as skipped. */
  resume(conv: string, skip: boolean): { held: number } | undefined {
    const { guard, store, log } = this.o;
    if (!guard.paused(conv)) return undefined;
    const rows = this.held(conv);
    guard.resume(conv);
    log.info(`rate guard: ${describeConv(conv)} resumed; ${rows.length} held message(s) ${skip ? "recorded as skipped" : "to answer"}`);
    for (const { row, msg } of rows) {
      if (skip) store.setInbound(this.o.account().accountId, row.key, { state: "skipped", reason: "skipped by /resume skip" satisfies InboundReason });
      else this.o.reprocess(row.key, msg);
    }
    return { held: rows.length };
  }

  /** What /status, /stop and /resume see of a conversation. */
  control(conv: string): ConversationControl {
    return {
      conv,
      pauses: () => this.o.guard.list(),
      held: (c) => this.held(c).length,
      resume: (c, skip) => this.resume(c, skip),
      stop: () => this.o.stop(conv),
    };
  }
}
