// Conformance of the imsg simulator (0.9 mode) with docs/IMSG-PROTOCOL.md, driven as a child process over real pipes.
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { createSim, RpcPipe, type RpcResponse, type Sim } from "./helpers/sim.ts";

const SELF = "+15550009999";
const ALICE = "+15550001111";
const BOB = "+15550002222";
const CAROL = "user@example.com";
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// Most watch tests set a long fallback poll so that only the change event can deliver rows.
function sim(env: Record<string, string> = {}): Sim {
  const s = createSim({ version: "0.9.0", env: { IMSG_SIM_POLL_MS: "60000", ...env } });
  cleanups.push(() => s.cleanup());
  return s;
}

function rpc(s: Sim, opts: { args?: string[]; env?: Record<string, string> } = {}): RpcPipe {
  const p = new RpcPipe(s.cliPath, opts);
  cleanups.push(async () => {
    if (p.child.exitCode === null && p.child.signalCode === null) await p.kill();
  });
  return p;
}

function cli(s: Sim, args: string[], env: Record<string, string> = {}) {
  const r = Bun.spawnSync({ cmd: [s.cliPath, ...args], env: { ...process.env, ...env } });
  return { code: r.exitCode, out: r.stdout.toString() };
}

/** A request whose response proves every earlier line has been fully handled (requests are serial). */
async function barrier(p: RpcPipe): Promise<void> {
  await p.call("chats.list", { limit: 1 });
}

describe("framing and envelopes (§1)", () => {
  test("invalid JSON is a -32700 parse error with id null and string data", async () => {
    const p = rpc(sim());
    p.write("{not json");
    const r = await p.responses.waitFor(() => true);
    expect(r.id).toBeNull();
    expect(r.error?.code).toBe(-32700);
    expect(r.error?.message).toBe("Parse error");
    expect(typeof r.error?.data).toBe("string");
  });

  test("non-object top-level values (batch, string, number, null, bool) are -32600 with id null", async () => {
    const p = rpc(sim());
    const inputs = ['[{"jsonrpc":"2.0","id":1,"method":"chats.list"}]', "[]", '"chats.list"', "42", "null", "true"];
    for (const line of inputs) p.write(line);
    const rs = await p.responses.waitForCount(inputs.length);
    for (const r of rs) {
      expect(r.id).toBeNull();
      expect(r.error).toEqual({ code: -32600, message: "Invalid Request", data: "request must be an object" });
    }
  });

  test("a jsonrpc string other than 2.0 is rejected with the id echoed; missing or numeric jsonrpc is accepted", async () => {
    const p = rpc(sim());
    p.write({ jsonrpc: "1.0", id: 7, method: "chats.list" });
    p.write({ id: 8, method: "chats.list" });
    p.write('{"jsonrpc":2.0,"id":9,"method":"chats.list"}');
    const [a, b, c] = await p.responses.waitForCount(3);
    expect(a).toEqual({ jsonrpc: "2.0", id: 7, error: { code: -32600, message: "Invalid Request", data: "jsonrpc must be 2.0" } });
    expect(b!.result).toEqual({ chats: [] });
    expect(c!.result).toEqual({ chats: [] });
  });

  test("a missing, empty or non-string method is -32600 'method is required' with the id echoed", async () => {
    const p = rpc(sim());
    p.write({ jsonrpc: "2.0", id: 1 });
    p.write({ jsonrpc: "2.0", id: 2, method: "" });
    p.write({ jsonrpc: "2.0", id: 3, method: 5 });
    const rs = await p.responses.waitForCount(3);
    expect(rs.map((r) => r.id)).toEqual([1, 2, 3]);
    for (const r of rs) expect(r.error).toEqual({ code: -32600, message: "Invalid Request", data: "method is required" });
  });

  test("unknown methods (status, ping, initialize, shutdown, chats.create) are -32601 with data = the method name", async () => {
    const p = rpc(sim());
    for (const m of ["status", "ping", "initialize", "shutdown", "chats.create", "nope"]) {
      const r = await p.request(m);
      expect(r.error).toEqual({ code: -32601, message: "Method not found", data: m });
    }
  });

  test.each([
    ["0.9.0", { result: { ok: true } }],
    ["0.7.0", { error: { code: -32601, message: "Method not found", data: "typing" } }],
  ])("typing and read exist from 0.7.3 on, with the bridge (IMSG_VERSION=%s)", async (version, expected) => {
    const s = sim({ IMSG_VERSION: version });
    s.db.setControl("bridge", true);
    const p = rpc(s);
    expect(await p.request("typing", { to: ALICE })).toMatchObject(expected);
  });

  test("typing/read: without the bridge -32603 (IMCore unavailable), with it ok; every call recorded with its chat", async () => {
    const s = sim();
    const { chatId } = s.db.inject({ from: ALICE, text: "hi" });
    const p = rpc(s);
    const refused = await p.request("typing", { chat_id: chatId, typing: true });
    expect(refused.error).toMatchObject({ code: -32603, data: expect.stringContaining("Typing indicator failed") });
    expect((await p.request("read", { chat_id: chatId })).error).toMatchObject({ code: -32603, data: expect.stringContaining("read") });
    s.db.setControl("bridge", true);
    expect((await p.request("typing", { to: ALICE, typing: false })).result).toEqual({ ok: true });
    expect((await p.request("read", { chat_guid: `iMessage;-;${ALICE}` })).result).toEqual({ ok: true });
    expect((await p.request("typing", { chat_id: 999 })).error).toMatchObject({ code: -32602, data: "unknown chat_id 999" });
    const ev = s.db.presenceEvents();
    expect(ev.map(({ method, chatId: c, typing, ok }) => ({ method, chatId: c, typing, ok }))).toEqual([
      { method: "typing", chatId, typing: true, ok: false },
      { method: "read", chatId, typing: undefined, ok: false },
      { method: "typing", chatId, typing: false, ok: true },
      { method: "read", chatId, typing: undefined, ok: true },
    ]);
    expect(ev.every((e) => e.target === `iMessage;-;${ALICE}` && e.at > Date.now() - 60_000)).toBe(true);
    expect(s.db.presenceEvents({ method: "read" })).toHaveLength(2);
  });

  test("the id is echoed unchanged whatever its type, including null", async () => {
    const p = rpc(sim());
    const ids = ["1", 1, 2.5, true, { a: [1, "x"] }, null, [3]];
    for (const id of ids) p.write({ jsonrpc: "2.0", id, method: "chats.list" });
    const rs = await p.responses.waitForCount(ids.length);
    expect(rs.map((r) => r.id)).toEqual(ids);
    for (const r of rs) expect(r.result).toEqual({ chats: [] });
  });

  test("an id-less request gets no response on success but an error with id null on failure", async () => {
    const p = rpc(sim());
    p.write({ jsonrpc: "2.0", method: "chats.list" });
    p.write({ jsonrpc: "2.0", method: "nope" });
    p.write({ jsonrpc: "2.0", method: "messages.history", params: {} });
    p.write({ jsonrpc: "2.0", id: "last", method: "chats.list" });
    await p.responses.waitFor((r) => r.id === "last");
    expect(p.responses.items.map((r) => [r.id, r.error?.code])).toEqual([
      [null, -32601],
      [null, -32602],
      ["last", undefined],
    ]);
  });

  test("blank lines are skipped; whitespace and CRLF around a request are trimmed", async () => {
    const p = rpc(sim());
    p.write("");
    p.write("   \t ");
    p.write('  {"jsonrpc":"2.0","id":1,"method":"chats.list"}  \r');
    p.write('{"jsonrpc":"2.0","id":2,"method":"chats.list"}');
    await p.responses.waitFor((r) => r.id === 2);
    expect(p.responses.items.map((r) => r.id)).toEqual([1, 2]);
  });

  test("a pretty-printed request fails line by line: one parse error per fragment", async () => {
    const p = rpc(sim());
    p.write('{\n"id": 1,\n"method": "chats.list"\n}');
    const rs = await p.responses.waitForCount(4);
    for (const r of rs) expect(r.error?.code).toBe(-32700);
  });

  test("params that are not an object are treated as {}", async () => {
    const p = rpc(sim());
    const r = await p.request("chats.list", [5]);
    expect(r.result).toEqual({ chats: [] });
  });

  test("forward slashes are escaped as \\/ on the wire", async () => {
    const p = rpc(sim());
    await p.request("a/b");
    expect(p.lines.items.at(-1)).toContain('"data":"a\\/b"');
    expect(p.responses.items.at(-1)!.error!.data).toBe("a/b");
  });

  test("requests are answered strictly in order; a slow send delays the requests behind it", async () => {
    const s = sim({ IMSG_SIM_SEND_DELAY_MS: "300" });
    const p = rpc(s);
    await barrier(p);
    const t0 = Date.now();
    p.write({ jsonrpc: "2.0", id: "send", method: "send", params: { to: ALICE, text: "slow" } });
    p.write({ jsonrpc: "2.0", id: "fast", method: "chats.list" });
    const fast = await p.responses.waitFor((r) => r.id === "fast");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(fast.result.chats).toHaveLength(1); // the send had landed before chats.list ran
    expect(p.responses.items.map((r) => r.id)).toEqual([1, "send", "fast"]);
  });

  test("watch notifications interleave with a request that is still in progress", async () => {
    const s = sim({ IMSG_SIM_SEND_DELAY_MS: "2000" });
    const p = rpc(s);
    const { subscription } = await p.call("watch.subscribe", { debounce_ms: 0 });
    p.write({ jsonrpc: "2.0", id: "send", method: "send", params: { to: ALICE, text: "slow" } });
    s.db.inject({ from: BOB, text: "while sending" });
    const n = await p.notifications.waitFor((x) => x.params.message?.text === "while sending");
    expect(n.params.subscription).toBe(subscription);
    expect(p.responses.items.some((r) => r.id === "send")).toBe(false);
    await p.responses.waitFor((r) => r.id === "send");
  });

  test("stdin EOF cancels subscriptions and exits 0", async () => {
    const s = sim();
    s.db.inject({ from: ALICE, text: "x" });
    const p = rpc(s);
    await p.call("watch.subscribe", { since_rowid: -1, debounce_ms: 0 });
    expect(await p.close()).toBe(0);
  });
});

