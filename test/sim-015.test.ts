// The imsg simulator in 0.15.6 mode (and the 0.9 side where the behaviour differs), as a child over real pipes.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ReactionType } from "../scripts/sim-db.ts";
import { createSim, RpcPipe, type Sim, waitFor } from "./helpers/sim.ts";

const ALICE = "+15550001111";
const BOB = "+15550002222";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function sim(opts: { env?: Record<string, string>; version?: string; noDatabase?: boolean } = {}): Sim {
  const s = createSim({ version: "0.15.6", ...opts, env: { IMSG_SIM_POLL_MS: "60000", ...opts.env } });
  cleanups.push(() => s.cleanup());
  return s;
}
function rpc(s: Sim, env: Record<string, string> = {}): RpcPipe {
  const p = new RpcPipe(s.cliPath, { env });
  cleanups.push(async () => {
    if (p.child.exitCode === null && p.child.signalCode === null) await p.kill();
  });
  return p;
}
const cli = (s: Sim, args: string[], env: Record<string, string> = {}) =>
  Bun.spawnSync({ cmd: [s.cliPath, ...args], env: { ...process.env, ...env } }).stdout.toString().trim();

describe("version switch", () => {
  test("--imsg-version beats IMSG_SIM_VERSION (the last flag wins); a wrapper pins its version; the default is 0.15.6", () => {
    const s = sim({ version: "0.9.0" });
    expect(cli(s, ["--version"])).toBe("0.9.0");
    // The wrapper pins 0.9.0 with a flag, so a suite-wide IMSG_SIM_VERSION does not change this simulator.
    expect(cli(s, ["--version"], { IMSG_SIM_VERSION: "0.15.6" })).toBe("0.9.0");
    expect(cli(s, ["--imsg-version", "0.9.0", "--version"], { IMSG_SIM_VERSION: "0.15.6" })).toBe("0.9.0");
    expect(cli(s, ["--imsg-version=0.15.6", "--version"])).toBe("0.15.6");
    const d = createSim({ env: { IMSG_SIM_VERSION: "" } });
    cleanups.push(() => d.cleanup());
    expect(cli(d, ["--version"], { IMSG_SIM_VERSION: "" })).toBe("0.15.6");
  });
});

describe("strict params and framing (0.15)", () => {
  test("unknown keys and wrong types are -32602; id-less requests get no reply even on error", async () => {
    const p = rpc(sim());
    expect((await p.request("chats.list", { limit: 5, chatId: 1 })).error).toMatchObject({ code: -32602, data: expect.stringContaining("chatId") });
    expect((await p.request("chats.list", { limit: "5" })).error?.code).toBe(-32602);
    expect((await p.request("watch.subscribe", { attachments: 1 })).error?.code).toBe(-32602);
    p.write({ jsonrpc: "2.0", method: "nope" });
    p.write({ jsonrpc: "2.0", method: "chats.list", params: { bogus: 1 } });
    p.write({ id: 5, method: "chats.list" });
    await p.call("chats.list", { limit: 1 });
    const ids = p.responses.items.map((r) => r.id);
    expect(ids).not.toContain(null);
    expect(p.responses.items.find((r) => r.id === 5)?.error?.code).toBe(-32600);
  });
});

