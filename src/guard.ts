// The rate guard: tells a person from a bot by evidence of automation, and pauses a conversation that shows it.
// Only senders who passed access control are counted (a stranger's rows never change what others get). Nothing
// is dropped: while a conversation is paused its messages are held in the journal until the owner resumes it.
//
// Evidence, per conversation:
// - exchanges: a message that is the first one since our last reply there and arrives within loopFollowMs of
//   it. A person's burst (typing fast, pasting a list line by line) does not wait for our replies, so a second
//   message before our reply resets the count. Before the trip, the last PROBE_EXCHANGES replies are held back
//   by loopFollowMs: a bot still answers right after the late reply, while a burst shows itself meanwhile.
// - echoes: rows of reflected assistant markup (our own output coming back), loopEchoRows a minute.
import type { ImessageAccount } from "./config.ts";
import { redact } from "./log.ts";
import { WindowCounter } from "./queues.ts";
import type { Store } from "./store.ts";

export type GuardLimits = Pick<ImessageAccount, "loopMaxExchanges" | "loopFollowMs" | "loopEchoRows">;

/** A paused conversation (persisted, so a restart keeps it paused). */
export interface Pause {
  since: number;
  reason: string;
}

/** What an admitted message means for its conversation: answer, answer after a delay (probe), or pause. */
export type Verdict = "ok" | "slow" | "trip";

/** Exchanges before the trip whose replies are delayed to test whether the other side waits for them. */
export const PROBE_EXCHANGES = 2;
export const ECHO_WINDOW_MS = 60_000;

/** One conversation's timing evidence. */
export interface Exchange {
  lastReplyAt?: number;
  rowsSinceReply: number;
  streak: number;
}

/** The evidence after one more admitted message at `now`. Pure. */
export function nextExchange(c: Exchange, now: number, followMs: number): Exchange {
  const rows = c.rowsSinceReply + 1;
  const follows = rows === 1 && c.lastReplyAt !== undefined && now - c.lastReplyAt <= followMs;
  return { ...c, rowsSinceReply: rows, streak: follows ? c.streak + 1 : 0 };
}

/** The verdict for a streak. Pure. */
export function verdict(streak: number, max: number): Verdict {
  if (max <= 0 || streak <= 0) return "ok";
  if (streak >= max) return "trip";
  return streak >= max - PROBE_EXCHANGES ? "slow" : "ok";
}

const metaKey = (accountId: string) => `pauses:${accountId}`;

/** The account's paused conversations as the journal has them (probe reads this too). */
export function readPauses(store: Pick<Store, "getMeta">, accountId: string): Record<string, Pause> {
  try {
    const v = JSON.parse(store.getMeta(metaKey(accountId)) ?? "{}");
    return typeof v === "object" && v !== null && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
}

/** A conversation key for logs and replies: "chat 42" or "DM ***1111" (redacted). */
export function describeConv(conv: string): string {
  return conv.startsWith("chat:") ? `chat ${conv.slice(5)}` : `DM ${redact(conv.replace(/^dm:/, ""))}`;
}

export class RateGuard {
  #exchanges = new Map<string, Exchange>();
  #echoes = new WindowCounter(ECHO_WINDOW_MS);
  #pauses: Record<string, Pause>;

  constructor(
    private readonly store: Pick<Store, "getMeta" | "setMeta">,
    private readonly accountId: string,
  ) {
    this.#pauses = readPauses(store, accountId);
  }

  /** A reply went out in `conv`. */
  replied(conv: string, now = Date.now()): void {
    const c = this.#exchanges.get(conv) ?? { rowsSinceReply: 0, streak: 0 };
    this.#set(conv, { ...c, lastReplyAt: now, rowsSinceReply: 0 });
  }

  /** An admitted message arrived in `conv` (live, not replayed). */
  inbound(conv: string, limits: GuardLimits, now = Date.now()): Verdict {
    const c = nextExchange(this.#exchanges.get(conv) ?? { rowsSinceReply: 0, streak: 0 }, now, limits.loopFollowMs);
    this.#set(conv, c);
    return verdict(c.streak, limits.loopMaxExchanges);
  }

  /** An admitted sender's row reflected assistant markup; true when the conversation should pause. */
  echo(conv: string, limits: GuardLimits, now = Date.now()): boolean {
    return limits.loopEchoRows > 0 && this.#echoes.hit(conv, now) >= limits.loopEchoRows;
  }

  paused(conv: string): Pause | undefined {
    return this.#pauses[conv];
  }

  /** Every paused conversation of the account. */
  list(): [string, Pause][] {
    return Object.entries(this.#pauses);
  }

  /** Pauses `conv`; false when it already was. */
  pause(conv: string, reason: string, now = Date.now()): boolean {
    if (this.#pauses[conv]) return false;
    this.#pauses[conv] = { since: now, reason };
    this.#save();
    return true;
  }

  /** Lifts the pause and forgets the evidence; false when `conv` was not paused. */
  resume(conv: string): boolean {
    if (!this.#pauses[conv]) return false;
    delete this.#pauses[conv];
    this.#exchanges.delete(conv);
    this.#save();
    return true;
  }

  #set(conv: string, c: Exchange): void {
    this.#exchanges.delete(conv);
    this.#exchanges.set(conv, c);
    // Bounded like the other per-conversation maps: the least recently active goes first.
    if (this.#exchanges.size > 1000) this.#exchanges.delete(this.#exchanges.keys().next().value!);
  }

  #save(): void {
    this.store.setMeta(metaKey(this.accountId), JSON.stringify(this.#pauses));
  }
}
