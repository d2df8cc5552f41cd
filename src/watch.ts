// The watch child: one `imsg rpc` per account subscribed to new messages from the journal's cursor. Supervised:
// restarted with jittered exponential backoff, health-checked by a watchdog when quiet, replaced when a message
// could not be journaled. Knows nothing of what a message means; it hands payloads to `onMessage`.
import type { ImessageAccount } from "./config.ts";
import { chatsList, type ImsgMessage, messagesHistory, status, watchSubscribe } from "./imsg.ts";
import { messagesAfter } from "./imsg-after.ts";
import type { Logger } from "./log.ts";
import { classifyError, type DatabaseCause, ImsgPermissionError, type Notification, RpcClient, type RpcOptions } from "./rpc.ts";
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
  /** buffer_limit asked of imsg 0.14+; default: fits the catch-up (see bufferLimitFor). */
  bufferLimit?: number;
}

/** imsg 0.14+ admits 1–4096 rows per wake-up before it ends the stream with watch.overflow (its default: 256). */
export function bufferLimitFor(recoveryMaxRows: number): number {
  return Math.min(4096, Math.max(256, recoveryMaxRows + 64));
}

export interface WatchOptions {
  /** The current account config (cliPath and dbPath are fixed for the process; the rest may change). */
  account: () => Pick<
    ImessageAccount,
    "accountId" | "cliPath" | "dbPath" | "probeTimeoutMs" | "includeAttachments" | "reactionNotifications" | "recoveryMaxRows"
  >;
  store: Pick<Store, "getCursor" | "setCursor" | "resetCursor" | "setMeta">;
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
  /** Children that have messages.after (imsg 0.14+): exact newest row, buffer_limit. */
  #modern = new WeakSet<RpcClient>();
  /** Notifications that arrived while a watch.subscribe was unanswered (their subscription id is not known yet). */
  #early: { n: Notification; client: RpcClient }[] = [];
  #subscribing = false;
  /** The database-unavailable cause last logged at error level (repeats of the same cause go to debug). */
  #dbCause?: DatabaseCause;
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
      // imsg ≤ 0.13 fails the whole child without the database; 0.14+ answers -32002 per request and reopens the
      // file by itself, so the ordinary backoff brings the watch back soon after access is granted.
      const legacy = failure instanceof ImsgPermissionError || client.permissionError !== undefined;
      const why = classifyError(client.permissionError ?? failure);
      const wait = legacy ? tuning.backoffMaxMs : Math.min(delay, tuning.backoffMaxMs) * (0.8 + Math.random() * 0.4);
      // ≤ 0.13's banner cannot tell a wrong path from missing access; 0.14+ says which.
      if (why?.kind === "database_unavailable") this.#logDatabase(legacy ? "unknown" : why.cause, why.detail, wait);
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

