// The watch supervisor against the simulator, with the RPC client factory handed in so the test sees every child.
import { describe, expect, test } from "bun:test";
import { getLog } from "../src/log.ts";
import { RpcClient, type RpcOptions } from "../src/rpc.ts";
import { Watch } from "../src/watch.ts";
import { accountFor, journalResources } from "./helpers/journal.ts";
import { waitFor } from "./helpers/sim.ts";

const res = journalResources();
const TUNING = { backoffInitialMs: 20, backoffMaxMs: 200, stableAfterMs: 60_000, watchdogMs: 60_000, debounceMs: 10 };

function watch(onMessage: (raw: unknown) => void = () => {}) {
  const sim = res.sim({ env: { IMSG_SIM_POLL_MS: "50" } });
  const { store } = res.store();
  const account = accountFor(sim.cliPath);
  const children: RpcClient[] = [];
  let recoveries = 0;
  const w = new Watch({
    account: () => account,
    store,
    tuning: TUNING,
    log: getLog("test"),
    onMessage,
    beforeFirstSubscribe: async () => void recoveries++,
    startClient: (o: RpcOptions) => {
      const c = RpcClient.start(o);
      children.push(c);
      return c;
    },
  });
  res.track(() => w.stop());
  return { sim, store, w, children, recoveries: () => recoveries };
}

describe("Watch", () => {
  test("first run seeds the cursor at imsg's newest row and delivers only rows after it", async () => {
    const seen: unknown[] = [];
    const { sim, store, w } = watch((raw) => seen.push(raw));
    const old = sim.db.inject({ from: "+15550001111", text: "before" });
    w.start();
    await w.ready;
    expect(store.getCursor("default")).toBe(old.rowid);
    expect(w.catchupBoundary).toBe(old.rowid);
    const fresh = sim.db.inject({ from: "+15550001111", text: "after" });
    await waitFor(() => seen.length >= 1, 10_000, "a notification");
    expect((seen[0] as { id: number }).id).toBe(fresh.rowid);
  });

  test("a dead child is replaced and resubscribes; recovery runs once", async () => {
    const { w, children, recoveries } = watch();
    w.start();
    await w.ready;
    children[0]!.kill();
    await waitFor(() => children.length >= 2 && w.subscribedAt !== undefined, 10_000, "a second subscription");
    expect(recoveries()).toBe(1);
  });

  test("a payload that cannot be journaled poisons its child: it is replaced, nothing more from it is handed on", async () => {
    let calls = 0;
    const { sim, w, children } = watch(() => {
      calls++;
      throw new Error("disk full");
    });
    w.start();
    await w.ready;
    sim.db.inject({ from: "+15550001111", text: "one" });
    await waitFor(() => children.length >= 2, 10_000, "a replacement child");
    expect(children[0]!.alive).toBe(false);
    expect(calls).toBeGreaterThanOrEqual(1);
  });
});
