// Exactly-once under restarts, kills and imsg crashes; echo and loop defence; the lock; clean shutdown.
import { afterEach, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createSim, type Sim, waitFor } from "../helpers/sim.ts";
import { DEFAULT_SIM_VERSION } from "../../scripts/sim/version.ts";
import { baseConfig, GatewayProc, runCli, type Workspace, workspace } from "../helpers/gateway.ts";

let sim: Sim;
let ws: Workspace;
const gws: GatewayProc[] = [];
let agentLog: string;

afterEach(async () => {
  for (const g of gws.splice(0)) await g.kill();
  sim?.cleanup();
  ws?.cleanup();
});

function setup(imessage: Record<string, unknown> = {}, extra: Record<string, unknown> = {}, simEnv: Record<string, string> = {}) {
  sim = createSim({ env: { IMSG_SIM_POLL_MS: "50", ...simEnv } });
  ws = workspace();
  ws.writeConfig(baseConfig(sim.cliPath, imessage, extra));
  agentLog = join(ws.dir, "agent.jsonl");
}

function gateway(env: Record<string, string> = {}, args: string[] = []): GatewayProc {
  const g = new GatewayProc(ws, { env: { AGENT_LOG: agentLog, ...env }, args });
  gws.push(g);
  return g;
}

const turns = (): any[] => (existsSync(agentLog) ? readFileSync(agentLog, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
const sentTexts = () => sim.db.sent().map((s) => s.text);
function counts(): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of sentTexts()) m.set(t, (m.get(t) ?? 0) + 1);
  return m;
}
const sender = (i: number) => `+1555${String(1000000 + i).slice(1)}`;
const OPEN = { dmPolicy: "open", allowFrom: ["*"] };
const PER_PEER = { session: { dmScope: "per-peer" } };

describe("restarts", () => {
  test("messages that arrive while the gateway is down are answered once when it comes back", async () => {
    setup();
    let g = gateway();
    await g.subscribed();
    sim.db.inject({ from: "+15550001111", text: "before" });
    await waitFor(() => sentTexts().includes("echo: before"), 10_000, "first reply");
    expect(await g.stop()).toBe(0);
    sim.db.inject({ from: "+15550001111", text: "while down 1" });
    sim.db.inject({ from: "+15550001111", text: "while down 2" });
    g = gateway();
    await g.subscribed();
    await waitFor(() => sentTexts().includes("echo: while down 2") && sentTexts().includes("echo: while down 1"), 10_000, "catch-up replies");
    expect(await g.stop()).toBe(0);
    expect([...counts().values()].every((n) => n === 1)).toBe(true);
    expect(sentTexts()).toEqual(["echo: before", "echo: while down 1", "echo: while down 2"]);
  });

  test("stale rows are logged and skipped: older than 15 min live, older than 2 h at catch-up", async () => {
    setup();
    let g = gateway();
    await g.subscribed();
    const old = sim.db.inject({ from: "+15550001111", text: "old backfill", createdAt: new Date(Date.now() - 20 * 60_000) });
    await g.logs.waitFor((l) => l.msg.startsWith(`drop row ${old.rowid} `) && l.msg.includes("stale"), 10_000);
    expect(await g.stop()).toBe(0);
    const recent = sim.db.inject({ from: "+15550001111", text: "30 min ago", createdAt: new Date(Date.now() - 30 * 60_000) });
    const ancient = sim.db.inject({ from: "+15550001111", text: "3 h ago", createdAt: new Date(Date.now() - 3 * 3600_000) });
    g = gateway();
    await g.subscribed();
    await g.logs.waitFor((l) => l.msg.startsWith(`drop row ${ancient.rowid} `) && l.msg.includes("stale"), 10_000);
    await waitFor(() => sentTexts().includes("echo: 30 min ago"), 10_000, "catch-up reply");
    expect(recent.rowid).toBeLessThan(ancient.rowid);
    expect(sentTexts()).toEqual(["echo: 30 min ago"]);
  });

  test("kill -9 at random points during a 200-message burst: after a restart every message is answered exactly once", async () => {
    setup(OPEN, PER_PEER);
    const N = 200;
    let g = gateway();
    await g.subscribed();
    let injected = 0;
    const injectSome = (n: number) => {
      for (let k = 0; k < n && injected < N; k++, injected++) sim.db.inject({ from: sender(injected), text: `m-${injected}` });
    };
    for (let round = 0; round < 4; round++) {
      injectSome(50);
      const before = sentTexts().length;
      // Kill at a random point: after a random number of replies (0–15) went out in this round.
      const after = Math.floor(Math.random() * 16);
      await waitFor(() => sentTexts().length >= before + after, 20_000, `${after} replies in round ${round}`);
      await g.kill();
      g = gateway();
      await g.subscribed();
    }
    injectSome(N);
    await waitFor(() => new Set(sentTexts()).size >= N, 60_000, `${N} distinct replies (have ${new Set(sentTexts()).size})`);
    expect(await g.stop()).toBe(0);
    const c = counts();
    const dupes = [...c.entries()].filter(([, n]) => n > 1);
    expect(dupes).toEqual([]);
    for (let i = 0; i < N; i++) expect(c.get(`echo: m-${i}`)).toBe(1);
  }, 120_000);

  test("imsg children killed mid-burst: replaced and resubscribed, nothing lost or duplicated", async () => {
    setup(OPEN, PER_PEER);
    const g = gateway();
    await g.subscribed();
    const N = 60;
    for (let i = 0; i < N / 2; i++) sim.db.inject({ from: sender(i), text: `c-${i}` });
    await waitFor(() => sentTexts().length >= 5, 20_000, "some replies");
    // Kill this gateway's imsg children (the watch child and the send child), not its agent runs.
    const kids = spawnSync("pgrep", ["-P", String(g.child.pid)], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    const imsg = kids.filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("imsg-sim.ts");
      } catch {
        return false;
      }
    });
    expect(imsg.length).toBeGreaterThanOrEqual(1);
    for (const pid of imsg) process.kill(Number(pid), "SIGKILL");
    for (let i = N / 2; i < N; i++) sim.db.inject({ from: sender(i), text: `c-${i}` });
    await g.subscribed(2);
    await waitFor(() => new Set(sentTexts()).size >= N, 30_000, `${N} replies`);
    const c = counts();
    for (let i = 0; i < N; i++) expect(c.get(`echo: c-${i}`)).toBe(1);
  }, 60_000);
});