describe("typed delivery outcomes and the mutation lane", () => {
  test("still_in_flight → -32001 object data, then -32004 for every mutation until restart; reads stay fine", async () => {
    const s = sim();
    s.db.inject({ from: ALICE, text: "hi" });
    s.db.queueFault("send", "still_in_flight", { lands: false });
    const p = rpc(s);
    const r = await p.request("send", { to: ALICE, text: "one" });
    expect(r.error).toEqual({
      code: -32001,
      message: "Delivery outcome unknown",
      data: { retry_safe: false, disposition: "still_in_flight", transport: "applescript", operation: "send", detail: expect.any(String) },
    });
    for (const m of ["send", "typing", "read"]) {
      const b = await p.request(m, { to: ALICE, text: "two" });
      expect(b.error).toMatchObject({ code: -32004, message: "Mutation lane blocked", data: { retry_safe: false, disposition: "still_in_flight" } });
    }
    expect((await p.call("chats.list", {})).chats).toHaveLength(1);
    await p.close();
    const q = rpc(s);
    expect((await q.call("send", { to: ALICE, text: "three" })).ok).toBe(true);
    expect(s.db.sent().map((x) => x.text)).toEqual(["three"]);
  });

  test("not_started → -32603 retry_safe, nothing written; may_have_completed → -32001 and the row lands", async () => {
    const s = sim();
    s.db.queueFault("send", "not_started");
    s.db.queueFault("send", "may_have_completed");
    const p = rpc(s);
    const a = await p.request("send", { to: ALICE, text: "a" });
    expect(a.error).toMatchObject({ code: -32603, message: "Delivery failed before dispatch", data: { retry_safe: true, disposition: "not_started" } });
    const b = await p.request("send", { to: ALICE, text: "b" });
    expect(b.error).toMatchObject({ code: -32001, data: { retry_safe: false, disposition: "may_have_completed" } });
    await waitFor(() => s.db.sent().length === 1, 3000, "the in-doubt row");
    expect(s.db.sent().map((x) => x.text)).toEqual(["b"]);
    expect((await p.call("send", { to: ALICE, text: "c" })).ok).toBe(true);
  });

  test("more outstanding requests than the limit → -32000 Server busy", async () => {
    const p = rpc(sim({ env: { IMSG_SIM_BUSY_LIMIT: "4", IMSG_SIM_SEND_DELAY_MS: "300" } }));
    const rs = await Promise.all(Array.from({ length: 7 }, (_, i) => p.request("send", { to: ALICE, text: `m${i}` }, 10000)));
    expect(rs.filter((r) => r.error?.code === -32000).map((r) => r.error?.message)).toEqual(["Server busy", "Server busy", "Server busy"]);
    expect(rs.filter((r) => r.result?.ok)).toHaveLength(4);
  });

  test("slow receipts: within the wait the send returns its row; beyond it -32001 may_have_completed and the row lands later", async () => {
    const s = sim({ env: { IMSG_SIM_RECEIPT_WAIT_MS: "150" } });
    const p = rpc(s);
    s.db.setControl("receipt_delay_ms", 50);
    const ok = await p.call("send", { to: ALICE, text: "quick" });
    expect(ok).toMatchObject({
      ok: true,
      transport: "applescript",
      id: expect.any(Number),
      message_id: expect.any(String),
      service: "iMessage",
      chat_guid: `iMessage;-;${ALICE}`,
    });
    s.db.setControl("receipt_delay_ms", 400);
    const late = await p.request("send", { to: ALICE, text: "late" });
    expect(late.error).toMatchObject({ code: -32001, data: { disposition: "may_have_completed" } });
    await waitFor(() => s.db.sent().some((x) => x.text === "late"), 3000, "the late row");
  });
});

describe("degraded start (0.15) vs startup error (0.9)", () => {
  test("a missing database: rpc starts, status says why, db requests -32002, then it heals once the file exists", async () => {
    const s = sim({ noDatabase: true });
    const p = rpc(s);
    const st = await p.call("status");
    expect(st.database).toEqual({ path: s.dbPath, ready: false, error: expect.stringContaining("does not exist") });
    expect(st.methods).not.toContain("chats.list");
    const e = await p.request("chats.list", {});
    expect(e.error).toEqual({
      code: -32002,
      message: "Database unavailable",
      data: { path: s.dbPath, detail: expect.stringContaining("does not exist"), retryable: true },
    });
    s.db.inject({ from: ALICE, text: "now" });
    expect((await p.call("chats.list", {})).chats).toHaveLength(1);
    expect((await p.call("status")).database.ready).toBe(true);
  });

  test("an unreadable database says Full Disk Access and recovers when readable", async () => {
    const s = sim();
    s.db.setUnreadable(true);
    const p = rpc(s);
    const e = await p.request("messages.history", { chat_id: 1 });
    expect(e.error).toMatchObject({ code: -32002, data: { detail: expect.stringMatching(/could not be opened read-only.*Full Disk Access/) } });
    s.db.setUnreadable(false);
    expect(await p.call("messages.history", { chat_id: 1 })).toEqual({ messages: [] });
  });
});

