// Agent actions on the send side, against the imsg simulator (real children) and a real Store file: a tapback part
// (seq 0) goes out exactly once where this Mac can send it, is dropped without holding up the text where it cannot,
// and is settled from history after a restart; threaded parts carry reply_to where usable, else go out plain once.
import { describe, expect, test } from "bun:test";
import { deliver, planParts, reconcileOutbound, SendClient } from "../src/deliver.ts";
import { formatSentAs, newestIncoming, ownTapback, parseSentAs, planTapback, wantsFor } from "../src/tapback.ts";
import { reactArgs } from "../src/send-tapback.ts";
import type { ImsgMessage } from "../src/imsg.ts";
import type { ImessageAccount } from "../src/config.ts";
import type { Sim } from "./helpers/sim.ts";
import { parseTarget } from "../src/targets.ts";
import { accountFor, journalResources } from "./helpers/journal.ts";

const res = journalResources();

function setup(imessage: Record<string, unknown> = {}) {
  const sim = res.sim({ env: {} });
  const { store } = res.store();
  const account = accountFor(sim.cliPath, imessage);
  const sender = new SendClient(account);
  res.track(() => sender.stop());
  const modern = sim.version !== "0.9.0";
  return { sim, store, account, sender, modern };
}

/** Our reaction rows in the simulator's chat.db on message `guid` (associated_message_type 2000–2005: adds). */
function reactionsOn(sim: ReturnType<typeof setup>["sim"], guid: string) {
  return sim.db.messages().filter((m) =>
    m.isFromMe && m.associatedMessageType >= 2000 && m.associatedMessageType <= 2005 && m.associatedMessageGuid.endsWith(guid)
  );
}
const textsSent = (sim: ReturnType<typeof setup>["sim"]) =>
  sim.db.sent().map((s) => s.text).filter((t) => !/^(Loved|Liked|Disliked|Laughed at|Emphasized|Questioned) /.test(t));

describe("planParts with actions", () => {
  test("the tapback is part 0, every text/file part carries replyTo; the tapback does not count against replyMaxParts", () => {
    const account = { textChunkLimit: 5, chunkMode: "length", mediaMaxMb: 1, mediaLocalRoots: [], replyMaxParts: 2 } as never;
    const { parts } = planParts("aaaa bbbb cccc", [], account, { actions: { react: { to: "G1", kind: "love" }, replyTo: "G1" } });
    expect(parts[0]).toEqual({ text: "", tapback: { to: "G1", kind: "love" } });
    expect(parts.length).toBe(3);
    for (const p of parts.slice(1)) expect(p.replyTo).toBe("G1");
  });
});

describe("tapback decisions (pure)", () => {
  const both = { tapback: true, emoji: true };
  const kindOnly = { tapback: true, emoji: false };
  const none = { tapback: false, emoji: false };
  test.each(
    [
      ["kind on the bridge", { to: "G", kind: "like" }, kindOnly, false, { via: "bridge", kind: "like" }],
      ["emoji where allowed", { to: "G", emoji: "🎉" }, both, false, { via: "bridge", emoji: "🎉" }],
      ["emoji not allowed → nearest kind", { to: "G", emoji: "🎉" }, kindOnly, false, { via: "bridge", kind: "like" }],
      ["emoji with no near kind → dropped", { to: "G", emoji: "🦑" }, kindOnly, false, "drop"],
      ["no bridge, no fallback → dropped", { to: "G", kind: "love" }, none, false, "drop"],
      ["no bridge, reactFallback → imsg react", { to: "G", kind: "love" }, none, true, { via: "react", kind: "love" }],
      ["no bridge, emoji, reactFallback → react its nearest kind", { to: "G", emoji: "🤔" }, none, true, { via: "react", kind: "question" }],
    ] as const,
  )("%s", (_n, t, caps, fb, want) => {
    const got = planTapback(t, caps, fb);
    if (want === "drop") expect("drop" in got).toBe(true);
    else expect(got).toEqual(want);
  });

  test("sentAs round trip; history match by kind (read side says emphasis) or emoji, only our own", () => {
    for (const w of [{ via: "bridge", kind: "love" }, { via: "bridge", emoji: "🎉" }, { via: "react", kind: "emphasize" }] as const) {
      expect(parseSentAs(formatSentAs(w))).toEqual(w);
    }
    expect(parseSentAs("threaded")).toBeUndefined();
    const r = (type: string, emoji: string, isFromMe: boolean) => ({ id: 9, type, emoji, sender: "", isFromMe, createdAt: "" });
    expect(ownTapback({ reactions: [r("emphasis", "‼️", true)] }, wantsFor({ tapback: { to: "G", kind: "emphasize" } }))).toBeDefined();
    expect(ownTapback({ reactions: [r("emphasis", "‼️", false)] }, wantsFor({ tapback: { to: "G", kind: "emphasize" } }))).toBeUndefined();
    expect(ownTapback({ reactions: [r("like", "👍", true)] }, wantsFor({ tapback: { to: "G", emoji: "🎉" } }))).toBeDefined();
    expect(ownTapback({ reactions: [r("like", "👍", true)] }, wantsFor({ tapback: { to: "G", emoji: "🎉" }, sentAs: "bridge:emoji:🎉" }))).toBeUndefined();
    const m = (id: number, isFromMe: boolean, isReaction?: boolean) => ({ id, guid: `G${id}`, isFromMe, isReaction }) as ImsgMessage;
    expect(newestIncoming([m(5, true), m(4, false, true), m(3, false), m(2, false)])?.guid).toBe("G3");
    expect(reactArgs(7, "love", "/x/chat.db")).toEqual(["react", "--chat-id", "7", "--reaction", "love", "--json", "--db", "/x/chat.db"]);
  });
});