describe("watchdog", () => {
  test("a watch child that stops answering is noticed by its health check and replaced", async () => {
    // An empty database: the watch child answers what subscribing takes, then hangs on the next request.
    // 0.9: status (not found), chats.list, watch.subscribe; 0.14+ also messages.after for the exact newest row.
    const modern = (process.env.IMSG_SIM_VERSION ?? DEFAULT_SIM_VERSION) !== "0.9.0";
    setup({ probeTimeoutMs: 500 }, {}, { IMSG_SIM_HANG_AFTER: modern ? "4" : "3" });
    const g = gateway({ OPENCLAW_IMSG_TUNING: JSON.stringify({ debounceMs: 10, inboundDebounceMs: 0, backoffInitialMs: 50, watchdogMs: 300 }) });
    await g.subscribed();
    await g.logs.waitFor((l) => l.msg.includes("watch child is not answering"), 10_000);
    await g.subscribed(2);
  });
});

describe("iCloud twins", () => {
  test("the same message written twice with different guids is answered once", async () => {
    setup();
    const g = gateway();
    await g.subscribed();
    const when = new Date();
    const chat = sim.db.ensureDirectChat("+15550001111");
    sim.db.inject({ from: "+15550001111", text: "twin", chatId: chat.id, createdAt: when });
    const second = sim.db.inject({ from: "+15550001111", text: "twin", chatId: chat.id, createdAt: new Date(when.getTime() + 300) });
    await g.logs.waitFor((l) => l.msg.startsWith(`drop row ${second.rowid} `) && l.msg.includes("duplicate of row"), 10_000);
    await waitFor(() => sentTexts().includes("echo: twin"), 10_000, "one reply");
    sim.db.inject({ from: "+15550001111", text: "twin", chatId: chat.id, createdAt: new Date(when.getTime() + 5000) });
    await waitFor(() => sentTexts().length === 2, 10_000, "the same text a few seconds later is a new message");
  });
});

describe("silent watch", () => {
  test("a watch that stops emitting while imsg has newer rows is noticed and resubscribed; nothing is lost", async () => {
    setup({ probeTimeoutMs: 2000 }, {}, { IMSG_SIM_WATCH_STALL_AFTER: "1" });
    const g = gateway({ OPENCLAW_IMSG_TUNING: JSON.stringify({ debounceMs: 10, inboundDebounceMs: 0, backoffInitialMs: 50, watchdogMs: 300 }) });
    await g.subscribed();
    sim.db.inject({ from: "+15550001111", text: "first" });
    await waitFor(() => sentTexts().includes("echo: first"), 10_000, "first reply");
    // The watch child is now silent: this row is in chat.db but no notification comes.
    sim.db.inject({ from: "+15550001111", text: "second" });
    await g.logs.waitFor((l) => l.msg.includes("the watch is silent although imsg has newer rows"), 10_000);
    await waitFor(() => sentTexts().includes("echo: second"), 10_000, "second reply after resubscribing");
    expect(sentTexts()).toEqual(["echo: first", "echo: second"]);
  });
});