describe("watch (0.15)", () => {
  test("buffer_limit defaults to 256, is bounded 1–4096, and overflow ends the stream with one terminal notification", async () => {
    const s = sim();
    const p = rpc(s);
    expect(await p.call("watch.subscribe", {})).toEqual({ subscription: 1, buffer_limit: 256 });
    expect((await p.request("watch.subscribe", { buffer_limit: 0 })).error?.code).toBe(-32602);
    expect((await p.request("watch.subscribe", { buffer_limit: 4097 })).error?.code).toBe(-32602);
    const ids = [1, 2, 3, 4, 5].map((i) => s.db.inject({ from: ALICE, text: `m${i}` }).rowid);
    const { subscription } = await p.call("watch.subscribe", { since_rowid: -1, buffer_limit: 2 });
    const ov = await p.notifications.waitFor((n) => n.method === "watch.overflow");
    expect(ov.params).toEqual({ subscription, resume_after_rowid: ids[1], reason: "buffer_limit_exceeded", terminal: true });
    expect(p.messages(subscription).map((m) => m.id)).toEqual(ids.slice(0, 2));
    s.db.inject({ from: ALICE, text: "after" });
    await p.notifications.waitFor((n) => n.method === "message" && n.params.subscription === 1 && n.params.message.text === "after");
    expect(p.messages(subscription)).toHaveLength(2);
    expect(p.notifications.items.filter((n) => n.method === "error")).toEqual([]);
  });

  test("rows not joined to a chat are retried (delivered once joined) and otherwise dropped, never sent with chat_id 0", async () => {
    const s = sim({ env: { IMSG_SIM_UNJOINED_RETRIES: "200", IMSG_SIM_UNJOINED_RETRY_MS: "10" } });
    const group = s.db.inject({ from: ALICE, group: { identifier: "g1", participants: [BOB] }, text: "hello" });
    const p = rpc(s);
    const { subscription } = await p.call("watch.subscribe", {});
    const late = s.db.inject({ from: BOB, chatId: 0, text: "joins late" });
    s.db.joinChat(late.rowid, group.chatId);
    const m = await p.notifications.waitFor((n) => n.method === "message" && n.params.message.id === late.rowid);
    expect(m.params.message).toMatchObject({ chat_id: group.chatId, is_group: true });
    const q = rpc(s, { IMSG_SIM_UNJOINED_RETRIES: "3" });
    const sub2 = (await q.call("watch.subscribe", {})).subscription;
    const orphan = s.db.inject({ from: BOB, chatId: 0, text: "never joined" });
    const next = s.db.inject({ from: ALICE, text: "next" });
    await q.notifications.waitFor((n) => n.method === "message" && n.params.message.id === next.rowid);
    expect(q.messages(sub2).map((x) => x.id)).not.toContain(orphan.rowid);
    expect(subscription).toBe(1);
  });
});

describe("typing and read (0.15)", () => {
  test("listed in status.methods either way; refused without the bridge (recorded), ok with it; unknown keys -32602", async () => {
    const s = sim();
    const { chatId } = s.db.inject({ from: ALICE, text: "hi" });
    const p = rpc(s);
    expect((await p.call("status")).methods).toEqual(expect.arrayContaining(["typing", "read"]));
    expect((await p.request("typing", { chat_id: chatId, typing: true })).error).toMatchObject({ code: -32603 });
    expect((await p.request("read", { chat_id: chatId, typing: true })).error).toMatchObject({ code: -32602 });
    s.db.setControl("bridge", true);
    expect((await p.request("typing", { chat_guid: `iMessage;-;${ALICE}`, typing: true })).result).toEqual({ ok: true });
    expect((await p.request("read", { chat_id: chatId })).result).toEqual({ ok: true });
    expect(s.db.presenceEvents().map((e) => [e.method, e.chatId, e.ok])).toEqual([
      ["typing", chatId, false],
      ["typing", chatId, true],
      ["read", chatId, true],
    ]);
  });
});

describe("initialize, status, messages.after (0.15)", () => {
  test("initialize/status report version, database, bridge, methods and capabilities; the bridge control shows", async () => {
    const s = sim();
    const p = rpc(s);
    const st = await p.call("initialize", { protocol_version: 1 });
    expect(st).toMatchObject({
      version: "0.15.6",
      protocol_version: 1,
      database: { path: s.dbPath, ready: true, features: expect.any(Object) },
      bridge: { ready: false, error: expect.any(String) },
      contacts: { available: true },
    });
    expect(st.methods).toEqual(expect.arrayContaining(["chats.list", "messages.after", "watch.subscribe", "send"]));
    expect(st.methods).not.toContain("tapback");
    expect(st.supported_methods).toContain("tapback");
    expect(st.capabilities.engine.version).toBe("0.15.6");
    expect((await p.request("initialize", { protocol_version: 2 })).error?.code).toBe(-32602);
    s.db.setControl("bridge", true);
    const on = await p.call("status", {});
    expect(on.bridge.ready).toBe(true);
    expect(on.methods).toContain("tapback");
  });

  test("messages.after pages in ROWID order with next_rowid/has_more; limit ≤ 500", async () => {
    const s = sim();
    const ids = [1, 2, 3, 4, 5].map((i) => s.db.inject({ from: i % 2 ? ALICE : BOB, text: `m${i}`, createdAt: new Date(Date.UTC(2026, 0, 10 - i)) }).rowid);
    const p = rpc(s);
    const a = await p.call("messages.after", { since_rowid: 0, limit: 3 });
    expect(a.messages.map((m: any) => m.id)).toEqual(ids.slice(0, 3));
    expect([a.next_rowid, a.has_more]).toEqual([ids[2], true]);
    const b = await p.call("messages.after", { since_rowid: a.next_rowid, limit: 3 });
    expect(b.messages.map((m: any) => m.id)).toEqual(ids.slice(3));
    expect(b.has_more).toBe(false);
    expect((await p.request("messages.after", { since_rowid: 0, limit: 501 })).error?.code).toBe(-32602);
    expect((await p.request("messages.after", {})).error?.code).toBe(-32602);
  });

  test("0.9 has none of them", async () => {
    const p = rpc(sim({ version: "0.9.0" }));
    for (const m of ["initialize", "status", "messages.after"]) expect((await p.request(m)).error?.code).toBe(-32601);
  });
});

