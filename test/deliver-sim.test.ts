// deliver(), reconcileOutbound() and sendOnce() against the imsg simulator (real imsg children) and a real Store
// file: what reaches chat.db and what the journal records for every part.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { deliver, reconcileOutbound, SendClient, sendOnce } from "../src/deliver.ts";
import { RpcClient } from "../src/rpc.ts";
import { parseTarget } from "../src/targets.ts";
import { accountFor, journalResources } from "./helpers/journal.ts";

const res = journalResources();

function setup(simEnv: Record<string, string> = {}, imessage: Record<string, unknown> = {}) {
  const sim = res.sim({ env: simEnv });
  const { store, stateDir } = res.store();
  const account = accountFor(sim.cliPath, imessage);
  const sender = new SendClient(account);
  res.track(() => sender.stop());
  return { sim, store, stateDir, account, sender };
}

const parts = (...texts: string[]) => texts.map((text) => ({ text }));

describe("deliver", () => {
  test("parts go out in order and are recorded sent with imsg's ids; delivering again sends nothing twice", async () => {
    const { sim, store, account, sender } = setup();
    const chat = sim.db.inject({ from: "+15550001111", text: "hi" });
    const job = { account, target: parseTarget("+15550001111"), chatId: chat.chatId, inboundKey: "IN-1", parts: parts("one", "two") };
    const r = await deliver(store, sender, job, { settleMs: 0 });
    expect(r.error).toBeUndefined();
    const sent = sim.db.sent();
    expect(sent.map((s) => s.text)).toEqual(["one", "two"]);
    expect(store.outboundFor("default", "IN-1").map((o) => [o.state, o.messageGuid])).toEqual(sent.map((s) => ["sent", s.guid]));
    const again = await deliver(store, sender, job, { settleMs: 0 });
    expect(again.sent).toHaveLength(2);
    expect(sim.db.sent()).toHaveLength(2);
  });

  test("imsg refusing a part fails it and stops the delivery: later parts are not sent", async () => {
    const { sim, store, account, sender } = setup();
    const job = { account, target: parseTarget("chat_id:4242"), chatId: 4242, inboundKey: "IN-1", parts: parts("one", "two") };
    const r = await deliver(store, sender, job, { settleMs: 0 });
    expect(r.error).toContain("unknown chat_id 4242");
    expect(r.retryable).toBeUndefined();
    expect(store.outboundFor("default", "IN-1").map((o) => o.state)).toEqual(["failed"]);
    expect(sim.db.sent()).toHaveLength(0);
  });

  test("imsg without database access never gets the send: retryable, the part stays pending", async () => {
    const { store, account, sender } = setup({ IMSG_SIM_FDA: "1" });
    const r = await deliver(store, sender, { account, target: parseTarget("+15550001111"), inboundKey: "IN-1", parts: parts("one") }, { settleMs: 0 });
    expect(r.retryable).toBe(true);
    expect(store.outboundFor("default", "IN-1").map((o) => o.state)).toEqual(["pending"]);
  });

  test("a child that dies under every send: looked up in history (absent), resent a few times, then left pending (retryable), never failed", async () => {
    const { sim, store, account, sender } = setup({ IMSG_SIM_CRASH_AFTER: "0" });
    const chat = sim.db.inject({ from: "+15550001111", text: "hi" });
    const r = await deliver(store, sender, { account, target: parseTarget("+15550001111"), chatId: chat.chatId, inboundKey: "IN-1", parts: parts("one") }, {
      settleMs: 0,
    });
    expect(r.retryable).toBe(true);
    expect(store.outboundFor("default", "IN-1").map((o) => o.state)).toEqual(["pending"]);
    expect(sim.db.sent()).toHaveLength(0);
  });
});