describe("chats.list (§2.1)", () => {
  test("lists only chats with messages, newest first, with the RPC Chat shape", async () => {
    const s = sim();
    s.db.ensureGroupChat({ identifier: "chat999", participants: [ALICE] }); // no messages: not listed
    s.db.inject({ from: ALICE, text: "old", createdAt: new Date(Date.now() - 60_000) });
    s.db.inject({ from: BOB, text: "new", group: { identifier: "chat123", name: "Family", participants: [CAROL, ALICE] } });
    const p = rpc(s);
    const { chats } = await p.call("chats.list");
    expect(chats.map((c: any) => c.identifier)).toEqual(["chat123", ALICE]);
    expect(chats[0]).toEqual({
      id: expect.any(Number),
      identifier: "chat123",
      guid: "iMessage;+;chat123",
      name: "Family",
      service: "iMessage",
      last_message_at: expect.stringMatching(ISO),
      participants: [ALICE, BOB, CAROL].sort(),
      is_group: true,
    });
    expect(chats[1]).toMatchObject({ guid: `iMessage;-;${ALICE}`, name: ALICE, participants: [ALICE], is_group: false });
  });

  test.each([
    ["limit below 1 is raised to 1", 0, 1],
    ["numeric string limit", "1", 1],
    ["non-numeric limit means the default (20)", "abc", 2],
  ])("%s", async (_name, limit, expected) => {
    const s = sim();
    s.db.inject({ from: ALICE, text: "a" });
    s.db.inject({ from: BOB, text: "b" });
    const { chats } = await rpc(s).call("chats.list", { limit });
    expect(chats).toHaveLength(expected);
  });

  test("chat info is cached for the process lifetime: a rename stays invisible until restart", async () => {
    const s = sim();
    const { chatId } = s.db.inject({ from: ALICE, text: "hi", group: { identifier: "chat5", name: "Before" } });
    const p = rpc(s);
    expect((await p.call("chats.list")).chats[0].name).toBe("Before");
    s.db.sql.query("UPDATE chat SET display_name = 'After' WHERE ROWID = ?").run(chatId);
    expect((await p.call("chats.list")).chats[0].name).toBe("Before");
    expect((await rpc(s).call("chats.list")).chats[0].name).toBe("After");
  });
});

