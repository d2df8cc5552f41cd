// What each imsg send outcome does to a part, against the simulator (real imsg children) and a real Store: typed
// 0.15 outcomes, a poisoned lane, busy, an unreadable database, a skewed Mac clock, stale bridge GUIDs, the chat a
// send went to, and a child crashing every 3rd request. Expectations differ where 0.9 behaves differently.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { deliver, SendClient, sendOnce } from "../src/deliver.ts";
import { getLog } from "../src/log.ts";
import { Outbox } from "../src/outbox.ts";
import { RpcClient } from "../src/rpc.ts";
import { RateGuard } from "../src/guard.ts";
import { parseTarget } from "../src/targets.ts";
import { accountFor, inbound, journal, journalResources } from "./helpers/journal.ts";
import { waitFor } from "./helpers/sim.ts";

const res = journalResources();

function setup(simEnv: Record<string, string> = {}, imessage: Record<string, unknown> = {}) {
  const sim = res.sim({ env: simEnv });
  const { store, stateDir } = res.store();
  const account = accountFor(sim.cliPath, imessage);
  const sender = new SendClient(account);
  res.track(() => sender.stop());
  const modern = sim.version !== "0.9.0";
  return { sim, store, stateDir, account, sender, modern };
}

const parts = (...texts: string[]) => texts.map((text) => ({ text }));
const states = (store: ReturnType<typeof setup>["store"], key: string) => store.outboundFor("default", key).map((o) => o.state);

