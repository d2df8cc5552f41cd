// The gateway pipeline in process: a real Gateway against the imsg simulator (real child processes) and a real
// state dir, with the fixture command agent. Outcomes are read from what the simulator saw sent and what the
// agent was given.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { buildConfig } from "../src/config.ts";
import { Gateway } from "../src/gateway.ts";
import { Store } from "../src/store.ts";
import { AGENT, e2eResources } from "./helpers/gateway.ts";
import { inbound, journal } from "./helpers/journal.ts";
import { waitFor } from "./helpers/sim.ts";

const res = e2eResources();

const TUNING = { debounceMs: 10, inboundDebounceMs: 0, backoffInitialMs: 50, watchdogMs: 2000, shutdownGraceMs: 3000 };

async function start(imessage: (chatId: number) => Record<string, unknown>, seed?: (stateDir: string, chatId: number) => void, agentEnv: string[] = []) {
  const sim = res.sim({ env: { IMSG_SIM_POLL_MS: "50" } });
  const ws = res.workspace();
  const agentLog = join(ws.dir, "agent.jsonl");
  // Creates the direct chat before the gateway starts (first run starts from "now", so this row is not replayed).
  const first = sim.db.inject({ from: "+15550001111", text: "before start" });
  const config = buildConfig(
    {
      channels: { imessage: { enabled: true, cliPath: sim.cliPath, dmPolicy: "allowlist", allowFrom: ["+15550001111"], ...imessage(first.chatId) } },
      agents: {
        list: [{ id: "main", default: true, command: ["/usr/bin/env", `AGENT_LOG=${agentLog}`, ...agentEnv, process.execPath, AGENT], timeoutSeconds: 30 }],
      },
    },
    "test-config",
  );
  seed?.(ws.stateDir, first.chatId);
  const gw = Gateway.start({ config, stateDir: ws.stateDir, tuning: TUNING });
  res.track(() => gw.stop());
  await gw.ready;
  const turns = (): any[] => (existsSync(agentLog) ? readFileSync(agentLog, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
  const replyTo = (text: string) => waitFor(() => sim.db.sent().find((s) => s.text === text), 10_000, `reply ${JSON.stringify(text)}`);
  /** The reply journaled for an inbound row (read beside the running gateway: WAL allows it). */
  const journaled = (guid: string) => {
    const store = Store.open(ws.stateDir);
    try {
      return store.getInbound("default", guid)?.reply as Record<string, unknown> | undefined;
    } finally {
      store.close();
    }
  };
  return { sim, chatId: first.chatId, turns, replyTo, journaled };
}

describe("control commands", () => {
  test("/reset in a chat that is a group only because `groups` lists it clears that group's history", async () => {
    // imsg says is_group false (a two-person group arrives that way); policy treats the listed chat as a group.
    const { sim, chatId, turns, replyTo } = await start((chatId) => ({ groupPolicy: "allowlist", groups: { [String(chatId)]: { requireMention: false } } }));
    sim.db.inject({ from: "+15550001111", text: "remember this", chatId });
    await replyTo("echo: remember this");
    expect(turns().at(-1).chatType).toBe("group");
    sim.db.inject({ from: "+15550001111", text: "/reset", chatId });
    await waitFor(() => sim.db.sent().find((s) => s.text.startsWith("Session cleared")), 10_000, "reset reply");
    sim.db.inject({ from: "+15550001111", text: "fresh", chatId });
    await replyTo("echo: fresh");
    expect(turns().at(-1).history).toEqual([]);
  });
});

describe("recovery", () => {
  test("at start, a journaled reply not yet sent is delivered and an interrupted turn runs again", async () => {
    const { sim, turns, replyTo } = await start(
      () => ({}),
      (stateDir, chatId) => {
        const store = Store.open(stateDir);
        const replied = inbound({ id: 900, guid: "R-900", chatId, text: "question" });
        store.setInbound("default", journal(store, replied), { state: "replied", reply: { text: "the answer we owed", media: [] } });
        const dispatched = inbound({ id: 901, guid: "R-901", chatId, text: "interrupted" });
        store.setInbound("default", journal(store, dispatched), { state: "dispatched", agentId: "main", sessionKey: "agent:main:main" });
        store.close();
      },
    );
    await replyTo("the answer we owed");
    await replyTo("echo: interrupted");
    expect(turns().map((t) => t.text)).toEqual(["interrupted"]);
    expect(sim.db.sent().filter((s) => s.text === "the answer we owed")).toHaveLength(1);
  });
});

describe("reply directives", () => {
  const directives = (reply: string) => ["AGENT_MODE=directives", `AGENT_REPLY=${reply}`];

  test("REACT and REPLY-TO: this are taken out of the text and journaled resolved on the anchor; history shows them", async () => {
    const { sim, turns, replyTo, journaled } = await start(
      () => ({ reactFallback: true }),
      undefined,
      directives("sure thing\nREACT: like\nREPLY-TO: this\nREACT: love"),
    );
    const row = sim.db.inject({ from: "+15550001111", text: "can you?" });
    await replyTo("sure thing");
    expect(journaled(row.guid)).toEqual({ text: "sure thing", media: [], actions: { react: { to: row.guid, kind: "like" }, replyTo: row.guid } });
    // No bridge in the simulator: only the fallback makes a tapback possible, and threads are not.
    expect(turns()[0].actions).toEqual({ react: true, emoji: false, replyTo: false });
    sim.db.inject({ from: "+15550001111", text: "and again?" });
    await waitFor(() => turns().length === 2, 10_000, "second turn");
    expect(turns()[1].history.at(-1)).toEqual({ role: "assistant", text: "sure thing\nREACT: like\nREPLY-TO: this" });
  });

  test("a command agent may thread to another message the journal knows in this chat; a custom emoji stays itself", async () => {
    const { sim, journaled } = await start(
      () => ({}),
      (stateDir, chatId) => {
        const store = Store.open(stateDir);
        store.setInbound("default", journal(store, inbound({ id: 900, guid: "OLD-1", chatId, text: "earlier" })), { state: "done" });
        store.close();
      },
      directives("noted\nREPLY-TO: OLD-1\nREACT: 🦄"),
    );
    const row = sim.db.inject({ from: "+15550001111", text: "remember the earlier one?" });
    await waitFor(() => sim.db.sent().find((s) => s.text === "noted"), 10_000, "reply");
    expect(journaled(row.guid)?.actions).toEqual({ react: { to: row.guid, emoji: "🦄" }, replyTo: "OLD-1" });
  });

  test("a guid of another chat, or one the journal does not know, is dropped: the reply goes unthreaded", async () => {
    const { sim, journaled } = await start(
      () => ({ actions: { reactions: false } }),
      (stateDir, chatId) => {
        const store = Store.open(stateDir);
        // Settled, so only the new message is answered (a resumed row would send "plain" too).
        store.setInbound("default", journal(store, inbound({ id: 901, guid: "ELSEWHERE-1", chatId: chatId + 1000, text: "other chat" })), { state: "done" });
        store.close();
      },
      directives("plain\nREPLY-TO: ELSEWHERE-1\nREACT: like"),
    );
    const row = sim.db.inject({ from: "+15550001111", text: "hello" });
    await waitFor(() => sim.db.sent().find((s) => s.text === "plain"), 10_000, "reply");
    expect(journaled(row.guid)).toEqual({ text: "plain", media: [] });
  });
});
