// Every policy outcome end to end: which messages reach the agent (and get an answer where) and which are dropped.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createSim, type Sim, waitFor } from "../helpers/sim.ts";
import { baseConfig, GatewayProc, type Workspace, workspace } from "../helpers/gateway.ts";
import { ERROR_REPLY } from "../../src/turn.ts";

let sim: Sim;
let ws: Workspace;
let gw: GatewayProc | undefined;
let agentLog: string;

afterEach(async () => {
  if (gw) await gw.kill();
  gw = undefined;
  sim?.cleanup();
  ws?.cleanup();
});

async function start(imessage: Record<string, unknown>, extra: Record<string, unknown> = {}, env: Record<string, string> = {}) {
  sim = createSim({ env: { IMSG_SIM_POLL_MS: "50", ...env } });
  ws = workspace();
  ws.writeConfig(baseConfig(sim.cliPath, imessage, extra));
  agentLog = join(ws.dir, "agent.jsonl");
  gw = new GatewayProc(ws, { env: { AGENT_LOG: agentLog, ...env } });
  await gw.subscribed();
}

const turns = (): any[] => (existsSync(agentLog) ? readFileSync(agentLog, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
const sent = () => sim.db.sent();
/** Waits for the gateway's verbose log line that drops this row, and returns the reason. */
async function dropped(rowid: number): Promise<string> {
  const l = await gw!.logs.waitFor((x) => x.msg.startsWith(`drop row ${rowid} `), 10_000, `drop of row ${rowid}\n${gw!.stderrText}`);
  return l.msg.split(": ").slice(1).join(": ");
}
const replyTo = (text: string) => waitFor(() => sent().find((s) => s.text === text), 10_000, `reply "${text}"`);

const GROUP = { identifier: "chat100200300", name: "Team", participants: ["+15550001111", "+15550002222"] };
const mention = { messages: { groupChat: { mentionPatterns: ["@claw", "\\bclaw\\b"] } } };

describe("DM policy", () => {
  test("allowlist: a stranger is dropped silently and the agent never runs", async () => {
    await start({ dmPolicy: "allowlist", allowFrom: ["+15550001111"] });
    const r = sim.db.inject({ from: "+15550003333", text: "let me in" });
    expect(await dropped(r.rowid)).toBe("dmPolicy blocked");
    expect(sent()).toHaveLength(0);
    expect(turns()).toHaveLength(0);
  });

  test("disabled: even an allowlisted sender is dropped", async () => {
    await start({ dmPolicy: "disabled", allowFrom: ["+15550001111"] });
    const r = sim.db.inject({ from: "+15550001111", text: "hi" });
    expect(await dropped(r.rowid)).toBe("dmPolicy disabled");
    expect(sent()).toHaveLength(0);
  });

  test('open with "*": anyone is answered, in any handle format', async () => {
    await start({ dmPolicy: "open", allowFrom: ["*"] });
    sim.db.inject({ from: "user@example.com", text: "from email" });
    await replyTo("echo: from email");
    expect(turns()[0].sender).toBe("user@example.com");
  });

  test("allowFrom entries match after normalization (formatted phone in config)", async () => {
    await start({ dmPolicy: "allowlist", allowFrom: ["+1 (555) 000-1111"] });
    sim.db.inject({ from: "+15550001111", text: "normalized" });
    await replyTo("echo: normalized");
  });

  test("responsePrefix is put in front of the reply", async () => {
    await start({ responsePrefix: "[bot]" });
    sim.db.inject({ from: "+15550001111", text: "prefixed" });
    await replyTo("[bot] echo: prefixed");
  });

  test("a failing agent sends only the fixed error notice (replyOnError), never the error", async () => {
    await start({}, {}, { AGENT_MODE: "fail" });
    sim.db.inject({ from: "+15550001111", text: "boom" });
    await gw!.logs.waitFor((l) => l.msg.includes("failed (error notice sent)"), 10_000);
    await waitFor(() => sent().length === 1 || undefined, 10_000, "the notice");
    expect(sent().map((s) => s.text)).toEqual([ERROR_REPLY]);
  });

  test("an agent that prints nothing means no reply", async () => {
    await start({}, {}, { AGENT_MODE: "empty" });
    sim.db.inject({ from: "+15550001111", text: "quiet" });
    await waitFor(() => turns().length === 1, 10_000, "agent run");
    sim.db.inject({ from: "+15550001111", text: "still quiet" });
    await waitFor(() => turns().length === 2, 10_000, "second agent run");
    expect(sent()).toHaveLength(0);
  });
});

describe("groups", () => {
  test("allowlist + mention gating: unaddressed messages are context, the addressed one is answered in the group", async () => {
    await start({ groupPolicy: "allowlist", groupAllowFrom: ["+15550001111", "+15550002222"], groups: { "*": { requireMention: true } } }, mention);
    const a = sim.db.inject({ from: "+15550002222", text: "lunch at noon?", group: GROUP });
    expect(await dropped(a.rowid)).toBe("no mention");
    sim.db.inject({ from: "+15550001111", text: "@claw what do you think", group: GROUP });
    const reply = await replyTo("echo: @claw what do you think");
    expect(reply.chatId).toBe(a.chatId);
    const t = turns()[0];
    expect(t.chatType).toBe("group");
    expect(t.sessionKey).toBe(`agent:main:imessage:group:${a.chatId}`);
    expect(t.wasMentioned).toBe(true);
    expect(t.body).toContain("+15550002222:\n> lunch at noon?");
    expect(t.body).toContain("+15550001111:\n> @claw what do you think");
    expect(turns()).toHaveLength(1);
  });

  test("mention patterns are case-insensitive regexes", async () => {
    await start({ groupPolicy: "open", groups: { "*": { requireMention: true } } }, mention);
    sim.db.inject({ from: "+15550002222", text: "hey CLAW, status?", group: GROUP });
    await replyTo("echo: hey CLAW, status?");
  });

  test("no mention patterns configured: gating cannot be enforced, the message is answered", async () => {
    await start({ groupPolicy: "open", groups: { "*": { requireMention: true } } });
    sim.db.inject({ from: "+15550002222", text: "anyone?", group: GROUP });
    await replyTo("echo: anyone?");
  });

  test("a group missing from `groups` is dropped", async () => {
    await start({ groupPolicy: "allowlist", groupAllowFrom: ["+15550002222"], groups: { "999": { requireMention: false } } });
    const r = sim.db.inject({ from: "+15550002222", text: "hello", group: GROUP });
    expect(await dropped(r.rowid)).toBe("group id not in allowlist");
    expect(sent()).toHaveLength(0);
  });

  test("a sender outside groupAllowFrom is dropped; allowFrom is the fallback only when groupAllowFrom is unset", async () => {
    await start({ groupPolicy: "allowlist", allowFrom: ["+15550001111"], groups: { "*": { requireMention: false } } });
    const r = sim.db.inject({ from: "+15550002222", text: "not me", group: GROUP });
    expect(await dropped(r.rowid)).toBe("not in groupAllowFrom");
    sim.db.inject({ from: "+15550001111", text: "me", group: GROUP });
    await replyTo("echo: me");
  });

  test("groupPolicy disabled drops every group message", async () => {
    await start({ groupPolicy: "disabled", groups: { "*": {} } });
    const r = sim.db.inject({ from: "+15550001111", text: "hi all", group: GROUP });
    expect(await dropped(r.rowid)).toBe("groupPolicy disabled");
  });

  test("a chat listed in `groups` is a group even when imsg says is_group false", async () => {
    sim = createSim({ env: { IMSG_SIM_POLL_MS: "50" } });
    // A multi-person thread that arrives as a direct chat (no ;+; in its guid).
    const chat = sim.db.ensureDirectChat("+15550002222");
    ws = workspace();
    ws.writeConfig(baseConfig(sim.cliPath, { groupPolicy: "open", groups: { [String(chat.id)]: { requireMention: false } } }));
    agentLog = join(ws.dir, "agent.jsonl");
    gw = new GatewayProc(ws, { env: { AGENT_LOG: agentLog } });
    await gw.subscribed();
    sim.db.inject({ from: "+15550002222", text: "groupish", chatId: chat.id });
    await replyTo("echo: groupish");
    expect(turns()[0].sessionKey).toBe(`agent:main:imessage:group:${chat.id}`);
    expect(turns()[0].chatType).toBe("group");
  });

  test("group sessions are isolated from each other and from DMs", async () => {
    await start({ groupPolicy: "open", groups: { "*": { requireMention: false } } });
    const g1 = sim.db.inject({ from: "+15550001111", text: "in one", group: GROUP });
    await replyTo("echo: in one");
    const g2 = sim.db.inject({ from: "+15550001111", text: "in two", group: { identifier: "chat555", participants: ["+15550001111"] } });
    await replyTo("echo: in two");
    sim.db.inject({ from: "+15550001111", text: "in dm" });
    await replyTo("echo: in dm");
    const keys = turns().map((t) => t.sessionKey);
    expect(keys).toEqual([`agent:main:imessage:group:${g1.chatId}`, `agent:main:imessage:group:${g2.chatId}`, "agent:main:main"]);
    // Each session's history holds only its own turns.
    sim.db.inject({ from: "+15550001111", text: "again one", group: GROUP });
    await replyTo("echo: again one");
    const last = turns()[3];
    expect(last.history.map((h: any) => h.text).join("|")).toContain("in one");
    expect(last.history.map((h: any) => h.text).join("|")).not.toContain("in two");
  });
});

describe("control commands", () => {
  test("/status from an allowlisted sender is answered by the gateway, not the agent", async () => {
    await start({});
    sim.db.inject({ from: "+15550001111", text: "/status" });
    const r = await waitFor(() => sent().find((s) => s.text.includes("session: agent:main:main")), 10_000, "status reply");
    expect(r.text).toContain("account: default");
    expect(turns()).toHaveLength(0);
  });

  test("/reset clears the session history", async () => {
    await start({});
    sim.db.inject({ from: "+15550001111", text: "remember this" });
    await replyTo("echo: remember this");
    sim.db.inject({ from: "+15550001111", text: "/reset" });
    await waitFor(() => sent().find((s) => s.text.startsWith("Session cleared")), 10_000, "reset reply");
    sim.db.inject({ from: "+15550001111", text: "fresh" });
    await replyTo("echo: fresh");
    expect(turns().at(-1).history).toEqual([]);
  });

  test("a control command from an unauthorized group sender is dropped", async () => {
    await start({ groupPolicy: "open", allowFrom: ["+15550001111"], groups: { "*": { requireMention: false } } });
    const r = sim.db.inject({ from: "+15550002222", text: "/status", group: GROUP });
    expect(await dropped(r.rowid)).toBe("control command (unauthorized)");
  });
});

describe("/config from chat", () => {
  test("an authorized sender changes a setting; it is validated, saved atomically and applied at once", async () => {
    await start({ groupPolicy: "disabled", groups: { "*": { requireMention: false } } }, { commands: { config: true } });
    const g = sim.db.inject({ from: "+15550001111", text: "before", group: GROUP });
    expect(await dropped(g.rowid)).toBe("groupPolicy disabled");
    sim.db.inject({ from: "+15550001111", text: "/config set dmPolicy open" });
    await waitFor(() => sent().find((s) => s.text.startsWith("Not saved")), 10_000, "refusal");
    sim.db.inject({ from: "+15550001111", text: "/config set groupPolicy open" });
    const ok = await waitFor(() => sent().find((s) => s.text.startsWith("Saved")), 10_000, "saved reply");
    expect(ok.text).toContain('channels.imessage.groupPolicy = "open"');
    expect(JSON.parse(readFileSync(ws.configPath, "utf8")).channels.imessage.groupPolicy).toBe("open");
    sim.db.inject({ from: "+15550001111", text: "after", group: GROUP });
    await replyTo("echo: after");
  });

  test("only the owner (a handle in allowFrom) may use /config; a pairing-approved or chat-admitted sender may not", async () => {
    sim = createSim({ env: { IMSG_SIM_POLL_MS: "50" } });
    const chat = sim.db.ensureGroupChat({ identifier: "chat777", participants: ["+15550001111", "+15550002222"] });
    ws = workspace();
    ws.writeConfig(
      baseConfig(sim.cliPath, {
        dmPolicy: "allowlist",
        allowFrom: ["+15550001111", `chat_id:${chat.id}`],
        groupPolicy: "open",
        groups: { "*": { requireMention: false } },
      }, { commands: { config: true } }),
    );
    agentLog = join(ws.dir, "agent.jsonl");
    gw = new GatewayProc(ws, { env: { AGENT_LOG: agentLog } });
    await gw.subscribed();
    // The chat_id entry admits (and command-authorizes) every member of the chat, but /config is for the owner only.
    sim.db.inject({ from: "+15550002222", text: "/config set groupPolicy disabled", chatId: chat.id });
    await waitFor(() => sent().find((s) => s.text.startsWith("Only the owner")), 10_000, "refusal");
    expect(JSON.parse(readFileSync(ws.configPath, "utf8")).channels.imessage.groupPolicy).toBe("open");
  });

  test("configWrites false refuses writes; without commands.config every /config is refused", async () => {
    await start({ configWrites: false }, { commands: { config: true } });
    sim.db.inject({ from: "+15550001111", text: "/config set textChunkLimit 10" });
    await waitFor(() => sent().find((s) => s.text.includes("configWrites is false")), 10_000, "refusal");
    expect(JSON.parse(readFileSync(ws.configPath, "utf8")).channels.imessage.textChunkLimit).toBeUndefined();
  });
});

describe("chunking", () => {
  test("a long reply is split by textChunkLimit and sent in order, each part within the limit", async () => {
    await start({ textChunkLimit: 200, chunkMode: "newline" }, {}, { AGENT_MODE: "long" });
    sim.db.inject({ from: "+15550001111", text: "tell me a lot" });
    const parts = await waitFor(() => (sent().length >= 5 ? sent() : undefined), 10_000, "5 parts");
    expect(parts.map((p) => p.text.slice(0, 12))).toEqual(["Paragraph 1:", "Paragraph 2:", "Paragraph 3:", "Paragraph 4:", "Paragraph 5:"]);
    for (const p of parts) expect(p.text.length).toBeLessThanOrEqual(200);
  });
});