describe("typed send outcomes", () => {
  test("not_started is sent again at once: delivered exactly once (0.9: a plain error, failed)", async () => {
    const { sim, store, account, sender, modern } = setup();
    const chat = sim.db.inject({ from: "+15550001111", text: "hi" });
    sim.db.queueFault("send", "not_started");
    const r = await deliver(store, sender, {
      account,
      target: parseTarget("+15550001111"),
      chatId: chat.chatId,
      afterRowid: chat.rowid,
      inboundKey: "IN-1",
      parts: parts("once"),
    }, { settleMs: 300 });
    expect(sim.db.sent().map((s) => s.text)).toEqual(modern ? ["once"] : []);
    expect(states(store, "IN-1")).toEqual([modern ? "sent" : "failed"]);
    expect(r.error === undefined).toBe(modern);
  });

  const unknowns: [string, boolean][] = [
    ["may_have_completed that landed is found in history, not sent again", true],
    ["may_have_completed that did not land is sent again once history shows it absent", false],
  ];
  test.each(unknowns)("%s", async (_n, lands) => {
    const { sim, store, account, sender, modern } = setup();
    const chat = sim.db.inject({ from: "+15550001111", text: "hi" });
    sim.db.queueFault("send", "may_have_completed", { lands });
    await deliver(store, sender, {
      account,
      target: parseTarget("+15550001111"),
      chatId: chat.chatId,
      afterRowid: chat.rowid,
      inboundKey: "IN-1",
      parts: parts("maybe"),
    }, { settleMs: 500 });
    if (modern) {
      expect(sim.db.sent().map((s) => s.text)).toEqual(["maybe"]);
      expect(store.outboundFor("default", "IN-1")[0]).toMatchObject({ state: "sent", messageGuid: sim.db.sent()[0]!.guid });
    } else {
      // 0.9 reports a plain AppleScript error: imsg said it failed.
      expect(states(store, "IN-1")).toEqual(["failed"]);
      if (lands) await waitFor(() => sim.db.sent().length === 1, 5000, "the late row");
      expect(sim.db.sent()).toHaveLength(lands ? 1 : 0);
    }
  });

  test("still_in_flight poisons the lane: the part is looked up (sent once), later sends go to a fresh child", async () => {
    const { sim, store, account, sender, modern } = setup();
    const chat = sim.db.inject({ from: "+15550001111", text: "hi" });
    sim.db.queueFault("send", "still_in_flight");
    const job = (key: string, text: string) => ({
      account,
      target: parseTarget("+15550001111"),
      chatId: chat.chatId,
      afterRowid: chat.rowid,
      inboundKey: key,
      parts: parts(text),
    });
    const firstPid = sender.pid();
    await deliver(store, sender, job("IN-1", "in flight"), { settleMs: 500 });
    for (let i = 2; i <= 4; i++) expect((await deliver(store, sender, job(`IN-${i}`, `next ${i}`), { settleMs: 500 })).error).toBeUndefined();
    expect(sim.db.sent().map((s) => s.text)).toEqual(["in flight", "next 2", "next 3", "next 4"]);
    expect(states(store, "IN-1")).toEqual([modern ? "sent" : "failed"]);
    expect(sender.pid() !== firstPid).toBe(modern);
  });

  test("-32002 database unavailable: the part stays pending and goes out once the database is readable", async () => {
    const { sim, store, account, sender } = setup();
    const chat = sim.db.inject({ from: "+15550001111", text: "hi" });
    sim.db.setUnreadable(true);
    const job = { account, target: parseTarget("+15550001111"), chatId: chat.chatId, afterRowid: chat.rowid, inboundKey: "IN-1", parts: parts("later") };
    const first = await deliver(store, sender, job, { settleMs: 300 });
    expect(first.retryable).toBe(true);
    expect(states(store, "IN-1")).toEqual(["pending"]);
    sim.db.setUnreadable(false);
    const second = await deliver(store, sender, job, { settleMs: 300 });
    expect(second.error).toBeUndefined();
    expect(sim.db.sent().map((s) => s.text)).toEqual(["later"]);
  });

  test("requests per child are bounded under imsg's busy limit: 100 at once, none answered -32000", async () => {
    const sim = res.sim({ env: { IMSG_SIM_BUSY_LIMIT: "40" } });
    const chat = sim.db.inject({ from: "+15550001111", text: "hi" });
    const client = RpcClient.start({ cliPath: sim.cliPath, tag: "test" });
    res.track(() => client.stop());
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => client.request("messages.history", { chat_id: chat.chatId, limit: 5 })));
    expect(results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
  });

  test("server busy is waited out: 30 deliveries at once on one child with a busy limit of 2, each sent once", async () => {
    const { sim, store, account, sender } = setup({ IMSG_SIM_BUSY_LIMIT: "2" });
    const jobs = Array.from({ length: 30 }, (_, i) => {
      const from = `+1555000${String(2000 + i)}`;
      const c = sim.db.inject({ from, text: "hi" });
      return deliver(store, sender, {
        account,
        target: parseTarget(from),
        chatId: c.chatId,
        afterRowid: c.rowid,
        inboundKey: `IN-${i}`,
        parts: parts(`reply ${i}`),
      }, { settleMs: 300 });
    });
    const rs = await Promise.all(jobs);
    expect(rs.filter((r) => r.error).map((r) => r.error)).toEqual([]);
    expect(sim.db.sent().map((s) => s.text).sort()).toEqual(Array.from({ length: 30 }, (_, i) => `reply ${i}`).sort());
  });
});

describe("the lookup window is the Mac's, and covers imsg's receipt wait", () => {
  // imsg 0.15 waits IMSG_SIM_RECEIPT_WAIT_MS for the row, then answers may_have_completed; the row lands later.
  const slow = { IMSG_SIM_RECEIPT_WAIT_MS: "200" };
  test("a slow receipt with the Mac's clock a minute behind: the landed text and file are found, never sent twice", async () => {
    const { sim, store, account, modern } = setup(slow);
    sim.db.ensureDirectChat("+15550001111");
    // 0.9 answers a send at once (no receipt wait, nothing in doubt): only the skew applies there.
    if (modern) sim.db.setControl("receipt_delay_ms", 700);
    sim.db.setControl("clock_skew_ms", -60_000);
    const file = join(sim.dir, "chart.png");
    writeFileSync(file, "png");
    // sendOnce: no inbound row to anchor on, so the window comes from the dates of history rows.
    const r = await sendOnce(store, account, parseTarget("+15550001111"), "see the chart", [file]);
    expect(r.result.error).toBeUndefined();
    // 0.9 answers at once and the rows land later.
    await waitFor(() => sim.db.sent().length >= 2, 5000, "both rows");
    const sent = sim.db.sent();
    expect(sent.map((s) => s.file ?? s.text)).toEqual(["see the chart", file]);
    expect(r.result.sent.map((o) => o.state)).toEqual(["sent", "sent"]);
  });
});