describe("messages.history (§2.2)", () => {
  test.each([
    ["missing chat_id", {}],
    ["non-numeric chat_id", { chat_id: "abc" }],
  ])("%s → -32602 chat_id is required", async (_n, params) => {
    const r = await rpc(sim()).request("messages.history", params);
    expect(r.error).toEqual({ code: -32602, message: "Invalid params", data: "chat_id is required" });
  });

  test.each(["yesterday", "", "2026-05-16T15:08:35", "2026-05-16"])("bad ISO date %p → -32603 Invalid ISO8601 date", async (bad) => {
    const r = await rpc(sim()).request("messages.history", { chat_id: 1, start: bad });
    expect(r.error).toEqual({ code: -32603, message: "Internal error", data: `Invalid ISO8601 date: ${bad}` });
  });

  test("newest first, tapbacks hidden, reactions filled, attachments only on request", async () => {
    const s = sim();
    const file = join(s.dir, "pic.jpg");
    writeFileSync(file, "jpeg");
    const a = s.db.inject({ from: ALICE, text: "first", createdAt: new Date(Date.now() - 3000) });
    s.db.inject({ from: ALICE, attachments: [{ path: file }], createdAt: new Date(Date.now() - 2000) });
    s.db.inject({ from: ALICE, text: "", reaction: { to: a.guid, type: "love" }, createdAt: new Date(Date.now() - 1000) });
    const p = rpc(s);
    const { messages } = await p.call("messages.history", { chat_id: a.chatId });
    expect(messages.map((m: any) => m.text)).toEqual(["\ufffc", "first"]);
    expect(messages[0].attachments).toEqual([]);
    expect(messages[1].reactions).toEqual([
      { id: 3, type: "love", emoji: "❤️", sender: ALICE, is_from_me: false, created_at: expect.stringMatching(ISO) },
    ]);
    const withFiles = await p.call("messages.history", { chat_id: String(a.chatId), attachments: "true" });
    expect(withFiles.messages[0].attachments).toEqual([
      {
        filename: file,
        transfer_name: "pic.jpg",
        uti: "public.jpeg",
        mime_type: "image/jpeg",
        total_bytes: 4,
        is_sticker: false,
        original_path: file,
        missing: false,
      },
    ]);
  });

  test("participants and date filters apply before the limit; start inclusive, end exclusive", async () => {
    const s = sim();
    const base = Date.parse("2026-05-16T10:00:00.000Z");
    const { chatId } = s.db.inject({ from: ALICE, text: "a0", group: { identifier: "chat1" }, createdAt: new Date(base) });
    s.db.inject({ from: BOB, text: "b1", chatId, createdAt: new Date(base + 1000) });
    s.db.inject({ from: ALICE, text: "a2", chatId, createdAt: new Date(base + 2000) });
    s.db.inject({ from: BOB, text: "b3", chatId, createdAt: new Date(base + 3000) });
    const p = rpc(s);
    const texts = async (params: object) => (await p.call("messages.history", { chat_id: chatId, ...params })).messages.map((m: any) => m.text);
    expect(await texts({ participants: [ALICE.toLowerCase()], limit: 1 })).toEqual(["a2"]);
    expect(await texts({ participants: `${BOB} , nobody@example.com` })).toEqual(["b3", "b1"]);
    expect(await texts({ start: "2026-05-16T10:00:01Z", end: "2026-05-16T10:00:03.000Z" })).toEqual(["a2", "b1"]);
    expect(await texts({ start: "2026-05-16T12:00:02+02:00", limit: "1" })).toEqual(["b3"]);
    expect(await texts({ limit: -5 })).toEqual(["b3"]);
  });

  test("an unknown chat_id returns an empty list", async () => {
    expect(await rpc(sim()).call("messages.history", { chat_id: 4242 })).toEqual({ messages: [] });
  });

  test("replies carry reply_to_guid (prefix stripped), thread originator and the parent's text and sender", async () => {
    const s = sim();
    const parent = s.db.inject({ from: ALICE, text: "question?" });
    s.db.inject({ from: SELF, chatId: parent.chatId, isFromMe: true, text: "answer", replyToGuid: parent.guid, threadOriginatorGuid: parent.guid });
    const { messages } = await rpc(s).call("messages.history", { chat_id: parent.chatId });
    expect(messages[0]).toMatchObject({ reply_to_guid: parent.guid, thread_originator_guid: parent.guid, reply_to_text: "question?", reply_to_sender: ALICE });
    expect(messages[1].reply_to_guid).toBeUndefined();
  });
});