describe("reconcileOutbound", () => {
  test("settles unsettled parts from history: found → sent, absent → resend, handed over with no chat → failed", async () => {
    const { sim, store } = setup();
    const chat = sim.db.inject({ from: "+15550001111", text: "hi" });
    const landed = sim.db.inject({ from: "+15550001111", text: "it landed", isFromMe: true, chatId: chat.chatId });
    const rec = (seq: number, text: string) =>
      store.recordOutbound({
        accountId: "default",
        inboundKey: `IN-${seq}`,
        seq: 0,
        target: "imessage:+15550001111",
        chatId: chat.chatId,
        text,
        echoKey: text,
      });
    const found = rec(1, "it landed");
    const pending = rec(2, "never handed over");
    const unknown = rec(3, "timed out");
    store.markOutbound(unknown.id, "unknown", { error: "timeout" });
    const noChat = store.recordOutbound({
      accountId: "default",
      inboundKey: "IN-4",
      seq: 0,
      target: "imessage:+15550003333",
      text: "first contact",
      echoKey: "first contact",
    });
    store.setOutboundSender(noChat.id, 999_999_999);
    const client = RpcClient.start({ cliPath: sim.cliPath, tag: "test" });
    res.track(() => client.stop());
    const r = await reconcileOutbound(store, client, "default", { waitForSenderMs: 0, settleMs: 0 });
    expect({ confirmed: r.confirmed, resend: r.resend, failed: r.failed, unchecked: [...r.unchecked] }).toEqual({
      confirmed: 1,
      resend: 2,
      failed: 1,
      unchecked: [],
    });
    const state = (id: number) => store.unsettledOutbound("default").find((o) => o.id === id)?.state ?? "settled";
    expect([state(found.id), state(pending.id), state(unknown.id), state(noChat.id)]).toEqual(["settled", "pending", "pending", "settled"]);
    expect(store.outboundFor("default", "IN-1")[0]).toMatchObject({ state: "sent", messageGuid: landed.guid });
    expect(store.outboundFor("default", "IN-4")[0]?.state).toBe("failed");
  });

  test("history that cannot be read leaves the parts unchecked (their messages wait for the next start)", async () => {
    const { sim, store } = setup({ IMSG_SIM_FDA: "1" });
    store.recordOutbound({ accountId: "default", inboundKey: "IN-1", seq: 0, target: "imessage:+15550001111", chatId: 1, text: "x", echoKey: "x" });
    const client = RpcClient.start({ cliPath: sim.cliPath, tag: "test" });
    res.track(() => client.stop());
    const r = await reconcileOutbound(store, client, "default", { waitForSenderMs: 0 });
    expect([...r.unchecked]).toEqual(["IN-1"]);
    expect(store.outboundFor("default", "IN-1")[0]?.state).toBe("pending");
  });
});

describe("sendOnce", () => {
  test("sends the text as written (no prefix) and records the chat a handle send lands in", async () => {
    const { sim, store, account } = setup({}, { responsePrefix: "[bot]" });
    const chat = sim.db.inject({ from: "+15550001111", text: "hi" });
    const r = await sendOnce(store, account, parseTarget("+15550001111"), "  hello *there*  ");
    expect(r.result.error).toBeUndefined();
    expect(sim.db.sent().map((s) => s.text)).toEqual(["hello *there*"]);
    expect(r.result.sent[0]).toMatchObject({ state: "sent", chatId: chat.chatId });
  });

  const refusals: [string, (dir: string) => { text: string; files: string[] }, string][] = [
    ["nothing to send", () => ({ text: "  ", files: [] }), "nothing to send"],
    ["a file that cannot be sent fails the whole command", (dir) => ({ text: "see file", files: [join(dir, "missing.png")] }), "unsendable file"],
  ];
  test.each(refusals)("%s", async (_n, make, error) => {
    const { sim, store, account } = setup();
    const { text, files } = make(sim.dir);
    const r = await sendOnce(store, account, parseTarget("+15550001111"), text, files);
    expect(r.result.error).toBe(error);
    expect(sim.db.sent()).toHaveLength(0);
  });

  test("a file part is sent after the text", async () => {
    const { sim, store, account } = setup();
    const file = join(sim.dir, "pic.png");
    writeFileSync(file, "png");
    const r = await sendOnce(store, account, parseTarget("+15550001111"), "caption", [file]);
    expect(r.result.error).toBeUndefined();
    expect(sim.db.sent().map((s) => s.file ?? s.text)).toEqual(["caption", file]);
  });
});