  #logDatabase(cause: DatabaseCause, detail: string, waitMs: number): void {
    const path = this.opts.account().dbPath ?? "~/Library/Messages/chat.db";
    const hint = cause === "missing"
      ? `there is no chat.db at ${path}: fix channels.imessage.dbPath`
      : cause === "permission"
      ? "grant Full Disk Access to the process that runs imsg (and its parent: launchd/sshd/terminal)"
      : "grant Full Disk Access to the process that runs imsg, or fix channels.imessage.dbPath";
    const text = `imsg cannot read the Messages database (${detail}): ${hint}. Retrying in ${Math.round(waitMs / 1000)}s.`;
    if (this.#dbCause === cause) this.opts.log.debug(text);
    else this.opts.log.error(text);
    this.#dbCause = cause;
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
    // status answers on 0.14+ even without the database; on 0.9 it is undefined (method not found).
    const st = await status(client, a.probeTimeoutMs);
    if (st?.supportedMethods.includes("messages.after")) this.#modern.add(client);
    const newest = await newestRowid(client, a.probeTimeoutMs, this.#modern.has(client));
    let cursor = store.getCursor(this.#id);
    if (cursor === undefined) {
      // First run: start from "now". Recording it means messages that arrive while we are down are replayed later.
      cursor = newest;
      store.setCursor(this.#id, cursor);
    } else if (cursorBeyond(cursor, newest)) {
      // ROWIDs belong to one database instance: ours is gone. Its rows are not replayed (no flood); rows that do
      // come later still pass the stale fences.
      this.opts.log.warn(
        `the cursor (row ${cursor}) is beyond imsg's newest row (${newest}): this is a new Messages database (restored, new Mac, iCloud re-download or a changed dbPath); continuing from its newest row`,
      );
      store.resetCursor(this.#id, newest);
      store.setMeta(`databaseReplacedAt:${this.#id}`, String(Date.now()));
      cursor = newest;
    }
    this.catchupBoundary = Math.max(newest, cursor);
    await this.#subscribeFrom(client, cursor, newest);
    this.#dbCause = undefined;
    this.#markReady();
  }

  async #subscribeFrom(client: RpcClient, cursor: number, newest: number): Promise<void> {
    const a = this.opts.account();
    // since_rowid 0 means "current max" to imsg, so an empty database is replayed from the start with -1.
    const since = cursor > 0 ? cursor : -1;
    // Only 0.14+ knows buffer_limit (0.9 would ignore it, but a strict build would refuse it).
    const bufferLimit = this.#modern.has(client) ? (this.opts.tuning.bufferLimit ?? bufferLimitFor(a.recoveryMaxRows)) : undefined;
    this.#subscribing = true;
    try {
      this.#subscription = await watchSubscribe(
        client,
        {
          sinceRowid: since,
          attachments: a.includeAttachments,
          convertAttachments: a.includeAttachments,
          includeReactions: a.reactionNotifications !== "off",
          debounceMs: this.opts.tuning.debounceMs,
          bufferLimit,
        },
        a.probeTimeoutMs,
      );
    } catch (e) {
      this.#early = [];
      throw e;
    } finally {
      this.#subscribing = false;
    }
    this.subscribedAt = Date.now();
    this.opts.store.setMeta(`subscribedAt:${this.#id}`, String(this.subscribedAt));
    this.opts.log.info(
      `subscribed (subscription ${this.#subscription}, since_rowid ${since}, backlog up to ${newest}${bufferLimit ? `, buffer_limit ${bufferLimit}` : ""})`,
    );
    for (const e of this.#early.splice(0)) if (e.client === client) this.#onNotification(e.n, client);
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
        const exact = this.#modern.has(client);
        newestRowid(client, this.opts.account().probeTimeoutMs, exact).then(
          (newest) => {
            const cursor = this.opts.store.getCursor(this.#id) ?? 0;
            // 0.14+ serves reads from a replaced chat.db while the subscription stays on the old file. Only an
            // exact newest row can say so (0.9 keeps reading the file it opened until the child restarts).
            if (exact && cursorBeyond(cursor, newest) && client.alive) {
              log.warn(`imsg's newest row (${newest}) is below the cursor (${cursor}): the Messages database was replaced; resubscribing`);
              client.kill();
              return;
            }
            behind = newest > cursor ? behind + 1 : 0;
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
    if (this.#poisoned.has(client) || client !== this.#client) return;
    const sub = n.params.subscription;
    if (this.#subscription === undefined) {
      // watch.subscribe not answered yet: its id is unknown, so hold these until it is (bounded).
      if (this.#subscribing && this.#early.length < 10_000) this.#early.push({ n, client });
      else this.opts.log.debug(`ignoring ${n.method} notification: no subscription held`);
      return;
    }
    // Someone else's subscription (or a stray line on the stream): never ours to act on.
    if (sub !== undefined && sub !== this.#subscription) {
      this.opts.log.debug(`ignoring ${n.method} notification for subscription ${JSON.stringify(sub)?.slice(0, 40)} (ours is ${this.#subscription})`);
      return;
    }
    if (n.method === "error") {
      const err = (n.params.error as { message?: string } | undefined)?.message ?? "unknown";
      this.opts.log.warn(`watch subscription ${String(sub)} failed: ${err}; resubscribing from the cursor`);
      client.kill();
      return;
    }
    if (n.method === "watch.overflow") return this.#overflowed(n, client);
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

  /**
   * imsg 0.14+ ended the stream because a wake-up found more rows than buffer_limit: the child is healthy, so
   * subscribe again on it at once from where imsg stopped (every row up to it was handed on, in order).
   */
  #overflowed(n: Notification, client: RpcClient): void {
    const resume = n.params.resume_after_rowid;
    const cursor = this.opts.store.getCursor(this.#id) ?? 0;
    const from = typeof resume === "number" && Number.isInteger(resume) && resume >= 0 ? resume : cursor;
    this.#subscription = undefined;
    this.opts.log.info(`watch buffer overflowed (${String(n.params.reason ?? "terminal")}); resubscribing from row ${from}`);
    this.#subscribeFrom(client, from, this.catchupBoundary).catch((e) => {
      if (!client.alive) return;
      this.opts.log.warn(`resubscribing after an overflow failed (${(e as Error).message}); replacing the watch child`);
      client.kill();
    });
  }

  /**
   * Reads row `rowid` again as imsg sees it now (a row emitted before it was joined to its chat); undefined when
   * it is not found. 0.14+ has messages.after; 0.9 only history, so the recent rows of the most active chats.
   */
  async reread(rowid: number): Promise<ImsgMessage | undefined> {
    const client = this.#client;
    if (!client?.alive) return undefined;
    const a = this.opts.account();
    const opts = { attachments: a.includeAttachments };
    if (this.#modern.has(client)) {
      const r = await messagesAfter(client, { sinceRowid: Math.max(0, rowid - 1), limit: 1, ...opts }, a.probeTimeoutMs);
      return r?.messages.find((m) => m.id === rowid);
    }
    for (const c of (await chatsList(client, 20, a.probeTimeoutMs)) as { id?: unknown }[]) {
      if (typeof c.id !== "number") continue;
      const hit = (await messagesHistory(client, c.id, { limit: 50, ...opts }, a.probeTimeoutMs)).find((m) => m.id === rowid);
      if (hit) return hit;
    }
    return undefined;
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

/** A cursor past the newest row belongs to another database instance (ROWIDs are per chat.db). */
export function cursorBeyond(cursor: number, newest: number): boolean {
  return cursor > newest;
}

/** Pages of messages.after read to make the sampled newest row exact (rows beyond are left to the watch). */
const EXACT_PAGES = 10;

/**
 * The newest message ROWID imsg can see. There is no RPC for it and history is ordered by date, not ROWID
 * (backfilled rows are old-dated), so take the highest id among the recent rows of the most active chats; with
 * `exact` (imsg 0.14+) messages.after then walks forward from there in ROWID order to the real newest row.
 */
export async function newestRowid(client: RpcClient, timeoutMs: number, exact = false): Promise<number> {
  const chats = await chatsList(client, 10, timeoutMs);
  let max = 0;
  for (const c of chats as { id?: unknown }[]) {
    if (typeof c.id !== "number") continue;
    for (const m of await messagesHistory(client, c.id, { limit: 20 }, timeoutMs)) max = Math.max(max, m.id);
  }
  for (let page = 0; exact && page < EXACT_PAGES; page++) {
    const r = await messagesAfter(client, { sinceRowid: max, limit: 500, includeReactions: true }, timeoutMs);
    if (!r) break;
    max = Math.max(max, r.nextRowid, ...r.messages.map((m) => m.id));
    if (!r.hasMore) break;
  }
  return max;
}
