// Cron and launchd operation: --if-not-running, --replace, --detach, probe --require-gateway.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readLock } from "../../src/lock.ts";
import { createSim, type Sim, waitFor } from "../helpers/sim.ts";
import { baseConfig, GatewayProc, runCli, type Workspace, workspace } from "../helpers/gateway.ts";

let sim: Sim;
let ws: Workspace;
const gws: GatewayProc[] = [];
const pids: number[] = [];
const TUNING = { OPENCLAW_IMSG_TUNING: JSON.stringify({ debounceMs: 10, inboundDebounceMs: 0, backoffInitialMs: 50, shutdownGraceMs: 3000 }) };

afterEach(async () => {
  for (const g of gws.splice(0)) await g.kill();
  for (const p of pids.splice(0)) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  sim?.cleanup();
  ws?.cleanup();
});

function setup(imessage: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  sim = createSim({ env: { IMSG_SIM_POLL_MS: "50" } });
  ws = workspace();
  ws.writeConfig(baseConfig(sim.cliPath, imessage, extra));
}
const gwArgs = () => ["gateway", "--config", ws.configPath, "--state-dir", ws.stateDir];
const sentTexts = () => sim.db.sent().map((s) => s.text);

describe("--detach", () => {
  test("returns once subscribed, the gateway keeps running in the background and logs to the file", async () => {
    setup();
    const logFile = join(ws.dir, "gw.log");
    const r = runCli([...gwArgs(), "--detach", "--log-file", logFile], { env: TUNING });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("gateway started in the background");
    const lock = readLock(ws.stateDir);
    expect(lock?.subscribedAt).toBeGreaterThan(0);
    pids.push(lock!.pid);
    expect(readFileSync(logFile, "utf8")).toContain("subscribed");
    sim.db.inject({ from: "+15550001111", text: "detached?" });
    await waitFor(() => sentTexts().includes("echo: detached?"), 10_000, "reply from the detached gateway");
    // --if-not-running from cron: quiet, exit 0, still one gateway.
    const again = runCli([...gwArgs(), "--if-not-running", "--detach", "--log-file", logFile], { env: TUNING });
    expect(again.code).toBe(0);
    expect(again.stdout).toBe("");
    expect(readLock(ws.stateDir)?.pid).toBe(lock!.pid);
    // probe --require-gateway sees it.
    const probe = runCli(["probe", "--config", ws.configPath, "--state-dir", ws.stateDir, "--require-gateway", "--json"]);
    expect(JSON.parse(probe.stdout).accounts[0].checks.find((c: any) => c.name === "gateway running").ok).toBe(true);
    process.kill(lock!.pid, "SIGTERM");
    await waitFor(() => !readLock(ws.stateDir), 10_000, "detached gateway to stop");
  });

  test("a gateway that cannot start reports why and exits non-zero", () => {
    setup();
    ws.writeConfig({ channels: { imessage: { cliPath: sim.cliPath } } }); // no agent configured
    const r = runCli([...gwArgs(), "--detach", "--log-file", join(ws.dir, "gw.log")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no agent configured");
    expect(readLock(ws.stateDir)).toBeUndefined();
  });

  test("--detach without --log-file is a usage error", () => {
    setup();
    expect(runCli([...gwArgs(), "--detach"]).code).toBe(2);
  });
});

describe("--if-not-running and --replace", () => {
  test("--if-not-running twice leaves exactly one gateway", async () => {
    setup();
    const a = new GatewayProc(ws, { args: ["--if-not-running"] });
    gws.push(a);
    await a.subscribed();
    const b = new GatewayProc(ws, { args: ["--if-not-running"] });
    gws.push(b);
    expect(await b.exited).toBe(0);
    expect(readLock(ws.stateDir)?.pid).toBe(a.child.pid);
  });

  test("--replace during a burst: the old gateway hands over, every message is answered exactly once", async () => {
    setup({ dmPolicy: "open", allowFrom: ["*"] }, { session: { dmScope: "per-peer" } });
    const old = new GatewayProc(ws, { env: { AGENT_MODE: "slow", AGENT_DELAY_MS: "100" } });
    gws.push(old);
    await old.subscribed();
    const N = 60;
    for (let i = 0; i < N; i++) sim.db.inject({ from: `+1555010${String(1000 + i).slice(1)}`, text: `r-${i}` });
    await waitFor(() => sentTexts().length >= 5, 20_000, "some replies before the takeover");
    const fresh = new GatewayProc(ws, { args: ["--replace"], env: { AGENT_MODE: "slow", AGENT_DELAY_MS: "100" } });
    gws.push(fresh);
    expect(await old.exited).toBe(0);
    await fresh.subscribed();
    await waitFor(() => new Set(sentTexts()).size >= N, 30_000, `${N} replies`);
    const counts = new Map<string, number>();
    for (const t of sentTexts()) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (let i = 0; i < N; i++) expect(counts.get(`echo: r-${i}`)).toBe(1);
    expect(readLock(ws.stateDir)?.pid).toBe(fresh.child.pid);
  }, 60_000);
});

describe("probe --require-gateway", () => {
  test("fails with no gateway, while the plain probe stays green on a fresh install", () => {
    setup();
    const plain = runCli(["probe", "--config", ws.configPath, "--state-dir", ws.stateDir]);
    expect(plain.code).toBe(0);
    const strict = runCli(["probe", "--config", ws.configPath, "--state-dir", ws.stateDir, "--require-gateway"]);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toContain("gateway running");
    expect(existsSync(join(ws.stateDir, "gateway.lock"))).toBe(false);
  });
});