describe("watch.subscribe / watch.unsubscribe (§2.3, §2.4, §3, §5)", () => {
  test("subscription ids start at 1 per process, also for id-less subscribes", async () => {
    const s = sim();
    s.db.inject({ from: ALICE, text: "backlog" });
    const p = rpc(s);
    p.write({ jsonrpc: "2.0", method: "watch.subscribe", params: { since_rowid: -1 } });
    const n = await p.notifications.waitFor((x) => x.method === "message");
    expect(n.params.subscription).toBe(1);
    expect(await p.call("watch.subscribe")).toEqual({ subscription: 2 });
    expect(await p.call("watch.subscribe")).toEqual({ subscription: 3 });
    expect(await rpc(s).call("watch.subscribe")).toEqual({ subscription: 1 });
  });

  test.each([
    ["negative", -1],
    ["fractional", 1.5],
    ["non-numeric string", "soon"],
    ["negative string", "-5"],
    ["bool", true],
  ])("debounce_ms %s → -32602", async (_n, debounce_ms) => {
    const r = await rpc(sim()).request("watch.subscribe", { debounce_ms });
    expect(r.error).toEqual({ code: -32602, message: "Invalid params", data: "debounce_ms must be a non-negative integer" });
  });

  test("debounce_ms accepts numeric strings and the debounceMs alias", async () => {
    const p = rpc(sim());
    expect(await p.call("watch.subscribe", { debounce_ms: "25" })).toEqual({ subscription: 1 });
    expect(await p.call("watch.subscribe", { debounceMs: 0 })).toEqual({ subscription: 2 });
    expect((await p.request("watch.subscribe", { debounceMs: -2 })).error?.code).toBe(-32602);
  });

  test("bad start/end → -32603 Invalid ISO8601 date", async () => {
    const r = await rpc(sim()).request("watch.subscribe", { end: "tomorrow" });
    expect(r.error).toEqual({ code: -32603, message: "Internal error", data: "Invalid ISO8601 date: tomorrow" });
  });

  test("watch.unsubscribe: missing → -32602; unknown or repeated ids → ok", async () => {
    const p = rpc(sim());
    expect((await p.request("watch.unsubscribe", {})).error).toEqual({ code: -32602, message: "Invalid params", data: "subscription is required" });
    expect((await p.request("watch.unsubscribe", { subscription: "x" })).error?.data).toBe("subscription is required");
    const { subscription } = await p.call("watch.subscribe");
    expect(await p.call("watch.unsubscribe", { subscription })).toEqual({ ok: true });
    expect(await p.call("watch.unsubscribe", { subscription })).toEqual({ ok: true });
    expect(await p.call("watch.unsubscribe", { subscription: 77 })).toEqual({ ok: true });
  });

  test.each([
    ["omitted → only rows after the current max", undefined, []],
    ["0 → same as omitted", 0, []],
    ["non-numeric → same as omitted", "abc", []],
    ["N is exclusive", 1, [2, 3]],
    ["numeric string", "2", [3]],
    ["negative → replay everything", -1, [1, 2, 3]],
  ])("since_rowid %s", async (_n, since_rowid, backlog) => {
    const s = sim();
    for (const t of ["one", "two", "three"]) s.db.inject({ from: ALICE, text: t });
    const p = rpc(s);
    const { subscription } = await p.call("watch.subscribe", { debounce_ms: 0, ...(since_rowid === undefined ? {} : { since_rowid }) });
    await barrier(p); // the first poll ran right after the subscribe response
    expect(p.messages(subscription).map((m) => m.id)).toEqual(backlog);
    s.db.inject({ from: ALICE, text: "four" });
    await p.notifications.waitFor((n) => n.params.message?.id === 4);
    expect(p.messages(subscription).map((m) => m.id)).toEqual([...backlog, 4]);
  });

  test("at most 100 rows per poll; the rest drains on the next trigger", async () => {
    const s = sim();
    s.db.sql.transaction(() => {
      for (let i = 1; i <= 150; i++) s.db.inject({ from: ALICE, text: `m${i}` });
    })();
    const p = rpc(s);
    const { subscription } = await p.call("watch.subscribe", { since_rowid: -1, debounce_ms: 0 });
    await barrier(p);
    expect(p.messages(subscription).map((m) => m.id)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    s.db.inject({ from: ALICE, text: "trigger" });
    await p.notifications.waitForCount(151, (n) => n.method === "message");
    expect(p.messages(subscription).map((m) => m.id)).toEqual(Array.from({ length: 151 }, (_, i) => i + 1));
  });

  test("a DM injected by another connection arrives via the change event with the full Message shape", async () => {
    const s = sim();
    const p = rpc(s);
    const { subscription } = await p.call("watch.subscribe", { debounce_ms: 0 });
    const r = s.db.inject({ from: ALICE, text: "hello 👋" });
    const n = await p.notifications.waitFor((x) => x.method === "message");
    expect(n.params).toEqual({
      subscription,
      message: {
        id: r.rowid,
        chat_id: r.chatId,
        guid: r.guid,
        sender: ALICE,
        is_from_me: false,
        text: "hello 👋",
        created_at: expect.stringMatching(ISO),
        attachments: [],
        reactions: [],
        destination_caller_id: SELF,
        chat_identifier: ALICE,
        chat_guid: `iMessage;-;${ALICE}`,
        chat_name: ALICE,
        participants: [ALICE],
        is_group: false,
      },
    });
  });

  test("a group message injected from another process (imsg-sim inject) arrives with group fields", async () => {
    const s = sim();
    const p = rpc(s);
    await p.call("watch.subscribe", { debounce_ms: 0 });
    const out = cli(s, ["inject", "--from", BOB, "--text", "hi all", "--group", "chat77", "--name", "Crew", "--participant", CAROL]);
    expect(out.code).toBe(0);
    const injected = JSON.parse(out.out);
    const n = await p.notifications.waitFor((x) => x.method === "message");
    expect(n.params.message).toMatchObject({
      id: injected.rowid,
      guid: injected.guid,
      chat_id: injected.chat_id,
      sender: BOB,
      chat_identifier: "chat77",
      chat_guid: "iMessage;+;chat77",
      chat_name: "Crew",
      participants: [BOB, CAROL],
      is_group: true,
    });
  });

  test("chat_id limits the stream to one chat", async () => {
    const s = sim();
    const alice = s.db.inject({ from: ALICE, text: "a" });
    const p = rpc(s);
    const { subscription } = await p.call("watch.subscribe", { chat_id: alice.chatId, debounce_ms: 0 });
    s.db.inject({ from: BOB, text: "elsewhere" });
    s.db.inject({ from: ALICE, text: "here" });
    await p.notifications.waitFor((n) => n.params.message?.text === "here");
    expect(p.messages(subscription).map((m) => m.text)).toEqual(["here"]);
  });

  test("participants filter drops rows but the cursor still moves past them", async () => {
    const s = sim();
    const p = rpc(s);
    const { subscription } = await p.call("watch.subscribe", { participants: [ALICE], debounce_ms: 0 });
    s.db.inject({ from: BOB, text: "skip me" });
    s.db.inject({ from: ALICE, text: "keep me" });
    await p.notifications.waitFor((n) => n.params.message?.text === "keep me");
    expect(p.messages(subscription).map((m) => m.text)).toEqual(["keep me"]);
  });

  test("attachments are filled only with attachments:true, with total_bytes/original_path/missing", async () => {
    const s = sim();
    const file = join(s.dir, "photo.png");
    writeFileSync(file, "12345");
    const p = rpc(s);
    const plain = (await p.call("watch.subscribe", { debounce_ms: 0 })).subscription;
    const rich = (await p.call("watch.subscribe", { debounce_ms: 0, attachments: true })).subscription;
    s.db.inject({ from: ALICE, attachments: [{ path: file }, { path: "~/Library/Messages/Attachments/zz/gone.heic", totalBytes: 9 }] });
    await p.notifications.waitForCount(2, (n) => n.method === "message");
    expect(p.messages(plain)[0].attachments).toEqual([]);
    expect(p.messages(rich)[0].attachments).toEqual([
      {
        filename: file,
        transfer_name: "photo.png",
        uti: "public.png",
        mime_type: "image/png",
        total_bytes: 5,
        is_sticker: false,
        original_path: file,
        missing: false,
      },
      {
        filename: "~/Library/Messages/Attachments/zz/gone.heic",
        transfer_name: "gone.heic",
        uti: "public.heic",
        mime_type: "image/heic",
        total_bytes: 9,
        is_sticker: false,
        original_path: join(homedir(), "Library/Messages/Attachments/zz/gone.heic"),
        missing: true,
      },
    ]);
    expect(p.messages(rich)[0].text).toBe("\ufffc\ufffc");
    expect(p.lines.items.some((l) => l.includes(`"original_path":"${file.replaceAll("/", "\\/")}"`))).toBe(true);
  });

  test("tapback rows arrive only with include_reactions, as reaction events", async () => {
    const s = sim();
    const target = s.db.inject({ from: ALICE, text: "hi" });
    const p = rpc(s);
    const without = (await p.call("watch.subscribe", { debounce_ms: 0 })).subscription;
    const withR = (await p.call("watch.subscribe", { debounce_ms: 0, include_reactions: 1 })).subscription;
    s.db.inject({ from: BOB, chatId: target.chatId, reaction: { to: target.guid, type: "like" } });
    s.db.inject({ from: BOB, chatId: target.chatId, reaction: { to: target.guid, type: "custom", emoji: "🎉" } });
    s.db.inject({ from: BOB, chatId: target.chatId, text: "after" });
    await p.notifications.waitForCount(4, (n) => n.method === "message");
    expect(p.messages(without).map((m) => m.text)).toEqual(["after"]);
    const [like, custom] = p.messages(withR);
    expect(like).toMatchObject({
      text: "Liked “hi”",
      is_reaction: true,
      reaction_type: "like",
      reaction_emoji: "👍",
      is_reaction_add: true,
      reacted_to_guid: target.guid,
    });
    expect(custom).toMatchObject({ text: "Reacted 🎉 to “hi”", reaction_type: "custom", reaction_emoji: "🎉" });
    expect(like.reply_to_guid).toBeUndefined();
  });

  test("a removal cancels the earlier add in the reactions list", async () => {
    const s = sim();
    const target = s.db.inject({ from: ALICE, text: "hi" });
    s.db.inject({ from: BOB, chatId: target.chatId, reaction: { to: target.guid, type: "love" } });
    s.db.inject({ from: ALICE, chatId: target.chatId, reaction: { to: target.guid, type: "laugh" } });
    s.db.inject({ from: BOB, chatId: target.chatId, reaction: { to: target.guid, type: "love", remove: true } });
    const { messages } = await rpc(s).call("messages.history", { chat_id: target.chatId });
    expect(messages[0].reactions.map((r: any) => [r.type, r.sender])).toEqual([["laugh", ALICE]]);
  });

  test("debounce_ms delays delivery after a change event", async () => {
    const s = sim();
    const p = rpc(s);
    await p.call("watch.subscribe", { debounce_ms: 400 });
    await barrier(p); // the first (undebounced) poll is done
    const t0 = Date.now();
    s.db.inject({ from: ALICE, text: "later" });
    await p.notifications.waitFor((n) => n.method === "message");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(380);
  });

  test("the fallback poll delivers rows even when the debounce never fires", async () => {
    const s = sim({ IMSG_SIM_POLL_MS: "50" });
    const p = rpc(s);
    await p.call("watch.subscribe", { debounce_ms: 600_000 });
    await barrier(p);
    s.db.inject({ from: ALICE, text: "polled" });
    const n = await p.notifications.waitFor((x) => x.method === "message");
    expect(n.params.message.text).toBe("polled");
  });

  test("old rows with new ROWIDs are emitted by ROWID, keeping their old created_at", async () => {
    const s = sim();
    const p = rpc(s);
    await p.call("watch.subscribe", { debounce_ms: 0 });
    const old = new Date("2025-01-02T03:04:05.678Z");
    s.db.inject({ from: ALICE, text: "synced late", createdAt: old });
    const n = await p.notifications.waitFor((x) => x.method === "message");
    expect(n.params.message.created_at).toBe("2025-01-02T03:04:05.678Z");
  });

  test("rows joined to no chat carry chat_id 0 and empty chat fields", async () => {
    const s = sim();
    const p = rpc(s);
    await p.call("watch.subscribe", { debounce_ms: 0 });
    s.db.inject({ from: ALICE, text: "orphan", chatId: 0 });
    const n = await p.notifications.waitFor((x) => x.method === "message");
    expect(n.params.message).toMatchObject({ chat_id: 0, chat_identifier: "", chat_guid: "", chat_name: "", participants: [], is_group: false });
  });

  test("a URL-preview row repeating chat, direction, sender and text within 90 s is dropped", async () => {
    const s = sim();
    const p = rpc(s);
    const { subscription } = await p.call("watch.subscribe", { debounce_ms: 0 });
    const link = { from: ALICE, text: "https://example.com", balloonBundleId: "com.apple.messages.URLBalloonProvider" };
    s.db.inject(link);
    s.db.inject(link);
    s.db.inject({ from: ALICE, text: "https://example.com" }); // not a balloon row: kept
    s.db.inject({ from: ALICE, text: "done" });
    await p.notifications.waitFor((n) => n.params.message?.text === "done");
    expect(p.messages(subscription).map((m) => m.id)).toEqual([1, 3, 4]);
  });

  test("after unsubscribe a subscription gets nothing more", async () => {
    const s = sim();
    const p = rpc(s);
    const first = (await p.call("watch.subscribe", { debounce_ms: 0 })).subscription;
    await p.call("watch.unsubscribe", { subscription: first });
    const second = (await p.call("watch.subscribe", { debounce_ms: 0 })).subscription;
    s.db.inject({ from: ALICE, text: "x" });
    await p.notifications.waitFor((n) => n.params.subscription === second);
    expect(p.messages(first)).toEqual([]);
  });

  test("a failing poll sends an error notification and the subscription goes silent", async () => {
    const s = sim();
    s.db.inject({ from: ALICE, text: "x" });
    const p = rpc(s);
    const dead = (await p.call("watch.subscribe", { debounce_ms: 0 })).subscription;
    s.db.sql.exec("ALTER TABLE chat_message_join RENAME TO cmj_away");
    s.db.touch();
    const err = await p.notifications.waitFor((n) => n.method === "error");
    expect(err.params.subscription).toBe(dead);
    expect(err.params.error.message).toContain("chat_message_join");
    s.db.sql.exec("ALTER TABLE cmj_away RENAME TO chat_message_join");
    const live = (await p.call("watch.subscribe", { debounce_ms: 0 })).subscription;
    s.db.inject({ from: ALICE, text: "after repair" });
    await p.notifications.waitFor((n) => n.params.subscription === live && n.method === "message");
    expect(p.messages(dead)).toEqual([]);
    expect(await p.call("watch.unsubscribe", { subscription: dead })).toEqual({ ok: true });
  });
});

describe("send (§6)", () => {
  const invalid = (data: string) => ({ code: -32602, message: "Invalid params", data });

  test("validation runs in the documented order with the exact strings", async () => {
    const s = sim();
    const blank = Number(s.db.sql.query("INSERT INTO chat (guid, chat_identifier, service_name) VALUES ('', '', 'iMessage')").run().lastInsertRowid);
    const p = rpc(s);
    const rows: [string, object, string][] = [
      ["service first (case-sensitive)", { service: "iMessage", transport: "x", to: ALICE, chat_id: 1 }, "invalid service"],
      ["then transport", { service: "sms", transport: "carrier-pigeon", to: ALICE, chat_id: 1 }, "invalid transport"],
      ["then to vs chat_*", { to: ALICE, chat_guid: "iMessage;-;x" }, "use to or chat_*; not both"],
      ["then a target at all", { text: "hi" }, "to is required for direct sends"],
      ["empty chat_* strings are no target", { chat_identifier: "", chat_guid: "", text: "hi" }, "to is required for direct sends"],
      ["then text or file", { to: ALICE, text: "" }, "text or file is required"],
      ["text/file before the chat lookup", { chat_id: 999 }, "text or file is required"],
      ["then the chat lookup", { chat_id: 999, text: "hi" }, "unknown chat_id 999"],
      ["then a chat without identifier and guid", { chat_id: blank, text: "hi" }, "missing chat identifier or guid"],
    ];
    for (const [name, params, data] of rows) {
      const r = await p.request("send", params);
      expect({ name, error: r.error }).toEqual({ name, error: invalid(data) });
    }
    expect(s.db.sent()).toEqual([]);
  });

  test("a send to an existing DM writes an is_from_me row that the watch reports with the returned id/guid", async () => {
    const s = sim();
    const { chatId } = s.db.inject({ from: ALICE, text: "ping" });
    const p = rpc(s);
    const { subscription } = await p.call("watch.subscribe", { debounce_ms: 0 });
    const result = await p.call("send", { to: ALICE, text: "pong", transport: "AppleScript", service: "imessage" });
    expect(result).toEqual({ ok: true, transport: "applescript", id: expect.any(Number), guid: expect.any(String) });
    const [row] = s.db.sent();
    expect(row).toMatchObject({ rowid: result.id, guid: result.guid, text: "pong", chatId, chatGuid: `iMessage;-;${ALICE}`, recipient: ALICE });
    const n = await p.notifications.waitFor((x) => x.params.message?.id === result.id);
    expect(n.params.subscription).toBe(subscription);
    expect(n.params.message).toMatchObject({ guid: result.guid, is_from_me: true, text: "pong", chat_id: chatId, destination_caller_id: SELF });
  });

  test.each([
    ["a new handle gets an iMessage;-; chat (phone normalised to E.164)", { to: "(555) 000-3333" }, "iMessage;-;+15550003333"],
    ["service sms gets an SMS;-; chat", { to: "+15550004444", service: "sms" }, "SMS;-;+15550004444"],
    ["an email handle", { to: CAROL }, `iMessage;-;${CAROL}`],
    ["a handle-like chat_identifier is a direct buddy send", { chat_identifier: "+15550005555" }, "iMessage;-;+15550005555"],
  ])("%s", async (_n, params, guid) => {
    const s = sim();
    const result = await rpc(s).call("send", { text: "hello", ...params });
    expect(result.id).toBeGreaterThan(0);
    expect(s.db.sent()).toMatchObject([{ text: "hello", chatGuid: guid }]);
  });

  test("group sends by chat_id, chat_guid or chat_identifier land in the group with sender = own handle", async () => {
    const s = sim();
    const { chatId } = s.db.inject({ from: BOB, text: "hi", group: { identifier: "chat42", participants: [ALICE] } });
    const p = rpc(s);
    await p.call("watch.subscribe", { debounce_ms: 0 });
    await p.call("send", { chat_id: chatId, text: "by id" });
    await p.call("send", { chat_guid: "iMessage;+;chat42", text: "by guid" });
    await p.call("send", { chat_identifier: "chat42", chat_guid: "", text: "by identifier" });
    expect(s.db.sent().map((r) => [r.text, r.chatId, r.recipient])).toEqual([
      ["by id", chatId, "chat42"],
      ["by guid", chatId, "chat42"],
      ["by identifier", chatId, "chat42"],
    ]);
    const n = await p.notifications.waitFor((x) => x.params.message?.text === "by id");
    expect(n.params.message).toMatchObject({ sender: SELF, is_from_me: true, is_group: true });
  });

  test("an unresolvable chat_guid fails like AppleScript does (-32603)", async () => {
    const r = await rpc(sim()).request("send", { chat_guid: "iMessage;+;chat000", text: "x" });
    expect(r.error?.code).toBe(-32603);
    expect(r.error?.data).toStartWith("AppleScript failed: ");
  });

  test("a missing file → -32603 'AppleScript failed: Attachment not found at <abs path>', nothing sent", async () => {
    const s = sim();
    const p = rpc(s);
    const abs = join(s.dir, "nope.png");
    expect((await p.request("send", { to: ALICE, text: "see", file: abs })).error).toEqual({
      code: -32603,
      message: "Internal error",
      data: `AppleScript failed: Attachment not found at ${abs}`,
    });
    expect((await p.request("send", { to: ALICE, file: "~/no-such-imsg-sim-file.png" })).error?.data).toBe(
      `AppleScript failed: Attachment not found at ${join(homedir(), "no-such-imsg-sim-file.png")}`,
    );
    expect(s.db.sent()).toEqual([]);
  });

  test("text + file are two rows (text first); a file-only send returns no id/guid", async () => {
    const s = sim();
    const file = join(s.dir, "doc.pdf");
    writeFileSync(file, "%PDF");
    const p = rpc(s);
    const both = await p.call("send", { to: ALICE, text: "here", file });
    const fileOnly = await p.call("send", { to: ALICE, file });
    expect(fileOnly).toEqual({ ok: true, transport: "applescript" });
    const rows = s.db.sent();
    expect(rows.map((r) => [r.text, r.file])).toEqual([
      ["here", undefined],
      ["\ufffc", file],
      ["\ufffc", file],
    ]);
    expect(both.id).toBe(rows[0]!.rowid);
  });

  test("transport bridge: validation errors, then the bridge-not-ready failure", async () => {
    const s = sim();
    const { chatId } = s.db.inject({ from: ALICE, text: "hi" });
    const file = join(s.dir, "a.txt");
    writeFileSync(file, "x");
    const p = rpc(s);
    expect((await p.request("send", { transport: "bridge", to: BOB, text: "x" })).error).toEqual(invalid("bridge transport requires an existing chat target"));
    expect((await p.request("send", { transport: "bridge", chat_id: chatId, text: "x", file })).error).toEqual(
      invalid("bridge transport does not support text and file together"),
    );
    expect((await p.request("send", { transport: "bridge", to: ALICE, text: "x" })).error?.code).toBe(-32603);
    expect(s.db.sent()).toEqual([]);
  });

  test.each([
    ["0.5.0", { ok: true }],
    ["0.7.0", { ok: true, id: expect.any(Number), guid: expect.any(String) }],
  ])("the result follows IMSG_VERSION=%s", async (version, shape) => {
    const result = await rpc(sim({ IMSG_VERSION: version })).call("send", { to: ALICE, text: "v" });
    expect(result).toEqual(shape);
  });
});

describe("failure modes", () => {
  const fda = (r: RpcResponse, path: string) => {
    expect(r.error?.code).toBe(-32603);
    expect(r.error?.message).toBe("Internal error");
    expect(r.error?.data).toContain("Permission Error");
    expect(r.error?.data).toContain("Full Disk Access");
    expect(r.error?.data).toContain(`The Messages database at ${path} requires`);
  };

  test("IMSG_SIM_FDA=1: every request (also id-less) gets the FDA error, parse errors stay normal, exit 1 at EOF", async () => {
    const s = sim({ IMSG_SIM_FDA: "1" });
    const p = rpc(s);
    p.write({ jsonrpc: "2.0", id: 1, method: "chats.list" });
    p.write({ jsonrpc: "2.0", method: "watch.subscribe" });
    p.write("{oops");
    p.write({ jsonrpc: "2.0", id: 2, method: "nope" });
    const [a, b, c, d] = await p.responses.waitForCount(4);
    fda(a!, s.dbPath);
    expect(a!.id).toBe(1);
    fda(b!, s.dbPath);
    expect(b!.id).toBeNull();
    expect(c!.error?.code).toBe(-32700);
    fda(d!, s.dbPath);
    expect(await p.close()).toBe(1);
  });

  test("a --db path that does not exist behaves like missing Full Disk Access", async () => {
    const s = sim();
    const missing = join(s.dir, "nowhere", "chat.db");
    const p = rpc(s, { args: ["--db", missing] });
    fda(await p.request("chats.list"), missing);
    fda(await p.request("send", { to: ALICE, text: "x" }), missing);
    expect(await p.close()).toBe(1);
  });

  test("IMSG_SIM_FDA=legacy: the banner goes to stdout as text and the process exits 1 without reading stdin", async () => {
    const p = rpc(sim({ IMSG_SIM_FDA: "legacy" }));
    expect(await p.exited).toBe(1);
    expect(p.lines.items.join("\n")).toContain("⚠️  Permission Error: Cannot access Messages database");
    expect(p.responses.items).toEqual([]);
  });

  test("IMSG_SIM_CRASH_AFTER=2: request 3 kills the process with exit 1 and no response", async () => {
    const p = rpc(sim({ IMSG_SIM_CRASH_AFTER: "2" }));
    await p.call("chats.list");
    await p.call("chats.list");
    p.write({ jsonrpc: "2.0", id: 3, method: "chats.list" });
    expect(await p.exited).toBe(1);
    expect(p.responses.items.map((r) => r.id)).toEqual([1, 2]);
  });

  test("IMSG_SIM_HANG_AFTER=1: request 2 is never answered and EOF goes unnoticed, but watch keeps flowing", async () => {
    const s = sim({ IMSG_SIM_HANG_AFTER: "1" });
    const p = rpc(s);
    await p.call("watch.subscribe", { debounce_ms: 0 });
    p.write({ jsonrpc: "2.0", id: 2, method: "chats.list" });
    s.db.inject({ from: ALICE, text: "still watching" });
    await p.notifications.waitFor((n) => n.params.message?.text === "still watching");
    p.child.stdin.end();
    s.db.inject({ from: ALICE, text: "after EOF" });
    await p.notifications.waitFor((n) => n.params.message?.text === "after EOF");
    expect(p.child.exitCode).toBeNull();
    expect(p.responses.items.map((r) => r.id)).toEqual([1]);
  });

  test("IMSG_SIM_NOISE=1: a non-JSON line precedes each response", async () => {
    const p = rpc(sim({ IMSG_SIM_NOISE: "1" }));
    await p.call("chats.list");
    const lines = p.lines.items;
    expect(lines).toHaveLength(2);
    expect(() => JSON.parse(lines[0]!)).toThrow();
    expect(lines[0]).toContain("osascript");
    expect(JSON.parse(lines[1]!).id).toBe(1);
  });

  test("IMSG_SIM_STDERR=1: chatter on stderr, stdout stays pure JSON", async () => {
    const p = rpc(sim({ IMSG_SIM_STDERR: "1" }));
    await p.call("chats.list");
    expect(await p.close()).toBe(0);
    expect(p.stderr).toContain("imsg-sim");
    for (const l of p.lines.items) expect(() => JSON.parse(l)).not.toThrow();
  });

  test("without IMSG_SIM_STDERR the rpc path writes nothing to stderr", async () => {
    const p = rpc(sim());
    await p.call("chats.list");
    expect(await p.close()).toBe(0);
    expect(p.stderr).toBe("");
  });

  test("IMSG_SIM_ECHO_DUP=1: each send is followed by a spurious is_from_me=false copy of the text", async () => {
    const s = sim({ IMSG_SIM_ECHO_DUP: "1" });
    const p = rpc(s);
    const { subscription } = await p.call("watch.subscribe", { debounce_ms: 0 });
    const sent = await p.call("send", { to: ALICE, text: "echo me" });
    await p.notifications.waitForCount(2, (n) => n.params.message?.text === "echo me");
    const rows = p.messages(subscription);
    expect(rows.map((m) => [m.is_from_me, m.sender])).toEqual([
      [true, ALICE],
      [false, SELF],
    ]);
    expect(rows[0].id).toBe(sent.id);
    expect(rows[1].guid).not.toBe(sent.guid);
  });

  test("self-chat: a send to the own handle writes an is_from_me and an incoming row with the identical date", async () => {
    const s = sim();
    const p = rpc(s);
    const { subscription } = await p.call("watch.subscribe", { debounce_ms: 0 });
    await p.call("send", { to: SELF, text: "note to self" });
    await p.notifications.waitForCount(2, (n) => n.params.message?.text === "note to self");
    const [mine, twin] = p.messages(subscription);
    expect([mine.is_from_me, twin.is_from_me]).toEqual([true, false]);
    expect(twin.created_at).toBe(mine.created_at);
    expect(twin.chat_guid).toBe(`iMessage;-;${SELF}`);
  });

  test("IMSG_SIM_SELF changes the own handle used as destination_caller_id", async () => {
    const s = sim({ IMSG_SIM_SELF: "bot@example.com" });
    const p = rpc(s);
    await p.call("send", { chat_id: s.db.inject({ from: ALICE, text: "hi", group: { identifier: "chat9" } }).chatId, text: "yo" });
    const { messages } = await p.call("messages.history", { chat_id: 1 });
    expect(messages[0]).toMatchObject({ text: "yo", sender: "bot@example.com", destination_caller_id: "bot@example.com" });
  });
});

describe("CLI surface (§7)", () => {
  test.each([
    [["--version"], {}, "0.9.0"],
    [["rpc", "--version"], {}, "0.9.0"],
    [["rpc", "-V", "--db", "/x"], {}, "0.9.0"],
    [["--version"], { IMSG_VERSION: "0.8.1" }, "0.8.1"],
  ])("%p prints the bare version", (args, env, version) => {
    const r = cli(sim(), args, env);
    expect(r).toEqual({ code: 0, out: `${version}\n` });
  });

  test("rpc --help prints the command help with tab separators and exits 0", () => {
    const r = cli(sim(), ["rpc", "--help"]);
    expect(r.code).toBe(0);
    const lines = r.out.split("\n");
    expect(lines.slice(0, 2)).toEqual(["imsg rpc", "Run JSON-RPC over stdin/stdout"]);
    expect(r.out).toContain("  --db <value>\tPath to chat.db (defaults to ~/Library/Messages/chat.db)");
    expect(cli(sim(), ["rpc", "-h"]).out).toBe(r.out);
  });

  test("an unknown option prints 'Unknown option --x' on stdout and exits 1", () => {
    expect(cli(sim(), ["rpc", "--x"])).toEqual({ code: 1, out: "Unknown option --x\n" });
  });

  test("runtime flags are accepted by rpc and have no effect", async () => {
    const p = rpc(sim(), { args: ["-v", "--json", "--log-level", "debug"] });
    expect(await p.call("chats.list")).toEqual({ chats: [] });
  });

  test("root help starts with 'imsg <version>' and lists commands tab-separated", () => {
    const r = cli(sim(), []);
    expect(r.code).toBe(0);
    expect(r.out.split("\n").slice(0, 2)).toEqual(["imsg 0.9.0", "Send and read iMessage / SMS from the terminal"]);
    expect(r.out).toContain("  rpc\tRun JSON-RPC over stdin/stdout");
  });

  test("IMSG_VERSION=0.2.0 has no rpc: rpc --help is root help (exit 0), rpc is an unknown subcommand (exit 1)", () => {
    const s = sim({ IMSG_VERSION: "0.2.0" });
    const help = cli(s, ["rpc", "--help"]);
    expect(help.code).toBe(0);
    expect(help.out.split("\n")[0]).toBe("imsg 0.2.0");
    expect(help.out).not.toContain("rpc\t");
    expect(cli(s, ["rpc"])).toEqual({ code: 1, out: "Unknown subcommand 'rpc' for command 'imsg'\n" });
  });

  test("chats and sent companion commands show the database", async () => {
    const s = sim();
    s.db.inject({ from: ALICE, text: "hi" });
    await rpc(s).call("send", { to: ALICE, text: "reply/1" });
    const chats = cli(s, ["chats", "--json"]);
    expect(chats.code).toBe(0);
    expect(JSON.parse(chats.out)).toMatchObject({ identifier: ALICE, guid: `iMessage;-;${ALICE}`, display_name: ALICE });
    expect(chats.out).not.toContain("\\/");
    expect(cli(s, ["chats"]).out).toMatch(new RegExp(`^\\[1\\] \\${ALICE} \\(\\${ALICE}\\) last=`));
    const sent = cli(s, ["sent", "--json"]);
    expect(JSON.parse(sent.out)).toMatchObject({ text: "reply/1", recipient: ALICE, chatGuid: `iMessage;-;${ALICE}` });
    expect(cli(s, ["sent"]).out).toContain(`-> ${ALICE} (iMessage;-;${ALICE}): reply/1`);
  });

  test("inject --age-minutes writes an old date on a new row", () => {
    const s = sim();
    const r = cli(s, ["inject", "--from", ALICE, "--text", "old", "--age-minutes", "90"]);
    expect(r.code).toBe(0);
    const [row] = s.db.messages();
    expect(Date.now() - row!.createdAt.getTime()).toBeGreaterThanOrEqual(90 * 60_000);
    expect(JSON.parse(r.out)).toEqual({ rowid: row!.rowid, guid: row!.guid, chat_id: row!.chatId });
  });
});
