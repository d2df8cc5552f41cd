// The watch child: one `imsg rpc` per account subscribed to new messages from the journal's cursor. Supervised:
// restarted with jittered exponential backoff, health-checked by a watchdog when quiet, replaced when a message
// could not be journaled. Knows nothing of what a message means; it hands payloads to `onMessage`.
import type { ImessageAccount } from "./config.ts";
import { chatsList, messagesHistory, watchSubscribe } from "./imsg.ts";
import type { Logger } from "./log.ts";
import { ImsgPermissionError, RpcClient, type Notification, type RpcOptions } from "./rpc.ts";
import type { Store } from "./store.ts";

export interface WatchTuning {
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** A child that stayed up this long resets the backoff. */
  stableAfterMs: number;
  /** Health-check the watch child when it has been silent this long. */
  watchdogMs: number;
  /** imsg's watch debounce (lets is_from_me settle before a row is emitted). */
  debounceMs?: number;
}

export interface WatchOptions {
  /** The current account config (cliPath and dbPath are fixed for the process; the rest may change). */
  account: () => Pick<ImessageAccount, "accountId" | "cliPath" | "dbPath" | "probeTimeoutMs" | "includeAttachments" | "reactionNotifications">;
  store: Pick<Store, "getCursor" | "setCursor" | "setMeta">;
  tuning: WatchTuning;
  log: Logger;
  /** Takes one `message` payload; throwing means it could not be journaled, so the child is replaced. */
  onMessage: (raw: unknown) => void;
  /** Runs before subscribing until it has succeeded once (recovery of what a previous run left). */
  beforeFirstSubscribe?: () => Promise<void>;
  /** Starts an imsg rpc child; tests may hand in their own. */
  startClient?: (opts: RpcOptions) => RpcClient;
}

export class Watch {
  #client?: RpcClient;
  #subscription?: number;
  #stopping = false;
  #recovered = false;
  #poisoned = new WeakSet<RpcClient>();
  #wake?: () => void;
  #loop?: Promise<void>;
  #markReady!: () => void;
  /** Rows up to this ROWID were in imsg before the subscription: the catch-up backlog. */
  catchupBoundary = 0;
  subscribedAt?: number;
  lastEventAt?: number;
  /** Resolves at the first subscription. */
  readonly ready: Promise<void>;

