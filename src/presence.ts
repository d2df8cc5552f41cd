// Presence: the typing indicator while an agent turn runs, and read receipts for accepted messages. Best effort:
// nothing here delays or fails a reply. Both go to an `imsg rpc` child of their own, never the reply child: on
// imsg 0.15 every typing/read call is a mutation in that child's one FIFO lane, so a slow or stuck presence call
// there would hold replies back, and a still-in-flight outcome poisons the lane (-32004) until the child is
// replaced. Here a failure only replaces the presence child, whose next start re-reads the capabilities.
import { describeActions, type ImsgInfo, imsgInfo, UNDISCOVERABLE } from "./capabilities.ts";
import type { ImessageAccount } from "./config.ts";
import { type ImsgMessage, initialize, markRead, setTyping } from "./imsg.ts";
import type { Logger } from "./log.ts";
import { classifyError, RpcClient } from "./rpc.ts";
import { normalizeHandle } from "./targets.ts";

export interface PresenceTuning {
  /** Re-sent this often while a turn runs: imsg's indicator lapses after a while without a refresh. */
  typingRefreshMs: number;
  /** Typing is never shown longer than this for one turn. */
  typingMaxMs: number;
  /** A Mac with nothing usable is asked again after this long (the bridge may have been started since). */
  recheckMs: number;
  /** Per-call timeout of typing/read. */
  callTimeoutMs: number;
}

export const DEFAULT_PRESENCE_TUNING: PresenceTuning = { typingRefreshMs: 8_000, typingMaxMs: 10 * 60_000, recheckMs: 10 * 60_000, callTimeoutMs: 5_000 };

/** Ends one turn's typing; `stopAfter(p)` ends it once `p` (the reply's delivery) settles. */
export interface TypingHandle {
  stop(): void;
  stopAfter(p?: Promise<unknown>): void;
}

const NOOP: TypingHandle = { stop() {}, stopAfter() {} };

/** The chat a typing/read call addresses: its GUID (needs no database on 0.15), else its id, else the DM handle. Pure. */
export function presenceTarget(msg: Pick<ImsgMessage, "chatGuid" | "chatId" | "sender">, isGroup: boolean): Record<string, string | number> | undefined {
  if (msg.chatGuid) return { chat_guid: msg.chatGuid };
  if (msg.chatId > 0) return { chat_id: msg.chatId };
  return isGroup || !msg.sender ? undefined : { to: normalizeHandle(msg.sender) };
}

/** One presence child and what it said it can do (asked once per child). */
interface Generation {
  client?: RpcClient;
  info?: ImsgInfo;
  note?: string;
  at: number;
}

interface Typing {
  count: number;
  target: Record<string, string | number>;
  started: number;
  timer?: ReturnType<typeof setTimeout>;
}

export class Presence {
  readonly #tuning: PresenceTuning;
  #current?: Generation;
  #pending?: Promise<Generation>;
  #typing = new Map<string, Typing>();
  #inflight = new Set<Promise<void>>();
  #stopped = false;
  #lastNote?: string;

  constructor(
    private readonly opts: { account: () => ImessageAccount; log: Logger; tuning?: Partial<PresenceTuning> },
  ) {
    this.#tuning = { ...DEFAULT_PRESENCE_TUNING, ...opts.tuning };
  }

  /** Asks imsg what it can do now, so the first turn does not wait for it. */
  start(): void {
    void this.#ready();
  }

  /** What imsg last said it can do (undefined until asked, or when it cannot say). */
  get info(): ImsgInfo | undefined {
    return this.#current?.info;
  }

