// End to end: typing while the agent works and read receipts for accepted messages, against the simulator with
// and without the IMCore bridge. imsg 0.9 has no `status`, so there nothing is attempted at all (by sim.version).
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Sim, waitFor } from "../helpers/sim.ts";
import { baseConfig, childEnv, cliCommand, e2eResources, type GatewayProc, type Workspace } from "../helpers/gateway.ts";

const ALICE = "+15550001111";
const STRANGER = "+15550002222";
const e2e = e2eResources();
let sim: Sim;
let ws: Workspace;

function setup(opts: { bridge: boolean; imessage?: Record<string, unknown> }) {
  sim = e2e.sim({ env: { IMSG_SIM_POLL_MS: "50" } });
  if (opts.bridge) sim.db.setControl("bridge", true);
  ws = e2e.workspace();
  ws.writeConfig(baseConfig(sim.cliPath, opts.imessage));
}

const modern = () => sim.version !== "0.9.0";
const replyTo = (text: string) => waitFor(() => sim.db.sent().find((s) => s.text.includes(text)), 15_000, `reply to ${text}`);
/** The gateway has asked imsg what it can do (its presence child's first answer). */
const asked = (gw: GatewayProc) => gw.logs.waitForCount(1, (l) => l.msg.startsWith("capabilities: "), 15_000, "capability check");
const offNote = (gw: GatewayProc) => gw.logs.waitForCount(1, (l) => l.msg.startsWith("typing and read receipts are off"), 15_000, "why typing is off");

describe("presence: typing and read receipts", () => {
  test("with the bridge: typing before the agent runs, off after the reply; a read receipt for the accepted message only", async () => {
    setup({ bridge: true });
    const log = join(ws.dir, "agent.jsonl");
    const gw = e2e.gateway(ws, { env: { AGENT_MODE: "slow", AGENT_DELAY_MS: "2000", AGENT_LOG: log } });
    await gw.subscribed();
    await asked(gw);
    // A message policy drops (sender not allowlisted) first: it must get no read receipt.
    const dropped = sim.db.inject({ from: STRANGER, text: "who is this" });
    await gw.logs.waitForCount(1, (l) => l.msg.startsWith(`drop row ${dropped.rowid}`), 15_000, "the stranger's message dropped");
    const accepted = sim.db.inject({ from: ALICE, text: "take your time" });
    const reply = await replyTo("echo: take your time");
    const agentStarted = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { startedAt: number })[0]!.startedAt;
    if (!modern()) {
      expect(sim.db.presenceEvents()).toEqual([]);
      expect(await gw.stop()).toBe(0);
      return;
    }
    const off = await waitFor(() => sim.db.presenceEvents({ method: "typing" }).find((e) => e.typing === false), 10_000, "typing off");
    const typing = sim.db.presenceEvents({ method: "typing", chatId: accepted.chatId });
    expect(typing.length).toBeGreaterThanOrEqual(2);
    expect(typing[0]).toMatchObject({ typing: true, ok: true });
    expect(typing[0]!.at).toBeLessThanOrEqual(agentStarted);
    expect(typing.at(-1)).toEqual(off);
    expect(off.at).toBeGreaterThanOrEqual(reply.createdAt.getTime());
    const reads = sim.db.presenceEvents({ method: "read" });
    expect(reads).toHaveLength(1);
    expect(reads[0]).toMatchObject({ chatId: accepted.chatId, ok: true });
    expect(reads[0]!.at).toBeLessThanOrEqual(agentStarted);
    expect(sim.db.presenceEvents({ chatId: dropped.chatId })).toEqual([]);
    expect(await gw.stop()).toBe(0);
  });

  test("without the bridge: nothing imsg would refuse is attempted; the log, /status and probe say why", async () => {
    setup({ bridge: false });
    const gw = e2e.gateway(ws);
    await gw.subscribed();
    const verdict = await offNote(gw);
    expect(verdict[0]!.msg).toContain(modern() ? "needs the IMCore bridge" : "imsg has no `status`");
    sim.db.inject({ from: ALICE, text: "hello" });
    await replyTo("echo: hello");
    sim.db.inject({ from: ALICE, text: "/status" });
    const status = await replyTo("account: default");
    expect(status.text).toContain(
      modern()
        ? `imsg ${sim.version} (bridge not ready): actions none; not supported: typing, read, tapback, reply_to, edit, unsend`
        : "imsg actions: none (imsg has no `status`",
    );
    expect(sim.db.presenceEvents()).toEqual([]);
    expect(await gw.stop()).toBe(0);

    const [cmd, pre] = cliCommand("bun");
    const p = Bun.spawn([cmd, ...pre, "probe", "--config", ws.configPath, "--state-dir", ws.stateDir], {
      env: childEnv(),
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
    });
    const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
    expect(code).toBe(0);
    if (modern()) {
      expect(out).toContain(
        "  info typing, read, tapback, reply_to, edit, unsend: needs the IMCore bridge (SIP off, `imsg launch`): not ready (The bridge is not started.",
      );
    } else expect(out).toContain("  info imsg has no `status` (0.14+ needed): typing, read receipts, tapbacks and threaded replies are off\n");
  });

  test("a tapback's turn marks nothing read and shows no typing; the message before it did both", async () => {
    setup({ bridge: true });
    const gw = e2e.gateway(ws);
    await gw.subscribed();
    await asked(gw);
    sim.db.inject({ from: ALICE, text: "hello there" });
    const ours = await replyTo("echo: hello there");
    if (modern()) await waitFor(() => sim.db.presenceEvents({ method: "typing" }).some((e) => e.typing === false), 10_000, "typing off");
    const before = sim.db.presenceEvents().length;
    sim.db.inject({ from: ALICE, reaction: { to: ours.guid, type: "like" } });
    await replyTo("reaction: 👍 added");
    expect(sim.db.presenceEvents().length).toBe(before);
    expect(sim.db.presenceEvents({ method: "read" })).toHaveLength(modern() ? 1 : 0);
    expect(await gw.stop()).toBe(0);
  });

  test("a stranger's message under pairing gets a pairing code and no read receipt; the owner's next message does", async () => {
    setup({ bridge: true, imessage: { dmPolicy: "pairing" } });
    const gw = e2e.gateway(ws);
    await gw.subscribed();
    await asked(gw);
    const stranger = sim.db.inject({ from: STRANGER, text: "hi?" });
    await replyTo("only talks to people");
    const owner = sim.db.inject({ from: ALICE, text: "me again" });
    await replyTo("echo: me again");
    if (modern()) await waitFor(() => sim.db.presenceEvents({ method: "read" }).length > 0, 10_000, "the owner's read receipt");
    expect(sim.db.presenceEvents({ chatId: stranger.chatId })).toEqual([]);
    expect(sim.db.presenceEvents({ method: "read" }).map((e) => e.chatId)).toEqual(modern() ? [owner.chatId] : []);
    expect(await gw.stop()).toBe(0);
  });
});