describe("what a send result tells", () => {
  test("a bridge GUID is ours only once history shows it as our row (0.9 can return the previous message's GUID)", async () => {
    const { sim, store, account, sender } = setup();
    const chat = sim.db.inject({ from: "+15550001111", text: "hi" });
    sim.db.setControl("bridge", true);
    sim.db.setControl("bridge_stale_guid", true);
    const r = await deliver(store, sender, {
      account,
      target: parseTarget(`chat_id:${chat.chatId}`),
      chatId: chat.chatId,
      afterRowid: chat.rowid,
      inboundKey: "IN-1",
      parts: parts("via bridge"),
    }, { settleMs: 300 });
    expect(r.error).toBeUndefined();
    const mine = sim.db.sent();
    expect(mine.map((s) => s.text)).toEqual(["via bridge"]);
    expect(store.hasOutboundGuid("default", chat.guid)).toBe(false);
    expect(store.outboundFor("default", "IN-1")[0]?.messageGuid).toBe(mine[0]!.guid);
  });

  test("the chat a part went to comes from the send result (0.15 auto picks the SMS chat it knows; 0.9 sends iMessage)", async () => {
    const { sim, store, account, modern } = setup();
    const sms = sim.db.ensureDirectChat("+15550001111", "SMS");
    const r = await sendOnce(store, account, parseTarget("+15550001111"), "by sms?");
    expect(r.result.error).toBeUndefined();
    const landed = sim.db.sent()[0]!;
    expect(landed.chatId === sms.id).toBe(modern);
    // 0.9 names no chat in its result: the part keeps the chat known before the send (none, a first contact).
    expect(r.result.sent[0]?.chatId).toBe(modern ? sms.id : undefined);
  });
});

describe("imsg crashing every 3rd request", () => {
  // One conversation (its replies queue behind each other), so requests reach each child one at a time: the
  // simulator's crash takes down whatever else is in flight on that child too.
  test("all 68 parts of 4 replies in one conversation are delivered exactly once, in order, through the outbox", async () => {
    const { sim, store, stateDir, account, sender } = setup({ IMSG_SIM_CRASH_AFTER: "2" }, { textChunkLimit: 10, chunkMode: "length", replyMaxParts: 100 });
    const tasks: Promise<void>[] = [];
    const box = new Outbox({
      account: () => account,
      store,
      sender,
      stateDir,
      settleMs: 100,
      log: getLog("test"),
      guard: new RateGuard(store, account.accountId),
      track: (p) => void tasks.push(p),
      retry: { baseMs: 20, maxMs: 100 },
    });
    res.track(() => box.stop());
    const keys: string[] = [];
    const expected: string[][] = [];
    const from = "+15550003000";
    for (let c = 0; c < 4; c++) {
      const row = sim.db.inject({ from, text: `hi ${c}` });
      const msg = inbound({ id: row.rowid, guid: row.guid, chatId: row.chatId, sender: from, chatIdentifier: from, chatGuid: `iMessage;-;${from}` });
      const k = journal(store, msg);
      keys.push(k);
      // 17 chunks of 10 characters each (textChunkLimit 10, length mode).
      const words = Array.from({ length: 17 }, (_, i) => `r${c}p${String(i).padStart(2, "0")}xxxx`);
      expected.push(words);
      store.setInbound("default", k, { state: "replied", reply: { text: words.join(" "), media: [] } });
      box.enqueue(k, msg, { text: words.join(" "), media: [] }, false);
    }
    while (tasks.length) await Promise.allSettled(tasks.splice(0));
    const sent = sim.db.sent().map((s) => s.text);
    expect(sent).toEqual(expected.flat());
    expect(keys.map((k) => store.getInbound("default", k)?.state)).toEqual(["done", "done", "done", "done"]);
  }, 120_000);
});
