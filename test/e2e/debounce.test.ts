// Inbound debounce: a burst of texts from one sender becomes one turn and one reply, exactly once even across a
// kill -9 while the burst waits or while its turn runs.
import { afterEach, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createSim, type Sim, waitFor } from "../helpers/sim.ts";
import { baseConfig, GatewayProc, type Workspace, workspace } from "../helpers/gateway.ts";
import { Store } from "../../src/store.ts";

let sim: Sim;
let ws: Workspace;
const gws: GatewayProc[] = [];
let agentLog: string;

afterEach(async () => {
  for (const g of gws.splice(0)) await g.kill();
  sim?.cleanup();
  ws?.cleanup();
});

function setup(windowMs: number) {
  ws = workspace();
  agentLog = join(ws.dir, "agent.jsonl");
  sim = createSim({ env: { IMSG_SIM_POLL_MS: "50" } });
  writeWindow(windowMs);
}
const writeWindow = (windowMs: number) => ws.writeConfig(baseConfig(sim.cliPath, {}, { messages: { inbound: { byChannel: { imessage: windowMs } } } }));
const gateway = (env: Record<string, string> = {}) => {
  const g = new GatewayProc(ws, { env: { AGENT_LOG: agentLog, ...env } });
  gws.push(g);
  return g;
};
const turns = (): { text: string; messageId: number }[] =>
  existsSync(agentLog) ? readFileSync(agentLog, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
/** The journal as the gateway left it (read from the test process, WAL allows it). */
const states = (guids: string[]) => {
  const s = Store.open(ws.stateDir);
  try {
    return guids.map((g) => s.getInbound("default", g)?.state);
  } finally {
    s.close();
  }
};
const burst = () => ["hey", "can you", "book the table for 8"].map((text) => sim.db.inject({ from: "+15550001111", text }));

test("three texts within the window: one turn holding all three, one reply, rows merged into the newest", async () => {
  setup(1500);
  const g = gateway();
  await g.subscribed();
  const rows = burst();
  await waitFor(() => sim.db.sent().length >= 1, 15_000, "the reply");
  await waitFor(() => states([rows[2]!.guid])[0] === "done", 10_000, "anchor done");
  expect(turns()).toHaveLength(1);
  expect(turns()[0]!.text).toBe("hey\ncan you\nbook the table for 8");
  expect(turns()[0]!.messageId).toBe(rows[2]!.rowid); // the newest anchors the reply
  expect(sim.db.sent().map((s) => s.text)).toEqual(["echo: hey\ncan you\nbook the table for 8"]);
  expect(states(rows.map((r) => r.guid))).toEqual(["merged", "merged", "done"]);
  expect(await g.stop()).toBe(0);
}, 30_000);

test("a photo or a command flushes the burst at once: the texts are answered first, then the command", async () => {
  setup(60_000);
  const g = gateway();
  await g.subscribed();
  sim.db.inject({ from: "+15550001111", text: "one" });
  sim.db.inject({ from: "+15550001111", text: "two" });
  sim.db.inject({ from: "+15550001111", text: "/help" });
  await waitFor(() => sim.db.sent().length >= 2, 15_000, "two replies");
  const sent = sim.db.sent().map((s) => s.text);
  expect(sent[0]).toBe("echo: one\ntwo");
  expect(sent[1]).toStartWith("Commands:");
  expect(turns()).toHaveLength(1);
  expect(await g.stop()).toBe(0);
}, 30_000);

test("kill -9 while the burst waits: after restart one turn answers all three, once", async () => {
  setup(60_000); // the burst cannot flush before the kill
  let g = gateway();
  await g.subscribed();
  const rows = burst();
  await waitFor(() => states(rows.map((r) => r.guid)).every((s) => s === "new"), 10_000, "three rows journaled");
  await g.kill();
  expect(sim.db.sent()).toHaveLength(0);
  writeWindow(300);
  g = gateway();
  await waitFor(() => sim.db.sent().length >= 1, 15_000, "the reply after restart");
  await waitFor(() => states([rows[2]!.guid])[0] === "done", 10_000, "anchor done");
  expect(sim.db.sent().map((s) => s.text)).toEqual(["echo: hey\ncan you\nbook the table for 8"]);
  expect(turns()).toHaveLength(1);
  expect(await g.stop()).toBe(0);
  expect(sim.db.sent()).toHaveLength(1);
}, 40_000);

test("kill -9 while the burst's turn runs: the resumed turn re-forms the whole burst from the journal, one reply", async () => {
  setup(300);
  let g = gateway({ AGENT_MODE: "slow", AGENT_DELAY_MS: "5000" });
  await g.subscribed();
  const rows = burst();
  await waitFor(() => states(rows.map((r) => r.guid)).join() === "merged,merged,dispatched", 10_000, "burst merged and dispatched");
  await g.kill();
  expect(sim.db.sent()).toHaveLength(0);
  g = gateway();
  await waitFor(() => sim.db.sent().length >= 1, 15_000, "the reply after restart");
  await waitFor(() => states([rows[2]!.guid])[0] === "done", 10_000, "anchor done");
  expect(sim.db.sent().map((s) => s.text)).toEqual(["echo: hey\ncan you\nbook the table for 8"]);
  expect(turns().at(-1)!.text).toBe("hey\ncan you\nbook the table for 8");
  expect(await g.stop()).toBe(0);
  expect(sim.db.sent()).toHaveLength(1);
}, 40_000);