describe("data real Macs produce", () => {
  test.each([
    ["0.9.0", ""],
    ["0.15.6", ALICE],
  ])("'' display_name (%s) → name %p; any;-; guids; attributedBody-only text", async (version, name) => {
    const s = sim({ version });
    s.db.inject({ from: ALICE, text: "from body", anyGuid: true, displayName: "", attributedBodyOnly: true });
    const p = rpc(s);
    const [chat] = (await p.call("chats.list", {})).chats;
    expect(chat).toMatchObject({ guid: `any;-;${ALICE}`, name, is_group: false });
    const [msg] = (await p.call("messages.history", { chat_id: chat.id })).messages;
    expect(msg.text).toBe("from body");
  });

  test("Contacts names: sender_name / contact_name only in 0.15", async () => {
    for (const version of ["0.9.0", "0.15.6"]) {
      const s = sim({ version });
      s.db.addContact(ALICE, "Alice Example");
      s.db.inject({ from: ALICE, text: "hi" });
      const p = rpc(s);
      const [chat] = (await p.call("chats.list", {})).chats;
      const [msg] = (await p.call("messages.history", { chat_id: chat.id })).messages;
      expect([chat.contact_name, msg.sender_name]).toEqual(version === "0.9.0" ? [undefined, undefined] : ["Alice Example", "Alice Example"]);
    }
  });

  test("a replaced chat.db with lower ROWIDs: 0.15 serves the new generation, 0.9 keeps the old file", async () => {
    for (const version of ["0.9.0", "0.15.6"]) {
      const s = sim({ version });
      for (let i = 0; i < 5; i++) s.db.inject({ from: ALICE, text: `old${i}` });
      const p = rpc(s);
      await p.call("chats.list", {});
      s.db.replaceDatabase();
      const fresh = s.db.inject({ from: ALICE, text: "new" });
      expect(fresh.rowid).toBe(1);
      const [chat] = (await p.call("chats.list", {})).chats;
      const texts = (await p.call("messages.history", { chat_id: chat.id })).messages.map((m: any) => m.text);
      expect(texts).toEqual(version === "0.9.0" ? ["old4", "old3", "old2", "old1", "old0"] : ["new"]);
    }
  });

  test("the benign Contacts stderr line on request", async () => {
    const p = rpc(sim({ env: { IMSG_SIM_CONTACTS_STDERR: "1" } }));
    await p.call("status");
    expect(p.stderr).toContain("ABGroup");
  });
});

