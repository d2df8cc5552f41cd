// The watch against what real imsg does (docs/IMSG-PROTOCOL.md "Watch", "Start"): a replaced chat.db, buffer
// overflow, an unreadable database, rows not yet joined to a chat, malformed and foreign notifications, benign
// stderr. Expectations that differ by imsg version are picked by sim.version.
import { describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "../helpers/sim.ts";
import { baseConfig, e2eResources, ROOT, type Workspace } from "../helpers/gateway.ts";

const res = e2eResources();
const OWNER = "+15550001111";
const FAST = { debounceMs: 10, backoffInitialMs: 50, shutdownGraceMs: 3000 };
const tuning = (t: Record<string, number> = {}) => JSON.stringify({ ...FAST, watchdogMs: 2000, ...t });
const sender = (i: number) => `+1555${String(2000000 + i).slice(1)}`;

function setup(imessage: Record<string, unknown> = {}, simEnv: Record<string, string> = {}, extra: Record<string, unknown> = {}) {
  const sim = res.sim({ env: { IMSG_SIM_POLL_MS: "50", ...simEnv } });
  const ws = res.workspace();
  ws.writeConfig(baseConfig(sim.cliPath, imessage, extra));
  const sent = () => sim.db.sent().map((s) => s.text);
  return { sim, ws, sent };
}

/** An `imsg` that runs the simulator through test/fixtures/noisy-imsg.ts (NOISY_MODE picks the dirt). */
function noisyCli(ws: Workspace, simCli: string, mode: string): string {
  const p = join(ws.dir, "noisy-imsg");
  writeFileSync(p, `#!/bin/sh\nNOISY_MODE=${mode} exec "${process.execPath}" "${join(ROOT, "test/fixtures/noisy-imsg.ts")}" "${simCli}" "$@"\n`);
  chmodSync(p, 0o755);
  return p;
}

describe("database generations", () => {
  test("a chat.db swapped for one with lower ROWIDs under an old state dir: new messages are answered within 15 s", async () => {
    const { sim, ws, sent } = setup();
    let g = res.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning() } });
    await g.subscribed();
    for (let i = 0; i < 4; i++) sim.db.inject({ from: OWNER, text: `old ${i}` });
    await waitFor(() => sent().includes("echo: old 3"), 15_000, "replies in the old database");
    expect(await g.stop()).toBe(0);
    sim.db.replaceDatabase();
    g = res.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning() } });
    await g.subscribed();
    await g.logs.waitFor((l) => l.msg.includes("new Messages database"), 5000, "the new database logged");
    const fresh = sim.db.inject({ from: OWNER, text: "after the restore" });
    expect(fresh.rowid).toBeLessThan(8);
    await waitFor(() => sent().includes("echo: after the restore"), 15_000, "a reply in the new database");
    expect(sent()).toEqual(["echo: after the restore"]);
  }, 60_000);

  test("a chat.db swapped while the gateway runs: 0.15 is noticed by the watchdog, 0.9 at the next restart", async () => {
    const { sim, ws, sent } = setup();
    let g = res.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning() } });
    await g.subscribed();
    for (let i = 0; i < 3; i++) sim.db.inject({ from: OWNER, text: `old ${i}` });
    await waitFor(() => sent().includes("echo: old 2"), 15_000, "replies in the old database");
    sim.db.replaceDatabase();
    if (sim.version === "0.9.0") {
      // 0.9 keeps reading the file it opened: only a new child sees the new database.
      expect(await g.stop()).toBe(0);
      g = res.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning() } });
    }
    await g.logs.waitFor((l) => l.msg.includes("new Messages database"), 15_000, "the new database noticed");
    sim.db.inject({ from: OWNER, text: "after the swap" });
    await waitFor(() => sent().includes("echo: after the swap"), 15_000, "a reply in the new database");
  }, 60_000);
});

