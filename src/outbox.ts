// The outbox: replies queued per conversation and sent in order (parts of consecutive replies to one chat never
// interleave), with retry and backoff while a reply cannot go out yet, and a give-up (by age) that is journaled.
import type { ReplyActions } from "./actions.ts";
import type { AgentReply } from "./agents.ts";
import type { ImessageAccount } from "./config.ts";
import { deliver, planParts } from "./deliver.ts";
import type { ImsgMessage } from "./imsg.ts";
import { type Logger, redact } from "./log.ts";
import { KeyedQueue } from "./queues.ts";
import type { InboundReason } from "./reasons.ts";
import type { RateGuard } from "./guard.ts";
import { convKey } from "./screen.ts";
import type { Store } from "./store.ts";
import { formatTarget, replyTargetFor } from "./targets.ts";

/**
 * A reply to send; `system`: written by the gateway (pairing code, /status), sent whole and unprefixed; `actions`:
 * the agent's directives as the turn resolved them (journaled with the reply, so a resumed reply plans the same parts).
 */
export type OutboundReply = AgentReply & { system?: boolean; actions?: ReplyActions };

/** Backoff while a reply cannot go out yet (imsg unavailable, a part in doubt): `baseMs` doubling up to `maxMs`. */
export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 5000, maxMs: 300_000 };

/** The wait before retry number `attempt` (1-based). Pure. */
export function retryDelay(attempt: number, p: RetryPolicy = DEFAULT_RETRY): number {
  return Math.min(p.baseMs * 2 ** (Math.max(1, attempt) - 1), p.maxMs);
}

export interface OutboxOptions {
  /** The current account config (it changes with `/config set`). */
  account: () => ImessageAccount;
  store: Store;
  sender: Parameters<typeof deliver>[1];
  stateDir: string;
  /** The config file: never sent as agent media. */
  configPath?: string;
  settleMs: number;
  log: Logger;
  /** Told of every reply sent (the rate guard times the next message against it). */
  guard: Pick<RateGuard, "replied">;
  /** Every send task, so shutdown can wait for it. */
  track: (p: Promise<void>) => void;
  retry?: RetryPolicy;
}

export class Outbox {
  #queue = new KeyedQueue();
  #stopping = false;
  #wake = new Set<() => void>();
  constructor(readonly opts: OutboxOptions) {}

  /** Queues a reply to the inbound row `key` on its conversation; the caller need not wait for the sends (the promise settles after them). */
  enqueue(key: string, msg: ImsgMessage, reply: OutboundReply, isGroup: boolean): Promise<void> {
    const conv = formatTarget(replyTargetFor(msg, isGroup));
    const sent = this.#queue.run(conv, () => this.#send(key, msg, reply, isGroup));
    this.opts.track(sent);
    return sent;
  }

  /** Stops retrying: replies waiting for a retry stay "replied" (their parts pending) and resume after a restart. */
  stop(): void {
    this.#stopping = true;
    for (const w of this.#wake) w();
  }

  /** Waits `ms`, or less when the outbox stops. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.#wake.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#wake.add(done);
    });
  }

  /**
   * Delivers one reply. While it cannot go out yet it is retried with backoff inside its conversation's queue, so
   * the conversation's later replies wait behind it (never half a reply, then the next one). It is given up only
   * once older than recoveryMaxAgeMinutes (it would arrive out of context).
   */
  async #send(key: string, msg: ImsgMessage, reply: OutboundReply, isGroup: boolean): Promise<void> {
    const { store, log } = this.opts;
    let account = this.opts.account();
    const id = account.accountId;
    const target = replyTargetFor(msg, isGroup);
    const { parts, rejected, truncated } = planParts(reply.text, reply.media, reply.system ? { ...account, responsePrefix: undefined } : account, {
      whole: reply.system,
      sanitize: !reply.system,
      stateDir: this.opts.stateDir,
      configPath: this.opts.configPath,
      // Resolved by the turn (stored with the reply), so a resumed reply re-plans to the same parts.
      actions: reply.system ? undefined : reply.actions,
    });
    for (const r of rejected) log.warn(`not attaching ${r.path}: ${r.reason}`);
    if (truncated) {
      log.warn(
        `reply to row ${msg.id} cut to ${truncated.parts} part(s), ${truncated.keptChars} of ${truncated.chars} characters (replyMaxChars/replyMaxParts)`,
      );
    }
    if (!parts.length) {
      store.setInbound(id, key, { state: "done", reason: "empty reply" satisfies InboundReason });
      return;
    }
    const policy = this.opts.retry ?? DEFAULT_RETRY;
    for (let attempt = 1;; attempt++) {
      if (this.#stopping && attempt > 1) return;
      const job = { account, target, chatId: msg.chatId || undefined, chatGuid: msg.chatGuid || undefined, afterRowid: msg.id, inboundKey: key, parts };
      const res = await deliver(store, this.opts.sender, job, { settleMs: this.opts.settleMs });
      if (!res.retryable) {
        store.setInbound(id, key, res.error ? { state: "failed", reason: res.error } : { state: "done" });
        if (res.error) return;
        break;
      }
      if (this.#stopping) return;
      const receivedAt = store.getInbound(id, key)?.receivedAt ?? store.now();
      if (store.now() - receivedAt > account.recoveryMaxAgeMinutes * 60_000) {
        store.setInbound(id, key, { state: "failed", reason: `reply not delivered within ${account.recoveryMaxAgeMinutes} min (${res.error})` });
        log.error(`gave up sending the reply to row ${msg.id}: ${res.error}`);
        return;
      }
      const wait = retryDelay(attempt, policy);
      log.debug(`reply to row ${msg.id} not delivered yet (${res.error}); retrying in ${wait} ms`);
      await this.#pause(wait);
      account = this.opts.account();
    }
    const where = isGroup ? `chat ${msg.chatId}` : redact(msg.sender);
    this.opts.guard.replied(convKey(msg, account));
    log.info(`replied to ${where} (${parts.length} part${parts.length > 1 ? "s" : ""})`);
  }
}
