// The outbox against the imsg simulator (a real send child) and a real Store file.
import { describe, expect, test } from "bun:test";
import { SendClient } from "../src/deliver.ts";
import { getLog } from "../src/log.ts";
import { DEFAULT_RETRY, Outbox, type OutboxOptions, retryDelay } from "../src/outbox.ts";
import { RateGuard } from "../src/guard.ts";
import { accountFor, inbound, journal, journalResources } from "./helpers/journal.ts";
import { waitFor } from "./helpers/sim.ts";

const res = journalResources();

describe("retryDelay: 5 s doubling to 5 min, then every 5 min", () => {
  const rows: [number, number][] = [
    [1, 5000],
    [2, 10_000],
    [3, 20_000],
    [7, 300_000],
    [30, 300_000],
  ];
  test.each(rows)("attempt %d → %p", (attempt, want) => expect(retryDelay(attempt, DEFAULT_RETRY)).toBe(want));
  test("a custom policy", () => expect([1, 2, 3, 4].map((a) => retryDelay(a, { baseMs: 10, maxMs: 15 }))).toEqual([10, 15, 15, 15]));
});

let clockOffset = 0;
function outbox(cliPath: string, imessage: Record<string, unknown> = {}, over: Partial<OutboxOptions> = {}) {
  clockOffset = 0;
  const { store, stateDir } = res.store({ now: () => Date.now() + clockOffset });
  const account = accountFor(cliPath, imessage);
  const sender = new SendClient(account);
  res.track(() => sender.stop());
  const tasks: Promise<void>[] = [];
  const box = new Outbox({
    account: () => account,
    store,
    sender,
    stateDir,
    settleMs: 0,
    log: getLog("test"),
    guard: new RateGuard(store, account.accountId),
    track: (p) => void tasks.push(p),
    ...over,
  });
  res.track(() => box.stop());
  const settled = async () => {
    while (tasks.length) await Promise.allSettled(tasks.splice(0));
  };
  return { box, store, settled };
}

describe("Outbox", () => {
  test("consecutive replies to one chat go out whole and in order; each row is done", async () => {
    const sim = res.sim();
    const chat = sim.db.inject({ from: "+15550001111", text: "hi" });
    const { box, store, settled } = outbox(sim.cliPath, { textChunkLimit: 20, chunkMode: "length" });
    const a = inbound({ id: 1, guid: "A", chatId: chat.chatId });
    const b = inbound({ id: 2, guid: "B", chatId: chat.chatId });
    const ka = journal(store, a);
    const kb = journal(store, b);
    box.enqueue(ka, a, { text: "first reply, long enough for two parts", media: [] }, false);
    box.enqueue(kb, b, { text: "second", media: [] }, false);
    await settled();
    const texts = sim.db.sent().map((s) => s.text);
    expect(texts.at(-1)).toBe("second");
    expect(texts.length).toBeGreaterThanOrEqual(3);
    expect(texts.slice(0, -1).join(" ")).toBe("first reply, long enough for two parts");
    expect([store.getInbound("default", ka)?.state, store.getInbound("default", kb)?.state]).toEqual(["done", "done"]);
  });

  test("a gateway reply (system) is sent whole and unprefixed; an agent reply gets the prefix", async () => {
    const sim = res.sim();
    const { box, store, settled } = outbox(sim.cliPath, { responsePrefix: "[bot]" });
    const a = inbound({ id: 1, guid: "A" });
    const b = inbound({ id: 2, guid: "B" });
    box.enqueue(journal(store, a), a, { text: "Session cleared.", media: [], system: true }, false);
    box.enqueue(journal(store, b), b, { text: "hello", media: [] }, false);
    await settled();
    expect(sim.db.sent().map((s) => s.text)).toEqual(["Session cleared.", "[bot] hello"]);
  });

  test("an empty reply closes the row without sending", async () => {
    const sim = res.sim();
    const { box, store, settled } = outbox(sim.cliPath);
    const a = inbound();
    const k = journal(store, a);
    box.enqueue(k, a, { text: "  ", media: [] }, false);
    await settled();
    expect(store.getInbound("default", k)).toMatchObject({ state: "done", reason: "empty reply" });
    expect(sim.db.sent()).toHaveLength(0);
  });

  test("imsg refusing the send fails the row with imsg's error", async () => {
    const sim = res.sim();
    const { box, store, settled } = outbox(sim.cliPath);
    const g = inbound({ isGroup: true, chatId: 4242 });
    const k = journal(store, g);
    box.enqueue(k, g, { text: "to a chat imsg does not know", media: [] }, true);
    await settled();
    const row = store.getInbound("default", k);
    expect(row?.state).toBe("failed");
    expect(row?.reason).toBeTruthy();
    expect(store.outboundFor("default", k).map((o) => o.state)).toEqual(["failed"]);
  });

  test("while imsg cannot start, the reply is retried with backoff, given up only once older than recoveryMaxAgeMinutes", async () => {
    const { box, store } = outbox("/nonexistent/imsg", { recoveryMaxAgeMinutes: 1 }, { retry: { baseMs: 5, maxMs: 10 } });
    const a = inbound();
    const k = journal(store, a);
    store.setInbound("default", k, { state: "replied", reply: { text: "hello", media: [] } });
    box.enqueue(k, a, { text: "hello", media: [] }, false);
    // Still retrying (not failed) while the reply is young.
    await waitFor(() => store.outboundFor("default", k).length === 1, 5000, "a first attempt");
    await new Promise((r) => setTimeout(r, 100));
    expect(store.getInbound("default", k)?.state).toBe("replied");
    // Aged past the limit: the next retry gives it up; its part stays pending (never sent).
    clockOffset = 120_000;
    const row = await waitFor(() => (store.getInbound("default", k)?.state === "failed" ? store.getInbound("default", k) : undefined), 10_000, "give-up");
    expect(row.reason).toContain("reply not delivered within 1 min");
    expect(store.outboundFor("default", k).map((o) => o.state)).toEqual(["pending"]);
  });

  test("after stop a reply waiting for a retry is neither retried nor given up: it stays replied for the next start", async () => {
    const { box, store, settled } = outbox("/nonexistent/imsg", {}, { retry: { baseMs: 60_000, maxMs: 60_000 } });
    const a = inbound();
    const k = journal(store, a);
    store.setInbound("default", k, { state: "replied", reply: { text: "hello", media: [] } });
    box.enqueue(k, a, { text: "hello", media: [] }, false);
    await waitFor(() => store.outboundFor("default", k).length === 1, 5000, "a first attempt");
    box.stop();
    await settled();
    expect(store.getInbound("default", k)?.state).toBe("replied");
  });
});