describe("backpressure", () => {
  test("600 rows written while the gateway was down are answered each exactly once within 60 s with a 256-row buffer", async () => {
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        const body = (await req.json()) as any;
        // The model sees user text quoted ("> m-1"); the reply names the message unquoted.
        return Response.json({ choices: [{ message: { role: "assistant", content: `re: ${String(body.messages.at(-1).content).replace(/^> /, "")}` } }] });
      },
    });
    res.track(() => server.stop(true));
    // The send side's own limits are not under test here.
    const { sim, ws, sent } = setup({ dmPolicy: "open", allowFrom: ["*"], recoveryMaxRows: 1000 }, { IMSG_SIM_BUSY_LIMIT: "100000" });
    ws.writeConfig({
      ...baseConfig(sim.cliPath, { dmPolicy: "open", allowFrom: ["*"], recoveryMaxRows: 1000 }, { session: { dmScope: "per-peer" } }),
      agents: { list: [{ id: "m", default: true, timeoutSeconds: 30, openai: { baseUrl: `http://127.0.0.1:${server.port}/v1`, model: "t", apiKeyEnv: "K" } }] },
    });
    // A long watchdog: an overflow left to it would cost a minute per 256 rows.
    const env = { K: "k", OPENCLAW_IMSG_TUNING: tuning({ watchdogMs: 60_000, bufferLimit: 256, maxConcurrentTurns: 32 }) };
    let g = res.gateway(ws, { env });
    await g.subscribed();
    expect(await g.stop()).toBe(0);
    const N = 600;
    for (let i = 0; i < N; i++) sim.db.inject({ from: sender(i), text: `m-${i}` });
    const started = Date.now();
    g = res.gateway(ws, { env });
    await waitFor(() => new Set(sent()).size >= N, 60_000, `${N} replies (have ${new Set(sent()).size})`);
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(await g.stop()).toBe(0);
    const counts = new Map<string, number>();
    for (const t of sent()) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (let i = 0; i < N; i++) expect(counts.get(`re: m-${i}`)).toBe(1);
    if (sim.version !== "0.9.0") expect(g.logs.items.some((l) => l.msg.startsWith("watch buffer overflowed"))).toBe(true);
  }, 120_000);
});

describe("database unavailable", () => {
  test("an unreadable database: logged with the Full Disk Access hint, retried, and nothing written meanwhile is lost", async () => {
    const { sim, ws, sent } = setup();
    const env = { OPENCLAW_IMSG_TUNING: tuning({ backoffMaxMs: 1000 }) };
    let g = res.gateway(ws, { env });
    await g.subscribed();
    expect(await g.stop()).toBe(0);
    sim.db.setUnreadable(true);
    sim.db.inject({ from: OWNER, text: "while unreadable" });
    g = res.gateway(ws, { env });
    await g.logs.waitFor(
      (l) => l.level === "error" && l.msg.includes("cannot read the Messages database") && l.msg.includes("Full Disk Access"),
      15_000,
      "the hint",
    );
    // Retried with backoff (the same cause is repeated at debug).
    await g.logs.waitFor((l) => l.level === "debug" && l.msg.includes("cannot read the Messages database"), 15_000, "a retry");
    sim.db.setUnreadable(false);
    await waitFor(() => sent().includes("echo: while unreadable"), 15_000, "the reply once readable");
    expect(sent()).toEqual(["echo: while unreadable"]);
  }, 60_000);

  test("a dbPath that does not exist: 0.15 says to fix dbPath, 0.9 gives the combined hint", async () => {
    const { sim, ws } = setup({ dbPath: "/nonexistent/openclaw-imsg-test/chat.db" });
    const g = res.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning({ backoffMaxMs: 1000 }) } });
    const line = await g.logs.waitFor((l) => l.level === "error" && l.msg.includes("cannot read the Messages database"), 15_000, "the hint");
    expect(line.msg).toContain(sim.version === "0.9.0" ? "or fix channels.imessage.dbPath" : "there is no chat.db at /nonexistent/");
  }, 30_000);
});