describe("tapback parts against the simulator", () => {
  test("with the bridge: sent exactly once on the right message, before the text; delivering again sends nothing twice (0.9: dropped, text sent)", async () => {
    const { sim, store, account, sender, modern } = setup();
    if (modern) sim.db.setControl("bridge", true);
    const inbound = sim.db.inject({ from: "+15550001111", text: "hi" });
    const parts = planParts("hello", [], account, { actions: { react: { to: inbound.guid, kind: "love" } } }).parts;
    const job = { account, target: parseTarget("+15550001111"), chatId: inbound.chatId, afterRowid: inbound.rowid, inboundKey: "IN-1", parts };
    const r = await deliver(store, sender, job, { settleMs: 0 });
    expect(r.error).toBeUndefined();
    const rows = store.outboundFor("default", "IN-1");
    expect(rows.map((o) => o.state)).toEqual(modern ? ["sent", "sent"] : ["failed", "sent"]);
    expect(rows[0]!.tapback).toEqual({ to: inbound.guid, kind: "love" });
    expect(reactionsOn(sim, inbound.guid)).toHaveLength(modern ? 1 : 0);
    expect(textsSent(sim)).toEqual(["hello"]);
    if (modern) {
      expect(rows[0]!.sentAs).toBe("bridge:love");
      // The reaction row is not a message we sent: its guid never counts as ours.
      expect(rows[0]!.messageGuid).toBeUndefined();
    }
    await deliver(store, sender, job, { settleMs: 0 });
    expect(reactionsOn(sim, inbound.guid)).toHaveLength(modern ? 1 : 0);
    expect(textsSent(sim)).toEqual(["hello"]);
  });

  test("without the bridge: the tapback is dropped (never attempted) and the text still goes out, also on re-delivery", async () => {
    const { sim, store, account, sender } = setup();
    const inbound = sim.db.inject({ from: "+15550001111", text: "hi" });
    const parts = planParts("hello", [], account, { actions: { react: { to: inbound.guid, kind: "like" } } }).parts;
    const job = { account, target: parseTarget("+15550001111"), chatId: inbound.chatId, afterRowid: inbound.rowid, inboundKey: "IN-1", parts };
    const r = await deliver(store, sender, job, { settleMs: 0 });
    expect(r.error).toBeUndefined();
    const rows = store.outboundFor("default", "IN-1");
    expect(rows.map((o) => o.state)).toEqual(["failed", "sent"]);
    // Our reason, not imsg's "bridge unavailable": no tapback request reached the simulator.
    expect(rows[0]!.error).toContain("need the IMCore bridge");
    expect(reactionsOn(sim, inbound.guid)).toHaveLength(0);
    const again = await deliver(store, sender, job, { settleMs: 0 });
    expect(again.error).toBeUndefined();
    expect(textsSent(sim)).toEqual(["hello"]);
  });

  test("a restart finding a handed-over tapback already in history settles it sent: no second tapback", async () => {
    const { sim, store, account, sender, modern } = setup();
    if (modern) sim.db.setControl("bridge", true);
    const inbound = sim.db.inject({ from: "+15550001111", text: "hi" });
    // The killed run: recorded, handed to a child (now dead), and it landed.
    const row = store.recordOutbound({
      accountId: "default",
      inboundKey: "IN-1",
      seq: 0,
      target: "imessage:+15550001111",
      chatId: inbound.chatId,
      text: "",
      tapback: { to: inbound.guid, kind: "laugh" },
    });
    store.setOutboundSentAs(row.id, "bridge:laugh");
    store.setOutboundSender(row.id, 999_999_999);
    sim.db.inject({ from: "+15550001111", chatId: inbound.chatId, isFromMe: true, reaction: { to: inbound.guid, type: "laugh" } });
    const parts = planParts("hello", [], account, { actions: { react: { to: inbound.guid, kind: "laugh" } } }).parts;
    const job = { account, target: parseTarget("+15550001111"), chatId: inbound.chatId, afterRowid: inbound.rowid, inboundKey: "IN-1", parts };
    const r = await deliver(store, sender, job, { settleMs: 0 });
    expect(r.error).toBeUndefined();
    expect(store.outboundFor("default", "IN-1").map((o) => o.state)).toEqual(["sent", "sent"]);
    expect(reactionsOn(sim, inbound.guid)).toHaveLength(1);
  });

  test("reconcileOutbound settles tapback parts from history: found → sent, absent → to send, message gone → failed", async () => {
    const { sim, store } = setup();
    const inbound = sim.db.inject({ from: "+15550001111", text: "hi" });
    const rec = (key: string, to: string, kind: "love" | "like") => {
      const r = store.recordOutbound({
        accountId: "default",
        inboundKey: key,
        seq: 0,
        target: "imessage:+15550001111",
        chatId: inbound.chatId,
        text: "",
        tapback: { to, kind },
      });
      store.setOutboundSender(r.id, 999_999_999);
      return r;
    };
    const found = rec("IN-1", inbound.guid, "love");
    const absent = rec("IN-2", inbound.guid, "like");
    const gone = rec("IN-3", "NO-SUCH-GUID", "love");
    sim.db.inject({ from: "+15550001111", chatId: inbound.chatId, isFromMe: true, reaction: { to: inbound.guid, type: "love" } });
    const client = new SendClient(accountFor(sim.cliPath));
    res.track(() => client.stop());
    const out = await reconcileOutbound(store, client, "default", { waitForSenderMs: 0, settleMs: 0 });
    expect(out).toMatchObject({ confirmed: 1, resend: 1, failed: 1 });
    const state = (r: { inboundKey?: string }) => store.outboundFor("default", r.inboundKey!)[0]!;
    expect([state(found).state, state(absent).state, state(gone).state]).toEqual(["sent", "pending", "failed"]);
    expect(state(absent).senderPid).toBeUndefined();
  });
});

