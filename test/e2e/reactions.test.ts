// Tapbacks in and the richer turn, end to end: gateway child ↔ imsg simulator (both versions) ↔ fixture agent.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Sim, waitFor } from "../helpers/sim.ts";
import { baseConfig, e2eResources, type GatewayProc, type Workspace } from "../helpers/gateway.ts";

const OWNER = "+15550001111";
const STRANGER = "+15550002222";
const e2e = e2eResources();
let sim: Sim;
let ws: Workspace;
let gw: GatewayProc;
let agentLog: string;

async function start(imessage: Record<string, unknown> = {}, env: Record<string, string> = {}) {
  sim = e2e.sim({ env: { IMSG_SIM_POLL_MS: "50" } });
  ws = e2e.workspace();
  ws.writeConfig(baseConfig(sim.cliPath, imessage));
  agentLog = join(ws.dir, "agent.jsonl");
  gw = e2e.gateway(ws, { env: { AGENT_LOG: agentLog, ...env } });
  await gw.subscribed();
}

const turns = (): any[] => (existsSync(agentLog) ? readFileSync(agentLog, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
const sentTexts = () => sim.db.sent().map((s) => s.text);

/** The owner says hello and the agent answers: returns the guid of our reply. */
async function replied(): Promise<string> {
  sim.db.inject({ from: OWNER, text: "hello there" });
  const s = await waitFor(() => sim.db.sent().find((x) => x.text === "echo: hello there"), 10_000, "reply");
  // The reply's guid is journaled when the send returns, which may be just after the row lands.
  await gw.logs.waitFor((l) => l.msg.startsWith("replied to "), 10_000, "replied log");
  return s.guid;
}

/** Waits for the gateway's verbose drop line for this row and returns its reason. */
async function dropped(rowid: number): Promise<string> {
  const l = await gw.logs.waitFor((x) => x.msg.startsWith(`drop row ${rowid} `), 10_000, `drop of row ${rowid}\n${gw.stderrText}`);
  return l.msg.split(": ").slice(1).join(": ");
}

describe("tapbacks in", () => {
  test('a 👍 on our message reaches the agent as a reaction event (reactionNotifications "own", the default)', async () => {
    await start({ dmPolicy: "pairing" });
    const ours = await replied();
    sim.db.inject({ from: OWNER, reaction: { to: ours, type: "like" } });
    await waitFor(() => sentTexts().includes("reaction: 👍 added"), 10_000, "reaction reply");
    const t = turns().find((x) => x.event === "reaction");
    expect(t).toMatchObject({
      event: "reaction",
      sender: OWNER,
      text: "",
      reaction: { kind: "like", emoji: "👍", added: true, messageGuid: ours, text: "echo: hello there", fromAgent: true },
    });
    expect(t.body).toBe(`[Reaction] ${OWNER} reacted 👍 to your message: "echo: hello there"`);
    // Removing it is an event too.
    sim.db.inject({ from: OWNER, reaction: { to: ours, type: "like", remove: true } });
    await waitFor(() => sentTexts().includes("reaction: 👍 removed"), 10_000, "removal reply");
    expect(await gw.stop()).toBe(0);
  });

  test("a 👍 from a stranger never reaches the agent and earns no pairing code", async () => {
    await start({ dmPolicy: "pairing" });
    const ours = await replied();
    const before = sim.db.sent().length;
    const r = sim.db.inject({ from: STRANGER, reaction: { to: ours, type: "like" } });
    expect(await dropped(r.rowid)).toBe("reaction (sender not approved)");
    expect(turns().some((x) => x.event === "reaction")).toBe(false);
    expect(sim.db.sent()).toHaveLength(before);
    expect(await gw.stop()).toBe(0);
  });

  test('"own" passes over a tapback on someone else\'s message; "all" takes it', async () => {
    await start({ reactionNotifications: "own" });
    const theirs = sim.db.inject({ from: OWNER, text: "note to self" }).guid;
    await waitFor(() => sentTexts().includes("echo: note to self"), 10_000, "reply");
    const r = sim.db.inject({ from: OWNER, reaction: { to: theirs, type: "love" } });
    expect(await dropped(r.rowid)).toBe('reaction not passed on: not on a message we sent (reactionNotifications "own")');
    expect(await gw.stop()).toBe(0);

    ws.writeConfig(baseConfig(sim.cliPath, { reactionNotifications: "all" }));
    gw = e2e.gateway(ws, { env: { AGENT_LOG: agentLog } });
    await gw.subscribed();
    sim.db.inject({ from: OWNER, reaction: { to: theirs, type: "question" } });
    await waitFor(() => turns().find((x) => x.event === "reaction"), 10_000, "reaction turn");
    expect(turns().find((x) => x.event === "reaction").reaction).toMatchObject({ kind: "question", emoji: "❓", fromAgent: false, text: "note to self" });
    expect(await gw.stop()).toBe(0);
  });

  test('"off" delivers nothing: the watch is not even subscribed to tapbacks', async () => {
    await start({ reactionNotifications: "off" });
    const ours = await replied();
    sim.db.inject({ from: OWNER, reaction: { to: ours, type: "like" } });
    // A later text proves the watch moved past the tapback row.
    sim.db.inject({ from: OWNER, text: "after" });
    await waitFor(() => sentTexts().includes("echo: after"), 10_000, "reply after");
    expect(turns().map((x) => x.event)).toEqual(["message", "message"]);
    expect(sentTexts()).toEqual(["echo: hello there", "echo: after"]);
    expect(await gw.stop()).toBe(0);
  });

  test("an empty reply to a tapback sends nothing", async () => {
    await start();
    const ours = await replied();
    await gw.stop();
    gw = e2e.gateway(ws, { env: { AGENT_LOG: agentLog, AGENT_MODE: "empty" } });
    await gw.subscribed();
    sim.db.inject({ from: OWNER, reaction: { to: ours, type: "laugh" } });
    await waitFor(() => turns().find((x) => x.event === "reaction"), 10_000, "reaction turn");
    // Turns of one session run in order: once a later turn ran, the tapback's (empty) answer was handled.
    sim.db.inject({ from: OWNER, text: "after" });
    await waitFor(() => turns().find((x) => x.text === "after"), 10_000, "later turn");
    expect(await gw.stop()).toBe(0);
    expect(sentTexts()).toEqual(["echo: hello there"]);
  });
});

describe("the richer turn", () => {
  test("a command agent's stdin carries senderName, participants, createdAt, replyToGuid and systemPrompt; names in the group prefix", async () => {
    await start({ groupPolicy: "open", groups: { "*": { requireMention: false, systemPrompt: "be brief" } } });
    if (sim.db.modern) {
      sim.db.addContact(OWNER, "Alice Example");
      sim.db.addContact(STRANGER, "Bob Example");
    }
    const group = { identifier: "chat100200300", name: "Team", participants: [OWNER, STRANGER] };
    const first = sim.db.inject({ from: STRANGER, group, text: "dinner at 8?" });
    await waitFor(() => sentTexts().includes("echo: dinner at 8?"), 10_000, "first reply");
    const at = new Date(Date.now() - 1000);
    sim.db.inject({ from: OWNER, chatId: first.chatId, text: "yes please", replyToGuid: first.guid, createdAt: at });
    await waitFor(() => sentTexts().includes("echo: yes please"), 10_000, "second reply");
    const t = turns().find((x) => x.text === "yes please");
    const alice = sim.db.modern ? "Alice Example" : undefined;
    const bob = sim.db.modern ? "Bob Example" : undefined;
    expect(t.event).toBe("message");
    expect(t.senderName).toBe(alice);
    expect(t.createdAt).toBe(at.toISOString());
    expect(t.replyToGuid).toBe(first.guid);
    expect(t.systemPrompt).toBe("be brief");
    const byHandle = Object.fromEntries(t.participants.map((p: { handle: string; name?: string }) => [p.handle, p.name]));
    expect(byHandle).toEqual({ [OWNER]: alice, [STRANGER]: bob });
    const label = (h: string, n?: string) => (n ? `${n} (${h})` : h);
    expect(t.body).toContain(`${label(OWNER, alice)}:\n> yes please`);
    expect(t.body).toContain(`[Replying to ${label(STRANGER, bob)} id:${first.guid}]`);
    expect(await gw.stop()).toBe(0);
  });
});