describe("echo and loop defence", () => {
  test("the duplicate is_from_me=false echo row of every send is not answered", async () => {
    setup({}, {}, { IMSG_SIM_ECHO_DUP: "1" });
    const g = gateway();
    await g.subscribed();
    for (let i = 0; i < 5; i++) sim.db.inject({ from: "+15550001111", text: `dup-${i}` });
    await waitFor(() => sentTexts().length >= 5, 10_000, "5 replies");
    // Our 5 replies produced 5 echo rows; wait until the gateway has seen (and dropped) each of them.
    await g.logs.waitForCount(5, (l) => l.msg.includes("echo (text we just sent)"), 10_000);
    sim.db.inject({ from: "+15550001111", text: "marker" });
    await waitFor(() => sentTexts().includes("echo: marker"), 10_000, "marker reply");
    expect(turns().map((t) => t.text)).toEqual(["dup-0", "dup-1", "dup-2", "dup-3", "dup-4", "marker"]);
    expect(sim.db.sent()).toHaveLength(6);
  });

  test("self-chat: the owner's own message is answered once; our reply's double rows are not", async () => {
    setup({ allowFrom: ["+15550009999"] });
    const g = gateway();
    await g.subscribed();
    // Texting yourself writes two rows with the same date: is_from_me=1 and is_from_me=0.
    const when = new Date();
    const chat = sim.db.ensureDirectChat("+15550009999");
    sim.db.inject({ from: "+15550009999", text: "note to self", chatId: chat.id, isFromMe: true, createdAt: when });
    sim.db.inject({ from: "+15550009999", text: "note to self", chatId: chat.id, createdAt: when });
    await waitFor(() => sentTexts().includes("echo: note to self"), 10_000, "self-chat reply");
    // The reply to our own handle also comes back as two rows; both must be dropped.
    await g.logs.waitFor((l) => l.msg.includes("echo (text we just sent)") || l.msg.includes("echo (our own message guid)"), 10_000);
    sim.db.inject({ from: "+15550009999", text: "marker", chatId: chat.id });
    await waitFor(() => sentTexts().includes("echo: marker"), 10_000, "marker");
    expect(turns().map((t) => t.text)).toEqual(["note to self", "marker"]);
  });

  test("the echoes of a long chunked reply do not pause the conversation", async () => {
    setup({ textChunkLimit: 200, chunkMode: "newline" }, {}, { IMSG_SIM_ECHO_DUP: "1" });
    const g = gateway({ AGENT_MODE: "long" });
    await g.subscribed();
    sim.db.inject({ from: "+15550001111", text: "long please" });
    await g.logs.waitForCount(5, (l) => l.msg.includes("echo (text we just sent)"), 10_000);
    sim.db.inject({ from: "+15550001111", text: "and again" });
    await waitFor(() => sim.db.sent().length >= 10, 10_000, "second long reply");
  });

  test("in a group, another member repeating our words right after us is not taken for an echo", async () => {
    setup({ groupPolicy: "open", groups: { "*": { requireMention: false } } }, {}, { IMSG_SIM_ECHO_DUP: "1" });
    const g = gateway();
    await g.subscribed();
    const grp = { identifier: "chat4242", participants: ["+15550001111", "+15550002222"] };
    sim.db.inject({ from: "+15550001111", text: "ping", group: grp });
    await waitFor(() => sentTexts().includes("echo: ping"), 10_000, "reply");
    await g.logs.waitFor((l) => l.msg.includes("echo (text we just sent)"), 10_000);
    sim.db.inject({ from: "+15550002222", text: "echo: ping", group: grp });
    await waitFor(() => sentTexts().includes("echo: echo: ping"), 10_000, "the member's message answered");
  });

  // The bot-loop and reflected-markup pauses are covered in rate-guard.test.ts.
  test("text that reflects assistant markup is dropped", async () => {
    setup();
    const g = gateway();
    await g.subscribed();
    const r = sim.db.inject({ from: "+15550001111", text: "<thinking>plan</thinking> answer" });
    await g.logs.waitFor((l) => l.msg.startsWith(`drop row ${r.rowid} `) && l.msg.includes("reflected"), 10_000);
    expect(turns()).toHaveLength(0);
  });
});

describe("lock and shutdown", () => {
  test("a second gateway on the same state dir exits 3 naming the holder's pid", async () => {
    setup();
    const g = gateway();
    await g.subscribed();
    const r = runCli(["gateway", "--config", ws.configPath, "--state-dir", ws.stateDir]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`pid ${g.child.pid}`);
    const quiet = runCli(["gateway", "--config", ws.configPath, "--state-dir", ws.stateDir, "--if-not-running"]);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe("");
  });

  test("SIGTERM during an agent turn: the reply is finished, then exit 0 and the lock is released", async () => {
    setup();
    const g = gateway({ AGENT_MODE: "slow", AGENT_DELAY_MS: "800" });
    await g.subscribed();
    sim.db.inject({ from: "+15550001111", text: "slow one" });
    await waitFor(() => turns().length === 1, 10_000, "agent started");
    expect(await g.stop()).toBe(0);
    expect(sentTexts()).toEqual(["echo: slow one"]);
    expect(existsSync(join(ws.stateDir, "gateway.lock"))).toBe(false);
  });
});