describe("bridge (control `bridge`)", () => {
  test("reply_to is refused without the bridge; with it a bridge send returns guid/chat_guid/service", async () => {
    const s = sim();
    const first = s.db.inject({ from: ALICE, text: "q" });
    const p = rpc(s);
    expect((await p.request("send", { chat_id: first.chatId, text: "r", reply_to: first.guid })).error).toMatchObject({
      code: -32602,
      data: expect.stringContaining("reply_to requires bridge"),
    });
    s.db.setControl("bridge", true);
    const r = await p.call("send", { chat_id: first.chatId, text: "r", reply_to: first.guid });
    expect(r).toMatchObject({ ok: true, transport: "bridge", chat_guid: `iMessage;-;${ALICE}`, service: "iMessage" });
    expect(r.guid).toBe(s.db.sent().at(-1)!.guid);
  });

  test("tapback writes a reaction row that watch (include_reactions) and history see; refused without the bridge", async () => {
    const s = sim();
    const m = s.db.inject({ from: ALICE, text: "nice" });
    const p = rpc(s);
    expect((await p.request("tapback", { chat_id: m.chatId, message_guid: m.guid, reaction: "love" })).error?.code).toBe(-32003);
    s.db.setControl("bridge", true);
    const { subscription } = await p.call("watch.subscribe", { include_reactions: true });
    await p.call("tapback", { chat_id: m.chatId, message_guid: m.guid, reaction: "love" });
    const n = await p.notifications.waitFor((x) => x.method === "message" && x.params.subscription === subscription);
    expect(n.params.message).toMatchObject({ is_reaction: true, reaction_type: "love", reacted_to_guid: m.guid, is_from_me: true });
    const [h] = (await p.call("messages.history", { chat_id: m.chatId })).messages;
    expect(h.reactions).toEqual([expect.objectContaining({ type: "love", is_from_me: true })]);
  });

  test("0.9 quirk bridge_stale_guid: a bridge send returns the previous message's GUID", async () => {
    const s = sim({ version: "0.9.0" });
    const prev = s.db.inject({ from: ALICE, text: "before" });
    s.db.setControl("bridge", true);
    s.db.setControl("bridge_stale_guid", true);
    const p = rpc(s);
    const r = await p.call("send", { chat_id: prev.chatId, text: "mine", transport: "bridge" });
    expect(r.guid).toBe(prev.guid);
    expect(s.db.sent().at(-1)!.guid).not.toBe(prev.guid);
  });
});