  /** The `/status` line: which actions this Mac supports. */
  describe(): string {
    return describeActions(this.#current?.info, this.#current?.note);
  }

  /** Shows typing in the message's chat until the handle is stopped (or typingMaxMs passes). */
  typing(msg: ImsgMessage, isGroup: boolean): TypingHandle {
    const target = presenceTarget(msg, isGroup);
    if (!target || this.#stopped) return NOOP;
    const key = JSON.stringify(target);
    let t = this.#typing.get(key);
    if (t) t.count++;
    else {
      // Turns in one chat share one indicator: it goes off when the last of them ends.
      const fresh: Typing = { count: 1, target, started: Date.now() };
      this.#typing.set(key, t = fresh);
      this.#call("typing", (c) => setTyping(c, target, true, this.#tuning.callTimeoutMs));
      this.#schedule(key, fresh);
    }
    const mine = t;
    let done = false;
    const stop = () => {
      if (done) return;
      done = true;
      if (--mine.count > 0 || this.#typing.get(key) !== mine) return;
      clearTimeout(mine.timer);
      this.#typing.delete(key);
      this.#call("typing", (c) => setTyping(c, target, false, this.#tuning.callTimeoutMs));
    };
    return { stop, stopAfter: (p) => (p ? void p.then(stop, stop) : stop()) };
  }

  #schedule(key: string, t: Typing): void {
    const left = t.started + this.#tuning.typingMaxMs - Date.now();
    t.timer = setTimeout(() => {
      if (this.#typing.get(key) !== t) return;
      if (Date.now() - t.started >= this.#tuning.typingMaxMs) {
        // The cap: off now; the turn's own stop later finds nothing left to do.
        this.#typing.delete(key);
        this.#call("typing", (c) => setTyping(c, t.target, false, this.#tuning.callTimeoutMs));
        return;
      }
      this.#call("typing", (c) => setTyping(c, t.target, true, this.#tuning.callTimeoutMs));
      this.#schedule(key, t);
    }, Math.max(0, Math.min(this.#tuning.typingRefreshMs, left)));
    t.timer.unref?.();
  }

  /** Marks the message's chat read (sendReadReceipts). Call only for a message accepted for a turn. */
  read(msg: ImsgMessage, isGroup: boolean): void {
    if (!this.opts.account().sendReadReceipts || this.#stopped) return;
    const target = presenceTarget(msg, isGroup);
    if (target) this.#call("read", (c) => markRead(c, target, this.#tuning.callTimeoutMs));
  }

  /** Runs one call when the current child says the method is usable; a failure retires the child. */
  #call(method: "typing" | "read", fn: (c: RpcClient) => Promise<void>): void {
    const p = this.#ready().then(async (g) => {
      if (!g.client || !g.info?.advanced[method]) return;
      try {
        await fn(g.client);
      } catch (e) {
        const kind = classifyError(e)?.kind ?? "no answer";
        this.opts.log.debug(`${method} failed (${kind}; the reply is not affected): ${(e as Error).message}`);
        // Only a refusal of these very params leaves the child usable; anything else (timeout, dead child, a
        // blocked lane, a bridge gone) gets a fresh child, which also asks for the capabilities again.
        if (kind !== "invalid_params") this.#retire(g);
      }
    });
    const q = p.finally(() => this.#inflight.delete(q));
    this.#inflight.add(q);
  }

  #retire(g: Generation): void {
    g.client?.kill();
    if (this.#current === g) this.#current = undefined;
  }

  /** The current child with its capabilities; a new one when it died or a "nothing usable" answer is old. */
  #ready(): Promise<Generation> {
    const g = this.#current;
    if (!g && this.#pending) return this.#pending;
    if (g && (g.client ? g.client.alive : Date.now() - g.at < this.#tuning.recheckMs)) return Promise.resolve(g);
    this.#current = undefined;
    const p = this.#detect().then((next) => {
      if (this.#pending === p) this.#current = next;
      return next;
    });
    this.#pending = p;
    return p;
  }

  async #detect(): Promise<Generation> {
    const a = this.opts.account();
    if (this.#stopped) return { at: Date.now(), note: "stopped" };
    const client = RpcClient.start({ cliPath: a.cliPath, dbPath: a.dbPath, timeoutMs: a.probeTimeoutMs, tag: `presence:${a.accountId}` });
    let info: ImsgInfo | undefined;
    let note: string | undefined;
    try {
      const st = await initialize(client, 1, a.probeTimeoutMs);
      if (st) info = imsgInfo(st);
      else note = UNDISCOVERABLE;
    } catch (e) {
      note = `imsg could not be asked: ${(e as Error).message}`;
    }
    const usable = !!info && (info.advanced.typing || info.advanced.read);
    this.opts.log.debug(`capabilities: ${describeActions(info, note)}`);
    this.#report(info, note);
    if (usable && !this.#stopped) return { client, info, at: Date.now() };
    // Nothing to send: no idle child is kept; asked again after recheckMs.
    void client.stop();
    return { info, note, at: Date.now() };
  }

  /** Says once (per change) why typing and read receipts are off. */
  #report(info: ImsgInfo | undefined, note: string | undefined): void {
    const off = info
      ? (info.advanced.typing ? undefined : `typing and read receipts are off: ${info.why.typing}`)
      : `typing and read receipts are off: ${note}`;
    if (off && off !== this.#lastNote) this.opts.log.info(off);
    else if (!off && this.#lastNote) this.opts.log.info("typing and read receipts are on (IMCore bridge ready)");
    this.#lastNote = off;
  }

  /** Lets calls already made finish (a typing "off" included), then closes the child. */
  async stop(): Promise<void> {
    for (const t of this.#typing.values()) clearTimeout(t.timer);
    this.#typing.clear();
    while (this.#inflight.size) await Promise.allSettled([...this.#inflight]);
    this.#stopped = true;
    const g = this.#current ?? (await this.#pending);
    await g?.client?.stop();
  }
}