/** A reply "text" to `inbound` threaded under it, as the outbox plans and addresses it. */
function threadedReply(sim: Sim, account: ImessageAccount, inbound: { guid: string; chatId: number; rowid: number }, text: string) {
  return {
    account,
    target: parseTarget("+15550001111"),
    chatId: inbound.chatId,
    chatGuid: sim.db.chatById(inbound.chatId)!.guid,
    afterRowid: inbound.rowid,
    inboundKey: "IN-1",
    parts: planParts(text, [], account, { actions: { replyTo: inbound.guid } }).parts,
  };
}

describe("threaded parts", () => {
  test("with the bridge: sent with reply_to (recorded threaded); without: plain, once (0.9: always plain)", async () => {
    for (const bridge of [true, false]) {
      const { sim, store, account, sender, modern } = setup();
      if (bridge) sim.db.setControl("bridge", true);
      const inbound = sim.db.inject({ from: "+15550001111", text: "hi" });
      const r = await deliver(store, sender, threadedReply(sim, account, inbound, "hello"), { settleMs: 0 });
      expect(r.error).toBeUndefined();
      const [row] = store.outboundFor("default", "IN-1");
      expect(row!.replyTo).toBe(inbound.guid);
      expect(row!.sentAs).toBe(bridge && modern ? "threaded" : "plain");
      expect(textsSent(sim)).toEqual(["hello"]);
    }
  });

  test("imsg refusing reply_to (the bridge went away after discovery): sent again at once without it, exactly once", async () => {
    const { sim, store, account, sender, modern } = setup();
    if (!modern) return expect(modern).toBe(false); // 0.9 never threads: covered above
    sim.db.setControl("bridge", true);
    const inbound = sim.db.inject({ from: "+15550001111", text: "hi" });
    expect((await sender.capabilities())?.advanced.reply_to).toBe(true);
    sim.db.setControl("bridge", undefined);
    const r = await deliver(store, sender, threadedReply(sim, account, inbound, "hello"), { settleMs: 0 });
    expect(r.error).toBeUndefined();
    const [row] = store.outboundFor("default", "IN-1");
    expect([row!.state, row!.sentAs]).toEqual(["sent", "plain"]);
    expect(textsSent(sim)).toEqual(["hello"]);
  });
});