describe("notifications", () => {
  test("a group row with chat_id 0 from a stranger earns no pairing code and no DM", async () => {
    const { sim, ws, sent } = setup({ dmPolicy: "pairing", allowFrom: [OWNER] });
    const g = res.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning() } });
    await g.subscribed();
    const row = sim.db.inject({ from: "+15550007777", text: "hi all", chatId: 0 });
    if (sim.version === "0.9.0") {
      // 0.9 emits it with chat_id 0: re-read, never joined, dropped with its reason.
      await g.logs.waitFor((l) => l.msg.startsWith(`drop row ${row.rowid} `) && l.msg.includes("not joined to a chat"), 15_000, "the drop");
    }
    sim.db.inject({ from: OWNER, text: "after" });
    await waitFor(() => sent().includes("echo: after"), 15_000, "the owner's reply");
    expect(sent()).toEqual(["echo: after"]);
  }, 30_000);

  test("a row with chat_id 0 that is joined to its group a moment later is decided as a group row (0.9: re-read)", async () => {
    const { sim, ws, sent } = setup({ dmPolicy: "pairing", allowFrom: [OWNER] });
    const g = res.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning() } });
    await g.subscribed();
    const group = sim.db.ensureGroupChat({ identifier: "chat-unjoined", participants: ["+15550007777", OWNER] });
    const row = sim.db.inject({ from: "+15550007777", text: "hello group", chatId: 0 });
    // 0.9 emits it at once with chat_id 0; 0.15 holds it back until it is joined.
    if (sim.version === "0.9.0") await g.logs.waitFor((l) => l.msg.includes(`row ${row.rowid} is not joined to a chat yet`), 10_000, "the deferral");
    sim.db.joinChat(row.rowid, group.id);
    // The group is not allowlisted, so group policy drops it: decided as a group row, never as a DM.
    const drop = await g.logs.waitFor((l) => l.msg.startsWith(`drop row ${row.rowid} `), 15_000, "a group decision");
    expect(drop.msg).toContain(`in chat ${group.id}: `);
    expect(drop.msg).not.toContain("pairing");
    expect(sent()).toEqual([]);
  }, 30_000);

  test("a malformed notification {id:900000000} does not move the cursor: the next restart still hears new messages", async () => {
    const { sim, ws, sent } = setup();
    ws.writeConfig(baseConfig(noisyCli(ws, sim.cliPath, "malformed")));
    let g = res.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning() } });
    await g.subscribed();
    await g.logs.waitFor((l) => l.msg.startsWith("drop malformed message payload (row 900000000)"), 10_000, "the malformed payload");
    sim.db.inject({ from: OWNER, text: "one" });
    await waitFor(() => sent().includes("echo: one"), 15_000, "first reply");
    expect(await g.stop()).toBe(0);
    g = res.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning() } });
    await g.subscribed();
    sim.db.inject({ from: OWNER, text: "two" });
    await waitFor(() => sent().includes("echo: two"), 15_000, "a reply after the restart");
    expect(g.logs.items.some((l) => l.msg.includes("new Messages database"))).toBe(false);
  }, 60_000);

  test("a noisy stream with foreign notifications: 4 messages answered within 30 s, the child never restarted, foreign rows ignored", async () => {
    const { sim, ws, sent } = setup();
    ws.writeConfig(baseConfig(noisyCli(ws, sim.cliPath, "noise")));
    const g = res.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning({ watchdogMs: 60_000 }) } });
    await g.subscribed();
    const started = Date.now();
    for (let i = 0; i < 4; i++) {
      sim.db.inject({ from: OWNER, text: `n-${i}` });
      await waitFor(() => sent().includes(`echo: n-${i}`), 30_000, `reply ${i}`);
    }
    expect(Date.now() - started).toBeLessThan(30_000);
    // Deterministic: every batch was preceded by an error for subscription 999; none of them touched our child.
    expect(g.logs.items.filter((l) => l.msg.startsWith("subscribed")).length).toBe(1);
    expect(g.logs.items.some((l) => l.msg.includes("watch child failed") || l.msg.includes("resubscribing"))).toBe(false);
    expect(g.logs.items.some((l) => l.level === "debug" && l.msg.includes("subscription 999"))).toBe(true);
    expect(sent().filter((t) => t.includes("foreign"))).toEqual([]);
  }, 60_000);

  test("the benign Contacts line of newer imsg on stderr is not a warning", async () => {
    const { sim, ws } = setup({}, { IMSG_SIM_CONTACTS_STDERR: "1" });
    const g = res.gateway(ws, { env: { OPENCLAW_IMSG_TUNING: tuning() } });
    await g.subscribed();
    if (sim.version !== "0.9.0") await g.logs.waitFor((l) => l.level === "debug" && l.msg.includes("Contacts"), 10_000, "the Contacts line at debug");
    expect(g.logs.items.filter((l) => (l.level === "warn" || l.level === "error") && l.msg.includes("Contacts"))).toEqual([]);
  }, 30_000);
});