// Agent actions as the simulator offers them: tapback (both versions), threaded sends, and the `imsg react` CLI.
describe("tapback (control `bridge`)", () => {
  const bridged = (version = "0.15.6", env: Record<string, string> = {}) => {
    const s = sim({ version, env });
    s.db.setControl("bridge", true);
    return s;
  };

  test.each([
    ["love", "love", "love"],
    ["  HEART ", "love", "love"],
    ["❤", "love", "love"],
    ["thumbs-up", "like", "like"],
    ["+1", "like", "like"],
    ["👍", "like", "like"],
    ["-1", "dislike", "dislike"],
    ["LOL", "laugh", "laugh"],
    ["🤣", "laugh", "laugh"],
    ["emphasis", "emphasize", "emphasis"],
    ["‼️", "emphasize", "emphasis"],
    ["!!", "emphasize", "emphasis"],
    ["?", "question", "question"],
    ["remove-like", "remove-like", "like"],
  ] as [string, string, ReactionType][])("%p → reaction %p, a row of kind %p (both versions)", async (raw, reaction, type) => {
    for (const version of ["0.9.0", "0.15.6"]) {
      const s = bridged(version);
      const m = s.db.inject({ from: ALICE, text: "nice" });
      const r = await rpc(s).call("tapback", { chat_id: m.chatId, message_guid: m.guid, reaction: raw });
      expect(r).toEqual({ ok: true, reaction });
      expect(s.db.reactionsOn(m.guid)).toEqual([
        {
          rowid: expect.any(Number),
          guid: expect.any(String),
          type,
          emoji: expect.any(String),
          isFromMe: true,
          add: !reaction.startsWith("remove-"),
          sender: ALICE,
        },
      ]);
      expect(s.db.sent()).toEqual([]);
    }
  });

  test.each([
    ["unknown word", { reaction: "wave" }, "unsupported tapback reaction wave; use love, like, dislike, laugh, emphasize, or question"],
    ["empty", { reaction: " " }, "reaction, kind, or emoji is required"],
    ["no message", { reaction: "like", message_guid: "" }, "message_id or message_guid is required"],
    ["no chat", { reaction: "like", chat_id: undefined }, "chat_guid, chat_identifier, or chat_id is required"],
    ["unknown chat_id", { reaction: "like", chat_id: 999 }, "unknown chat_id 999"],
  ])("%s → -32602 with imsg's text", async (_name, extra, data) => {
    for (const version of ["0.9.0", "0.15.6"]) {
      const s = bridged(version);
      const m = s.db.inject({ from: ALICE, text: "nice" });
      const params = JSON.parse(JSON.stringify({ chat_id: m.chatId, message_guid: m.guid, ...extra }));
      expect((await rpc(s).request("tapback", params)).error).toEqual({ code: -32602, message: "Invalid params", data });
    }
  });

  test("remove:true and a later removal: history's reactions are net, with is_from_me", async () => {
    const s = bridged();
    const m = s.db.inject({ from: ALICE, text: "nice" });
    s.db.inject({ from: ALICE, chatId: m.chatId, reaction: { to: m.guid, type: "like" } });
    const p = rpc(s);
    const reactions = async () => (await p.call("messages.history", { chat_id: m.chatId })).messages[0].reactions.map((x: any) => [x.type, x.is_from_me]);
    expect(await reactions()).toEqual([["like", false]]);
    await p.call("tapback", { chat_id: m.chatId, message_guid: m.guid, reaction: "like" });
    expect(await reactions()).toEqual([["like", false], ["like", true]]);
    expect(await p.call("tapback", { chat_id: m.chatId, message_guid: m.guid, reaction: "like", remove: true })).toEqual({ ok: true, reaction: "remove-like" });
    expect(await reactions()).toEqual([["like", false]]);
    expect(s.db.reactionsOn(m.guid).map((r) => [r.isFromMe, r.add])).toEqual([[false, true], [true, true], [true, false]]);
  });

  test("emoji: 0.15 sends it as itself while status advertises tapback.emoji 2; control emoji_tapback=0 refuses it", async () => {
    const s = sim();
    const m = s.db.inject({ from: ALICE, text: "party" });
    const p = rpc(s);
    expect((await p.call("status")).capabilities.features).toEqual({});
    s.db.setControl("bridge", true);
    const on = await p.call("status");
    expect([on.capabilities.features, on.bridge.selectors]).toEqual([{ "tapback.emoji": 2 }, { emojiTapbackSend: true }]);
    expect(await p.call("tapback", { chat_id: m.chatId, message_guid: m.guid, emoji: "🎉" })).toEqual({ ok: true, emoji: "🎉" });
    const [h] = (await p.call("messages.history", { chat_id: m.chatId })).messages;
    expect(h.reactions).toEqual([expect.objectContaining({ type: "custom", emoji: "🎉", is_from_me: true })]);
    expect(s.db.messages().at(-1)).toMatchObject({ text: "Reacted 🎉 to “party”", associatedMessageType: 2006 });
    expect(await p.call("tapback", { chat_id: m.chatId, message_guid: m.guid, emoji: "🎉", remove: true })).toEqual({ ok: true, emoji: "🎉" });
    expect(s.db.messages().at(-1)!.associatedMessageType).toBe(3006);
    expect((await p.call("messages.history", { chat_id: m.chatId })).messages[0].reactions).toEqual([]);
    s.db.setControl("emoji_tapback", "0");
    const off = await p.call("status");
    expect([off.capabilities.features, off.bridge.selectors]).toEqual([{}, { emojiTapbackSend: false }]);
    expect((await p.request("tapback", { chat_id: m.chatId, message_guid: m.guid, emoji: "🎉" })).error).toMatchObject({
      code: -32603,
      data: expect.stringContaining("does not support emoji tapbacks"),
    });
    expect(s.db.reactionsOn(m.guid)).toHaveLength(2);
  });

  test("0.9: emoji is one more spelling of reaction (👍 → like; a custom emoji is refused)", async () => {
    const s = bridged("0.9.0");
    const m = s.db.inject({ from: ALICE, text: "x" });
    const p = rpc(s);
    expect(await p.call("tapback", { chat_id: m.chatId, message_guid: m.guid, emoji: "👍" })).toEqual({ ok: true, reaction: "like" });
    expect((await p.request("tapback", { chat_id: m.chatId, message_guid: m.guid, emoji: "🎉" })).error?.code).toBe(-32602);
  });

  test("a message the database does not hold → -32603 from the bridge, nothing written; without the bridge -32003 (0.9: -32603)", async () => {
    for (const version of ["0.9.0", "0.15.6"]) {
      const s = sim({ version });
      const m = s.db.inject({ from: ALICE, text: "x" });
      const p = rpc(s);
      expect((await p.request("tapback", { chat_id: m.chatId, message_guid: m.guid, reaction: "like" })).error?.code).toBe(
        version === "0.9.0" ? -32603 : -32003,
      );
      s.db.setControl("bridge", true);
      const e = await p.request("tapback", { chat_id: m.chatId, message_guid: "NOT-A-GUID", reaction: "like" });
      expect(e.error).toEqual({ code: -32603, message: "Internal error", data: "bridge: message not found: NOT-A-GUID" });
      expect(s.db.reactionsOn(m.guid)).toEqual([]);
    }
  });

  test("queued faults: not_started writes nothing, may_have_completed lands, still_in_flight blocks the lane until restart", async () => {
    const s = bridged();
    const m = s.db.inject({ from: ALICE, text: "x" });
    s.db.queueFault("tapback", "not_started");
    s.db.queueFault("tapback", "may_have_completed");
    s.db.queueFault("tapback", "still_in_flight", { lands: false });
    const p = rpc(s);
    const args = { chat_id: m.chatId, message_guid: m.guid, reaction: "love" };
    expect((await p.request("tapback", args)).error).toMatchObject({
      code: -32603,
      data: { retry_safe: true, disposition: "not_started", transport: "bridge" },
    });
    expect(s.db.reactionsOn(m.guid)).toEqual([]);
    expect((await p.request("tapback", args)).error).toMatchObject({ code: -32001, data: { disposition: "may_have_completed" } });
    await waitFor(() => s.db.reactionsOn(m.guid).length === 1, 3000, "the in-doubt tapback row");
    expect((await p.request("tapback", args)).error).toMatchObject({ code: -32001, data: { disposition: "still_in_flight" } });
    for (const method of ["tapback", "send"]) {
      expect((await p.request(method, { ...args, text: "t" })).error).toMatchObject({ code: -32004 });
    }
    await p.close();
    expect(await rpc(s).call("tapback", args)).toEqual({ ok: true, reaction: "love" });
    expect(s.db.reactionsOn(m.guid)).toHaveLength(2);
  });

  test("0.9: a queued fault is a bridge timeout (-32603); the row still lands unless lands:false", async () => {
    const s = bridged("0.9.0");
    const m = s.db.inject({ from: ALICE, text: "x" });
    s.db.queueFault("tapback", "may_have_completed");
    const e = await rpc(s).request("tapback", { chat_id: m.chatId, message_guid: m.guid, reaction: "love" });
    expect(e.error).toMatchObject({ code: -32603, data: expect.stringContaining("Timed out") });
    await waitFor(() => s.db.reactionsOn(m.guid).length === 1, 3000, "the late tapback row");
  });

  test("tapback_delay_ms delays the answer; the trace has one line per tapback request", async () => {
    const trace = join(mkdtempSync(join(tmpdir(), "sim-trace-")), "trace.jsonl");
    const s = bridged("0.15.6", { IMSG_SIM_TRACE: trace });
    const m = s.db.inject({ from: ALICE, text: "x" });
    s.db.setControl("tapback_delay_ms", 300);
    const p = rpc(s);
    const t0 = Date.now();
    await p.call("tapback", { chat_id: m.chatId, message_guid: m.guid, reaction: "like" });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    await p.request("tapback", { chat_id: m.chatId, message_guid: m.guid, reaction: "wave" });
    const lines = readFileSync(trace, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.k === "tb");
    expect(lines.map((l) => [l.guid, l.reaction])).toEqual([[m.guid, "like"], [m.guid, "wave"]]);
  });
});