  constructor(readonly opts: WatchOptions) {
    this.ready = new Promise((r) => (this.#markReady = r));
  }

  get #id(): string {
    return this.opts.account().accountId;
  }

  start(): void {
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    const { tuning } = this.opts;
    let delay = tuning.backoffInitialMs;
    while (!this.#stopping) {
      const started = Date.now();
      const { client, failure } = await this.#runChild();
      this.#subscription = undefined;
      this.subscribedAt = undefined;
      if (this.#stopping) break;
      if (Date.now() - started > tuning.stableAfterMs) delay = tuning.backoffInitialMs;
      const permission = failure instanceof ImsgPermissionError || client.permissionError;
      const wait = permission ? tuning.backoffMaxMs : Math.min(delay, tuning.backoffMaxMs) * (0.8 + Math.random() * 0.4);
      if (permission)
        this.opts.log.error(
          `imsg cannot read the Messages database: grant Full Disk Access to the process that runs imsg (and its parent: launchd/sshd/terminal), or fix dbPath. Retrying in ${Math.round(wait / 1000)}s.`,
        );
      else this.opts.log.warn(`watch child failed (${failure?.message ?? "exited"}); restarting in ${Math.round(wait)} ms`);
      delay = Math.min(delay * 2, tuning.backoffMaxMs);
      await new Promise<void>((r) => {
        const t = setTimeout(r, wait);
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  /** One child's life: start, recover (until that succeeded once), subscribe, watch until it ends. */
  async #runChild(): Promise<{ client: RpcClient; failure?: Error }> {
    const a = this.opts.account();
    const start = this.opts.startClient ?? ((o: RpcOptions) => RpcClient.start(o));
    const client = start({
      cliPath: a.cliPath,
      dbPath: a.dbPath,
      timeoutMs: a.probeTimeoutMs,
      tag: `watch:${a.accountId}`,
      onNotification: (n) => this.#onNotification(n, client),
    });
    this.#client = client;
    try {
      if (!this.#recovered) {
        await this.opts.beforeFirstSubscribe?.();
        this.#recovered = true;
      }
      await this.#subscribe(client);
      const watchdog = this.#startWatchdog(client);
      const info = await client.closed;
      clearInterval(watchdog);
      return { client, failure: info.error };
    } catch (e) {
      client.kill();
      await client.closed;
      return { client, failure: e as Error };
    }
  }

  /** Seeds the cursor on first run and learns where the catch-up backlog ends, then subscribes. */
  async #subscribe(client: RpcClient): Promise<void> {
    const { store } = this.opts;
    const a = this.opts.account();
    const newest = await newestRowid(client, a.probeTimeoutMs);
    let cursor = store.getCursor(this.#id);
    if (cursor === undefined) {
      // First run: start from "now". Recording it means messages that arrive while we are down are replayed later.
      cursor = newest;
      store.setCursor(this.#id, cursor);
    }
    this.catchupBoundary = Math.max(newest, cursor);
    // since_rowid 0 means "current max" to imsg, so an empty database is replayed from the start with -1.
    const since = cursor > 0 ? cursor : -1;
    this.#subscription = await watchSubscribe(
      client,
      {
        sinceRowid: since,
        attachments: a.includeAttachments,
        convertAttachments: a.includeAttachments,
        includeReactions: a.reactionNotifications !== "off",
        debounceMs: this.opts.tuning.debounceMs,
      },
      a.probeTimeoutMs,
    );
    this.subscribedAt = Date.now();
    store.setMeta(`subscribedAt:${this.#id}`, String(this.subscribedAt));
    this.opts.log.info(`subscribed (subscription ${this.#subscription}, since_rowid ${since}, backlog up to ${newest})`);
    this.#markReady();
  }

  /**
   * When the watch has been quiet a while, ask imsg for its newest row: no answer means a hung child, and a newest
   * row beyond our cursor on two checks in a row means a watch that went silent (a dead file watch). Either way
   * the child is replaced and the new one resubscribes from the cursor. Quiet alone is never a reason: iMessage
   * can be silent for hours.
   */
  #startWatchdog(client: RpcClient): ReturnType<typeof setInterval> {
    const { tuning, log } = this.opts;
    let lastCheck = Date.now();
    let behind = 0;
    return setInterval(
      () => {
        const quiet = Date.now() - Math.max(this.lastEventAt ?? 0, lastCheck);
        if (quiet < tuning.watchdogMs || client.inFlight > 0) return;
        lastCheck = Date.now();
        newestRowid(client, this.opts.account().probeTimeoutMs).then(
          (newest) => {
            behind = newest > (this.opts.store.getCursor(this.#id) ?? 0) ? behind + 1 : 0;
            if (behind < 2 || !client.alive) return;
            log.warn(`the watch is silent although imsg has newer rows (up to ${newest}); resubscribing from the cursor`);
            client.kill();
          },
          (e) => {
            if (!client.alive) return;
            log.warn(`watch child is not answering (${(e as Error).message}); replacing it`);
            client.kill();
          },
        );
      },
      Math.max(50, Math.min(tuning.watchdogMs, 5000)),
    );
  }

  #onNotification(n: Notification, client: RpcClient): void {
    // After a journal write failed, nothing more from this child may be journaled: a later row would move the
    // cursor past the lost one. The child is replaced and the new one resubscribes from the cursor.
    if (this.#poisoned.has(client)) return;
    if (n.method === "error") {
      const err = (n.params.error as { message?: string } | undefined)?.message ?? "unknown";
      this.opts.log.warn(`watch subscription ${String(n.params.subscription)} failed: ${err}; resubscribing from the cursor`);
      this.#client?.kill();
      return;
    }
    if (n.method !== "message") return;
    this.lastEventAt = Date.now();
    try {
      this.opts.onMessage(n.params.message);
    } catch (e) {
      this.#poisoned.add(client);
      this.opts.log.error(`cannot journal an inbound message (${(e as Error).message}); resubscribing from the last journaled row`);
      client.kill();
    }
  }

  /** Unsubscribes and stops the child; the supervisor loop ends. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    const w = this.#client;
    if (w?.alive) {
      if (this.#subscription !== undefined) await w.request("watch.unsubscribe", { subscription: this.#subscription }, { timeoutMs: 1000 }).catch(() => {});
      await w.stop();
    }
    await this.#loop;
  }
}

/**
 * The newest message ROWID imsg can see. There is no RPC for it and history is ordered by date, not ROWID
 * (backfilled rows are old-dated), so take the highest id among the recent rows of the most active chats.
 */
export async function newestRowid(client: RpcClient, timeoutMs: number): Promise<number> {
  const chats = await chatsList(client, 10, timeoutMs);
  let max = 0;
  for (const c of chats as { id?: unknown }[]) {
    if (typeof c.id !== "number") continue;
    for (const m of await messagesHistory(client, c.id, { limit: 20 }, timeoutMs)) max = Math.max(max, m.id);
  }
  return max;
}
