// The gateway: the state dir's lock, the store, pruning, and one account pipeline (account.ts) per enabled account.
import { AccountRuntime } from "./account.ts";
import type { Config } from "./config.ts";
import { resolveAccount } from "./config.ts";
import { acquireLock, type Lock } from "./lock.ts";
import { getLog } from "./log.ts";
import { Semaphore } from "./queues.ts";
import { startPruning } from "./retention.ts";
import { Store } from "./store.ts";
import { DEFAULT_TUNING, type GatewayTuning } from "./tuning.ts";

// Tunables live in tuning.ts; re-exported because commands and tests take them from the runtime.
export { DEFAULT_TUNING, type GatewayTuning };

export interface GatewayOptions {
  config: Config;
  stateDir: string;
  /** Account ids to run; empty → every enabled account. */
  accounts?: string[];
  tuning?: Partial<GatewayTuning>;
}

/** A running gateway: holds the lock and one runtime per account. */
export class Gateway {
  private constructor(
    readonly lock: Lock,
    readonly store: Store,
    readonly runtimes: AccountRuntime[],
  ) {}

  /** Takes the lock (LockedError when held), opens the store, starts every account. */
  static start(opts: GatewayOptions): Gateway {
    const tuning = { ...DEFAULT_TUNING, ...opts.tuning };
    const ids = opts.accounts?.length ? opts.accounts : opts.config.accountIds;
    const accounts = ids.map((id) => resolveAccount(opts.config, id)).filter((a) => opts.accounts?.length || a.enabled);
    if (!accounts.length) throw new Error("no enabled iMessage account to run (channels.imessage.enabled is false?)");
    if (!opts.config.agents.length) throw new Error("no agent configured: add agents.list with a command or openai backend");
    const lock = acquireLock(opts.stateDir);
    let store: Store;
    try {
      store = Store.open(opts.stateDir);
    } catch (e) {
      lock.release();
      throw e;
    }
    const turns = new Semaphore(tuning.maxConcurrentTurns);
    const runtimes = accounts.map((a) => new AccountRuntime(a, opts.config, store, opts.stateDir, tuning, turns));
    const gw = new Gateway(lock, store, runtimes);
    gw.#stopPruning = startPruning(store, opts.stateDir, opts.config.retentionDays);
    for (const r of runtimes) r.onConfig = (cfg) => runtimes.forEach((x) => x.applyConfig(cfg));
    lock.update({ accounts: accounts.map((a) => a.accountId) });
    for (const r of runtimes) {
      getLog("gateway").info(`starting account ${r.id} (${r.account.cliPath}${r.account.dbPath ? ` db=${r.account.dbPath}` : ""})`);
      r.start();
    }
    Promise.all(runtimes.map((r) => r.ready))
      .then(() => lock.update({ subscribedAt: Date.now() }))
      .catch((e) => getLog("gateway").warn(`cannot record the subscription in the lock file: ${(e as Error).message}`));
    return gw;
  }

  #stopPruning?: () => void;

  /** Resolves once every account is subscribed. */
  get ready(): Promise<void> {
    return Promise.all(this.runtimes.map((r) => r.ready)).then(() => {});
  }

  async stop(): Promise<void> {
    this.#stopPruning?.();
    await Promise.all(this.runtimes.map((r) => r.stop()));
    this.store.close();
    this.lock.release();
  }
}
