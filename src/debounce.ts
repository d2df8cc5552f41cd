// Inbound debounce: a person's short texts in a row ("hey" / "can you" / "book the table for 8") become one
// agent turn. Pure decisions (which window applies, whether a message may wait, how a burst's text is merged)
// plus a small timer wrapper that holds bursts per key. The journal, not this buffer, is the record: rows wait
// here still "new", so a crash loses nothing (they are replayed and form their burst again).

/** OpenClaw's caps on a merged burst. Media never merges (it flushes at once), so the attachment cap is moot. */
export const BURST_MAX_CHARS = 4000;
export const BURST_MAX_ATTACHMENTS = 20;

/** The `messages.inbound` section as written. */
export interface InboundDebounceConfig {
  debounceMs?: number;
  byChannel?: Record<string, number | undefined>;
}

/** The configured window for iMessage: per channel, else the global one (undefined: not configured). Pure. */
export function debounceWindow(cfg: InboundDebounceConfig | undefined): number | undefined {
  return cfg?.byChannel?.imessage ?? cfg?.debounceMs;
}

/** One burst per account, chat and sender. */
export function burstKey(accountId: string, chatId: number, sender: string): string {
  return `${accountId}\u0000${chatId}\u0000${sender}`;
}

/** What the decision needs to know about a message. */
export interface BurstCandidate {
  text: string;
  attachments: number;
  /** The message is a control command (/status, /reset, …). */
  command: boolean;
}

/** Only plain text waits for more; media and commands flush the burst and go at once. Pure. */
export function mayWait(windowMs: number, m: BurstCandidate): boolean {
  return windowMs > 0 && !m.command && m.attachments === 0 && m.text.trim() !== "";
}

/** True when `next` still fits into a burst holding `texts` (else the burst is flushed first). Pure. */
export function fits(texts: readonly string[], next: string): boolean {
  if (!texts.length) return true;
  return mergeTexts([...texts, next]).length <= BURST_MAX_CHARS;
}

/** The burst's text as the agent sees it: one line per message, oldest first, capped. Pure. */
export function mergeTexts(texts: readonly string[]): string {
  return texts.filter((t) => t !== "").join("\n");
}

/**
 * Holds bursts per key; each new item restarts the key's timer (a sliding window, as OpenClaw does). `flush`
 * receives the items oldest first; the newest anchors the reply.
 */
/** The timer calls the Debouncer makes (a benchmark replays a day of chat on a virtual clock). */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const REAL_TIMERS: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export class Debouncer<T> {
  #bursts = new Map<string, { items: T[]; texts: string[]; timer: unknown }>();

  constructor(
    readonly onFlush: (key: string, items: T[]) => void,
    readonly timers: Timers = REAL_TIMERS,
  ) {}

  /** Adds an item to its key's burst (flushing first when the merged text would pass the cap). */
  add(key: string, item: T, text: string, windowMs: number): void {
    let b = this.#bursts.get(key);
    if (b && !fits(b.texts, text)) {
      this.flush(key);
      b = undefined;
    }
    if (b) this.timers.clear(b.timer);
    else this.#bursts.set(key, b = { items: [], texts: [], timer: undefined });
    b.items.push(item);
    b.texts.push(text);
    b.timer = this.timers.set(() => this.flush(key), windowMs);
  }

  /**
   * Holds `item` when it may wait (true); otherwise flushes the key's burst, so the texts before a photo or a
   * command are answered first, and returns false: the caller dispatches the item itself.
   */
  offer(key: string, item: T, m: BurstCandidate, windowMs: number): boolean {
    if (mayWait(windowMs, m)) {
      this.add(key, item, m.text, windowMs);
      return true;
    }
    this.flush(key);
    return false;
  }

  /** Hands a key's burst over now (a media message or command arrived, or shutdown). */
  flush(key: string): void {
    const b = this.#bursts.get(key);
    if (!b) return;
    this.timers.clear(b.timer);
    this.#bursts.delete(key);
    this.onFlush(key, b.items);
  }

  flushAll(): void {
    for (const k of [...this.#bursts.keys()]) this.flush(k);
  }

  get size(): number {
    return this.#bursts.size;
  }
}