describe("send reply_to on the bridge (0.15)", () => {
  test("the row carries the thread: history shows reply_to_guid, thread_originator_guid and the parent's text", async () => {
    const s = sim();
    s.db.setControl("bridge", true);
    const parent = s.db.inject({ from: ALICE, text: "question?" });
    const p = rpc(s);
    const r = await p.call("send", { chat_id: parent.chatId, text: "answer", reply_to: parent.guid });
    expect(r).toMatchObject({ ok: true, transport: "bridge" });
    // A reply in that thread stays in it: the originator is the thread's first message.
    const r2 = await p.call("send", { to: ALICE, text: "more", reply_to: r.guid });
    expect(r2).toMatchObject({ ok: true, transport: "bridge" });
    const [more, answer] = (await p.call("messages.history", { chat_id: parent.chatId })).messages;
    expect(answer).toMatchObject({
      text: "answer",
      is_from_me: true,
      reply_to_guid: parent.guid,
      thread_originator_guid: parent.guid,
      reply_to_text: "question?",
    });
    expect(more).toMatchObject({ text: "more", reply_to_guid: r.guid, thread_originator_guid: parent.guid });
    expect(s.db.sent().map((x) => x.text)).toEqual(["answer", "more"]);
  });

  test("a file with reply_to (and a caption) is one threaded row; an older helper refuses it", async () => {
    const s = sim();
    s.db.setControl("bridge", true);
    const parent = s.db.inject({ from: ALICE, text: "photo?" });
    const file = join(mkdtempSync(join(tmpdir(), "sim-file-")), "a.txt");
    writeFileSync(file, "x");
    const p = rpc(s);
    await p.call("send", { chat_id: parent.chatId, file, text: "here", reply_to: parent.guid });
    const [row] = (await p.call("messages.history", { chat_id: parent.chatId, attachments: true })).messages;
    expect(row).toMatchObject({ text: "here", reply_to_guid: parent.guid, attachments: [expect.objectContaining({ filename: file })] });
    s.db.setControl("bridge_attachment_metadata", "0");
    expect((await p.request("send", { chat_id: parent.chatId, file, reply_to: parent.guid })).error).toMatchObject({
      code: -32603,
      data: expect.stringContaining("does not support captioned or threaded attachments"),
    });
    s.db.setControl("bridge", false);
    expect((await p.request("send", { chat_id: parent.chatId, text: "r", reply_to: parent.guid })).error).toEqual({
      code: -32602,
      message: "Invalid params",
      data: "reply_to requires bridge transport; AppleScript fallback cannot send threaded replies",
    });
  });
});

