// The owner's own replies: an is_from_me row we did not send joins the conversation's history as the owner's turn
// and is never answered; our own sends coming back are not mistaken for it; ownerTakeoverMinutes quiets the chat.
import { afterEach, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createSim, type Sim, waitFor } from "../helpers/sim.ts";
import { baseConfig, GatewayProc, type Workspace, workspace } from "../helpers/gateway.ts";
import { Store } from "../../src/store.ts";

let sim: Sim;
let ws: Workspace;
let gw: GatewayProc | undefined;
let agentLog: string;

afterEach(async () => {
  await gw?.kill();
  gw = undefined;
  sim?.cleanup();
  ws?.cleanup();
});

async function start(imessage: Record<string, unknown> = {}, before?: () => void) {
  ws = workspace();
  agentLog = join(ws.dir, "agent.jsonl");
  sim = createSim({ env: { IMSG_SIM_POLL_MS: "50" } });
  before?.();
  ws.writeConfig(baseConfig(sim.cliPath, imessage));
  gw = new GatewayProc(ws, { env: { AGENT_LOG: agentLog } });
  await gw.subscribed();
}
const turns = (): { text: string; history: { role: string; text: string }[] }[] =>
  existsSync(agentLog) ? readFileSync(agentLog, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
const journal = (guid: string) => {
  const s = Store.open(ws.stateDir);
  try {
    return s.getInbound("default", guid);
  } finally {
    s.close();
  }
};
/** What the gateway sent: is_from_me rows other than the ones the test typed as the owner. */
const ownerGuids = new Set<string>();
const sent = () => sim.db.sent().filter((s) => !ownerGuids.has(s.guid));
const ownerTypes = (text: string) => {
  const r = sim.db.inject({ from: "+15550001111", text, isFromMe: true });
  ownerGuids.add(r.guid);
  return r;
};
const settled = (guid: string) =>
  waitFor(
    () => {
      const r = journal(guid);
      return r && ["dropped", "done", "skipped", "failed"].includes(r.state) ? r : undefined;
    },
    10_000,
    `row ${guid} settled`,
  );

test("the owner's manual reply appears in the next turn's history and is never answered; our own sends are not the owner's", async () => {
  await start();
  const first = sim.db.inject({ from: "+15550001111", text: "are you free tonight?" });
  await settled(first.guid);
  expect(sent()).toHaveLength(1); // "echo: are you free tonight?" came back as an is_from_me row too
  const owner = ownerTypes("yes, call me at 6");
  const o = await settled(owner.guid);
  expect(o.state).toBe("dropped");
  expect(o.reason).toContain("the owner's reply");
  const next = sim.db.inject({ from: "+15550001111", text: "great" });
  await settled(next.guid);
  expect(sent().map((s) => s.text)).toEqual(["echo: are you free tonight?", "echo: great"]);
  const h = turns().at(-1)!.history;
  expect(h.map((e) => e.role)).toEqual(["user", "assistant", "assistant"]);
  expect(h[1]!.text).toBe("echo: are you free tonight?"); // our reply once: its echo row was not taken for the owner's
  expect(h[2]!.text).toBe("[The owner replied by hand] yes, call me at 6");
  expect(await gw!.stop()).toBe(0);
}, 30_000);

test("ownerTakeoverMinutes: after the owner replies, the agent is quiet in that chat; /status says so", async () => {
  await start({ ownerTakeoverMinutes: 30 });
  const owner = ownerTypes("I'll handle this one");
  await settled(owner.guid);
  await gw!.logs.waitFor((l) => l.msg.includes("stays quiet there for 30 min"), 5000);
  const next = sim.db.inject({ from: "+15550001111", text: "thanks!" });
  const n = await settled(next.guid);
  expect(n.reason).toStartWith("owner takeover");
  const st = sim.db.inject({ from: "+15550001111", text: "/status" });
  await settled(st.guid);
  const texts = sent().map((s) => s.text);
  expect(texts).toHaveLength(1);
  expect(texts[0]).toContain("owner takeover: the agent is quiet in this chat until");
  expect(turns()).toHaveLength(0);
  expect(await gw!.stop()).toBe(0);
}, 30_000);

test("a new DM session is seeded from imsg history: dmHistoryLimit messages, dms.<handle>.historyLimit per sender", async () => {
  const ago = (min: number) => new Date(Date.now() - min * 60_000);
  await start({ dmHistoryLimit: 10, dmSessionTurns: 20, dms: { "+15550001111": { historyLimit: 2 } } }, () => {
    sim.db.inject({ from: "+15550001111", text: "first, too far back", createdAt: ago(60) });
    sim.db.inject({ from: "+15550001111", text: "dinner on friday?", createdAt: ago(50) });
    sim.db.inject({ from: "+15550001111", text: "yes, 7pm", isFromMe: true, createdAt: ago(49) });
  });
  const now = sim.db.inject({ from: "+15550001111", text: "where again?" });
  await settled(now.guid);
  expect(turns()).toHaveLength(1);
  expect(turns()[0]!.history).toEqual([
    { role: "user", text: "> dinner on friday?" },
    { role: "assistant", text: "[The owner replied by hand] yes, 7pm" },
  ]);
  // Seeded once: the next turn has the seed plus the first exchange, not a second seed.
  const next = sim.db.inject({ from: "+15550001111", text: "thanks" });
  await settled(next.guid);
  expect(turns()[1]!.history.map((e) => e.text)).toEqual([
    "> dinner on friday?",
    "[The owner replied by hand] yes, 7pm",
    "> where again?",
    "echo: where again?",
  ]);
  expect(await gw!.stop()).toBe(0);
}, 30_000);
