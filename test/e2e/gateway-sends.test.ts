// The gateway's send path against imsg's failure modes, end to end: a poisoned mutation lane, a busy imsg during a
// catch-up, and a shutdown with slow sends in flight.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { scaled, waitFor } from "../helpers/sim.ts";
import { baseConfig, e2eResources } from "../helpers/gateway.ts";

const r = e2eResources();
const OPEN = { dmPolicy: "open", allowFrom: ["*"] };
const PER_PEER = { session: { dmScope: "per-peer" } };
const tuning = (over: Record<string, number> = {}) =>
  JSON.stringify({ debounceMs: 10, backoffInitialMs: 50, watchdogMs: 2000, shutdownGraceMs: 3000, settleMs: 1000, ...over });
const sender = (i: number) => `+1555${String(2000000 + i).slice(1)}`;

function setup(simEnv: Record<string, string> = {}) {
  const sim = r.sim({ env: { IMSG_SIM_POLL_MS: "50", ...simEnv } });
  const ws = r.workspace();
  ws.writeConfig(baseConfig(sim.cliPath, OPEN, PER_PEER));
  const counts = () => {
    const m = new Map<string, number>();
    for (const s of sim.db.sent()) m.set(s.text, (m.get(s.text) ?? 0) + 1);
    return m;
  };
  return { sim, ws, counts };
}

describe("send path", () => {
  test("a poisoned lane (still_in_flight) then 10 more messages: all answered, the in-doubt part sent once", async () => {
    const { sim, ws, counts } = setup();
    const g = r.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning() } });
    await g.subscribed();
    sim.db.queueFault("send", "still_in_flight");
    sim.db.inject({ from: "+15550001111", text: "first" });
    await waitFor(() => counts().get("echo: first"), 15_000, "the in-doubt reply to land");
    for (let i = 0; i < 10; i++) sim.db.inject({ from: sender(i), text: `after ${i}` });
    await waitFor(
      () => Array.from({ length: 10 }, (_, i) => counts().get(`echo: after ${i}`)).every((n) => n === 1),
      30_000,
      "10 replies after the poisoned send",
    );
    // Give a wrongful re-send of the in-doubt part time to show up.
    await new Promise((res) => setTimeout(res, 1500));
    expect(counts().get("echo: first")).toBe(1);
    expect([...counts().values()].every((n) => n === 1)).toBe(true);
    expect(await g.stop()).toBe(0);
  }, 60_000);

  test("a busy imsg during a catch-up of 150 rows from 150 senders: every reply sent exactly once, none lost to -32000", async () => {
    const { sim, ws, counts } = setup({ IMSG_SIM_BUSY_LIMIT: "3" });
    let g = r.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning() } });
    await g.subscribed();
    expect(await g.stop()).toBe(0);
    const N = 150;
    for (let i = 0; i < N; i++) sim.db.inject({ from: sender(i), text: `c-${i}` });
    g = r.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning() } });
    await waitFor(() => counts().size >= N, 90_000, `${N} replies (have ${counts().size})`);
    for (let i = 0; i < N; i++) expect(counts().get(`echo: c-${i}`)).toBe(1);
    expect(g.logs.items.filter((l) => /Server busy|-32000/.test(l.msg) && l.level !== "debug").map((l) => l.msg)).toEqual([]);
  }, 120_000);

  test("SIGTERM with slow sends in flight exits within shutdownGraceMs + 2 s; after a restart each reply is sent once", async () => {
    const { sim, ws, counts } = setup();
    const trace = join(ws.dir, "sim-trace.jsonl");
    const sends = () => (existsSync(trace) ? readFileSync(trace, "utf8").split("\n").filter((l) => l.includes('"k":"s"')).length : 0);
    const grace = 2000;
    // Each send takes 60 s (a stalled Messages.app); the restart below runs without the delay.
    let g = r.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning({ shutdownGraceMs: grace }), IMSG_SIM_SEND_DELAY_MS: "60000", IMSG_SIM_TRACE: trace } });
    await g.subscribed();
    sim.db.inject({ from: sender(1), text: "slow one" });
    sim.db.inject({ from: sender(2), text: "slow two" });
    await waitFor(() => sends() >= 1, 15_000, "a send in flight");
    const t0 = Date.now();
    g.child.kill("SIGTERM");
    const code = await g.exited;
    const took = Date.now() - t0;
    expect(code).toBe(0);
    expect(took).toBeLessThan(scaled(grace + 2000));
    expect(sim.db.sent()).toHaveLength(0);
    g = r.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning() } });
    await waitFor(() => counts().get("echo: slow one") && counts().get("echo: slow two"), 30_000, "both replies after the restart");
    await new Promise((res) => setTimeout(res, 1000));
    expect([counts().get("echo: slow one"), counts().get("echo: slow two")]).toEqual([1, 1]);
  }, 90_000);
});