describe("imsg react (CLI, both versions)", () => {
  const react = (s: Sim, args: string[]) => {
    const r = Bun.spawnSync({ cmd: [s.cliPath, "react", ...args], env: process.env });
    return { code: r.exitCode, out: r.stdout.toString().trim(), err: r.stderr.toString().trim() };
  };
  // 0.15.1+ reports command errors on stderr, 0.9 on stdout.
  const errorText = (version: string, r: { out: string; err: string }) => (version === "0.9.0" ? r.out : r.err);

  test.each(["0.9.0", "0.15.6"])("%s: reacts to the newest incoming message only; --json prints the ReactResult", (version) => {
    const s = sim({ version });
    const old = s.db.inject({ from: ALICE, text: "old" });
    const newest = s.db.inject({ from: ALICE, chatId: old.chatId, text: "newest" });
    s.db.inject({ from: ALICE, chatId: old.chatId, text: "mine", isFromMe: true });
    s.db.inject({ from: ALICE, chatId: old.chatId, reaction: { to: old.guid, type: "love" } });
    expect(react(s, ["--chat-id", String(old.chatId), "-r", "like", "--db", s.dbPath, "--json"])).toMatchObject({
      code: 0,
      out: JSON.stringify({ success: true, chat_id: old.chatId, reaction_type: "like", reaction_emoji: "👍" }),
    });
    expect(react(s, ["--chat-id", String(old.chatId), "--reaction", "Emphasize"])).toMatchObject({ code: 0, out: `Sent ‼️ reaction to chat ${old.chatId}` });
    expect(s.db.reactionsOn(newest.guid).map((r) => [r.type, r.isFromMe])).toEqual([["like", true], ["emphasis", true]]);
    expect(s.db.reactionsOn(old.guid).map((r) => r.isFromMe)).toEqual([false]);
  });

  test.each(["0.9.0", "0.15.6"])("%s: custom emoji, unknown kind, unknown chat, no Accessibility → exit 1", (version) => {
    const s = sim({ version });
    const m = s.db.inject({ from: ALICE, text: "x" });
    const id = String(m.chatId);
    const cases: [string[], string][] = [
      [["--chat-id", id, "-r", "🎉"], "Unsupported reaction: custom emoji tapback '🎉' cannot be sent by Messages.app AppleScript automation"],
      [["--chat-id", id, "-r", "wave"], "Invalid reaction: wave\n\nValid reactions: love, like, dislike, laugh, emphasis, question"],
      [["--chat-id", "99", "-r", "like"], "Chat not found: 99"],
    ];
    s.db.setControl("react_denied", "1");
    cases.push([["--chat-id", id, "-r", "like"], "osascript is not allowed assistive access"]);
    for (const [args, text] of cases) {
      const r = react(s, args);
      expect(r.code).toBe(1);
      expect(errorText(version, r)).toContain(text);
    }
    expect(s.db.reactionsOn(m.guid)).toEqual([]);
  });

  test("react_delay_ms makes the run take that long; the trace has a line per run", () => {
    const trace = join(mkdtempSync(join(tmpdir(), "sim-trace-")), "trace.jsonl");
    const s = sim({ env: { IMSG_SIM_TRACE: trace } });
    const m = s.db.inject({ from: ALICE, text: "x" });
    s.db.setControl("react_delay_ms", 300);
    const t0 = Date.now();
    expect(react(s, ["--chat-id", String(m.chatId), "-r", "love"]).code).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    const lines = readFileSync(trace, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toEqual([expect.objectContaining({ k: "react", chat_id: String(m.chatId), reaction: "love" })]);
  });
});
