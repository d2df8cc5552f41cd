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

async function start(imessage: (chatId: number) => Record<string, unknown>, seed?: (stateDir: string, chatId: number) => void) {
  const sim = res.sim({ env: { IMSG_SIM_POLL_MS: "50" } });
  const ws = res.workspace();
  const agentLog = join(ws.dir, "agent.jsonl");
  // Creates the direct chat before the gateway starts (first run starts from "now", so this row is not replayed).
  const first = sim.db.inject({ from: "+15550001111", text: "before start" });
  const config = buildConfig(
    {
      channels: { imessage: { enabled: true, cliPath: sim.cliPath, dmPolicy: "allowlist", allowFrom: ["+15550001111"], ...imessage(first.chatId) } },
      agents: { list: [{ id: "main", default: true, command: ["/usr/bin/env", `AGENT_LOG=${agentLog}`, process.execPath, AGENT], timeoutSeconds: 30 }] },
    },
    "test-config",
  );
  seed?.(ws.stateDir, first.chatId);
  const gw = Gateway.start({ config, stateDir: ws.stateDir, tuning: TUNING });
  res.track(() => gw.stop());
  await gw.ready;
  const turns = (): any[] => (existsSync(agentLog) ? readFileSync(agentLog, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
  const replyTo = (text: string) => waitFor(() => sim.db.sent().find((s) => s.text === text), 10_000, `reply ${JSON.stringify(text)}`);
  return { sim, chatId: first.chatId, turns, replyTo };
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
