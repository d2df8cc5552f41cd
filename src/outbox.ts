// The outbox: replies queued per conversation and sent in order (parts of consecutive replies to one chat never
// interleave), with retry and backoff while imsg cannot take sends at all, and a give-up that is journaled.
import type { AgentReply } from "./agents.ts";
import type { ImessageAccount } from "./config.ts";
import { deliver, planParts, type SendClient } from "./deliver.ts";
import type { ImsgMessage } from "./imsg.ts";
import { redact, type Logger } from "./log.ts";
import { KeyedQueue } from "./queues.ts";
import type { InboundReason } from "./reasons.ts";
import { convKey, REPLY_BREAKER, type LoopBreaker } from "./screen.ts";
import type { Store } from "./store.ts";
import { formatTarget, replyTargetFor } from "./targets.ts";

/** A reply to send; `system`: written by the gateway (pairing code, /status), sent whole and unprefixed. */
export type OutboundReply = AgentReply & { system?: boolean };

/** Backoff while imsg cannot take a send: `baseMs` doubling up to `maxMs`, then given up after `attempts`. */
export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
  attempts: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 5000, maxMs: 300_000, attempts: 8 };

/** The wait before retry number `attempt` (1-based), or undefined once the attempts are used up. Pure. */
export function retryDelay(attempt: number, p: RetryPolicy = DEFAULT_RETRY): number | undefined {
  if (attempt > p.attempts) return undefined;
  return Math.min(p.baseMs * 2 ** (attempt - 1), p.maxMs);
}

export interface OutboxOptions {
  /** The current account config (it changes with `/config set`). */
  account: () => ImessageAccount;
  store: Store;
  sender: Pick<SendClient, "send" | "confirm" | "pid">;
  stateDir: string;
  /** The config file: never sent as agent media. */
  configPath?: string;
  settleMs: number;
  log: Logger;
  /** Counts replies per conversation (bot loops). */
  breaker: Pick<LoopBreaker, "reply">;
  /** Every send task, so shutdown can wait for it. */
  track: (p: Promise<void>) => void;
  retry?: RetryPolicy;
}

export class Outbox {
  #queue = new KeyedQueue();
  #retries = new Map<string, { attempt: number; timer?: ReturnType<typeof setTimeout> }>();
  #stopping = false;
  constructor(readonly opts: OutboxOptions) {}

  /** Queues a reply to the inbound row `key` on its conversation; the caller need not wait for the sends (the promise settles after them). */
  enqueue(key: string, msg: ImsgMessage, reply: OutboundReply, isGroup: boolean): Promise<void> {
    const conv = formatTarget(replyTargetFor(msg, isGroup));
    const sent = this.#queue.run(conv, () => this.#send(key, msg, reply, isGroup));
    this.opts.track(sent);
    return sent;
  }

  /** Stops scheduling retries (their replies stay "replied" and resume after a restart). */
  stop(): void {
    this.#stopping = true;
    for (const r of this.#retries.values()) clearTimeout(r.timer);
  }

  async #send(key: string, msg: ImsgMessage, reply: OutboundReply, isGroup: boolean): Promise<void> {
    const { store, log } = this.opts;
    const account = this.opts.account();
    const id = account.accountId;
    const target = replyTargetFor(msg, isGroup);
    const { parts, rejected } = planParts(reply.text, reply.media, reply.system ? { ...account, responsePrefix: undefined } : account, {
      whole: reply.system,
      sanitize: !reply.system,
      stateDir: this.opts.stateDir,
      configPath: this.opts.configPath,
    });
    for (const r of rejected) log.warn(`not attaching ${r.path}: ${r.reason}`);
    if (!parts.length) {
      store.setInbound(id, key, { state: "done", reason: "empty reply" satisfies InboundReason });
      return;
    }
    const job = { account, target, chatId: msg.chatId || undefined, inboundKey: key, parts };
    const res = await deliver(store, this.opts.sender, job, { settleMs: this.opts.settleMs });
    if (res.retryable) return this.#retryLater(key, msg, reply, isGroup);
    this.#retries.delete(key);
    store.setInbound(id, key, res.error ? { state: "failed", reason: res.error } : { state: "done" });
    if (res.error) return;
    const where = isGroup ? `chat ${msg.chatId}` : redact(msg.sender);
    if (this.opts.breaker.reply(convKey(msg, account))) {
      log.warn(`${REPLY_BREAKER.threshold} replies in a minute to ${where}: possible bot loop, pausing replies there for a minute`);
    }
    log.info(`replied to ${where} (${parts.length} part${parts.length > 1 ? "s" : ""})`);
  }

  /**
   * imsg could not take the send at all (could not start, no database access): the parts stay pending and the
   * message stays "replied" (a restart resumes it too) until the retries are used up.
   */
  #retryLater(key: string, msg: ImsgMessage, reply: OutboundReply, isGroup: boolean): void {
    if (this.#stopping) return;
    const r = this.#retries.get(key) ?? { attempt: 0 };
    const policy = this.opts.retry ?? DEFAULT_RETRY;
    const wait = retryDelay(++r.attempt, policy);
    if (wait === undefined) {
      this.#retries.delete(key);
      this.opts.store.setInbound(this.opts.account().accountId, key, { state: "failed", reason: `imsg unavailable; gave up after ${policy.attempts} attempts` });
      this.opts.log.error(`gave up sending the reply to row ${msg.id}: imsg stayed unavailable`);
      return;
    }
    r.timer = setTimeout(() => this.enqueue(key, msg, reply, isGroup), wait);
    r.timer.unref?.();
    this.#retries.set(key, r);
  }
}
