// End to end: the agent's actions (REACT:, REPLY-TO: directive lines) against the simulator, with and without the
// IMCore bridge, and exactly once across kill -9. imsg 0.9 has no `status`: nothing advanced is attempted there
// (its expectations are picked by sim.version), but `imsg react` exists in both.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { type Sim, waitFor } from "../helpers/sim.ts";
import { baseConfig, e2eResources, type Workspace } from "../helpers/gateway.ts";

const ALICE = "+15550001111";
const e2e = e2eResources();
let sim: Sim;
let ws: Workspace;
let trace: string;

function setup(opts: { bridge: boolean; imessage?: Record<string, unknown>; env?: Record<string, string> }) {
  ws = e2e.workspace();
  trace = join(ws.dir, "trace.jsonl");
  sim = e2e.sim({ env: { IMSG_SIM_POLL_MS: "50", IMSG_SIM_TRACE: trace, ...opts.env } });
  if (opts.bridge) sim.db.setControl("bridge", true);
  ws.writeConfig(baseConfig(sim.cliPath, opts.imessage));
}

const modern = () => sim.version !== "0.9.0";
// The fixture agent's "script" mode prints the message text with each literal "\n" as a line break.
const gateway = (env: Record<string, string> = {}) => e2e.gateway(ws, { env: { AGENT_MODE: "script", ...env } });
const replyTo = (text: string) => waitFor(() => sim.db.sent().find((s) => s.text === text), 15_000, `the reply ${JSON.stringify(text)}`);
const traced = (k: string) =>
  existsSync(trace)
    ? readFileSync(trace, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.k === k)
    : [];
const ours = (guid: string) => sim.db.reactionsOn(guid).filter((r) => r.isFromMe);

describe("agent actions", () => {
  test("REACT: like with the bridge: one tapback on the message answered, the text without the directive, and our tapback's echo is no owner reply", async () => {
    setup({ bridge: true });
    const gw = gateway();
    await gw.subscribed();
    const m = sim.db.inject({ from: ALICE, text: "REACT: like\\nsure thing" });
    await replyTo("sure thing");
    if (modern()) {
      const r = await waitFor(() => ours(m.guid)[0], 10_000, "our tapback");
      expect(r).toMatchObject({ type: "like", add: true });
    }
    // Our own tapback row came back through the watch: it must not silence the agent (owner takeover).
    sim.db.inject({ from: ALICE, text: "and again" });
    await replyTo("and again");
    expect(ours(m.guid)).toHaveLength(modern() ? 1 : 0);
    expect(sim.db.sent().map((s) => s.text)).toEqual(["sure thing", "and again"]);
    expect(await gw.stop()).toBe(0);
  });

  test("kill -9 while the tapback is inside imsg: after the restart it exists exactly once, and the text follows once", async () => {
    setup({ bridge: true });
    sim.db.setControl("tapback_delay_ms", 1500);
    let gw = gateway();
    await gw.subscribed();
    const m = sim.db.inject({ from: ALICE, text: "REACT: love\\nnoted" });
    if (modern()) {
      await waitFor(() => traced("tb").length >= 1, 15_000, "the tapback request");
      await gw.kill();
      gw = gateway();
      await gw.logs.waitFor((l) => l.msg.startsWith("reconciled 1 unsettled outbound part(s): 1 confirmed sent"), 20_000);
    }
    await replyTo("noted");
    expect(ours(m.guid).map((r) => r.type)).toEqual(modern() ? ["love"] : []);
    expect(traced("tb")).toHaveLength(modern() ? 1 : 0);
    expect(sim.db.sent().map((s) => s.text)).toEqual(["noted"]);
    expect(await gw.stop()).toBe(0);
  }, 45_000);

  test("kill -9 between journal and send (imsg lost the request with the gateway): sent again after the restart, once", async () => {
    setup({ bridge: true });
    sim.db.setControl("tapback_delay_ms", 60_000);
    let gw = gateway();
    await gw.subscribed();
    const m = sim.db.inject({ from: ALICE, text: "REACT: laugh\\nha" });
    if (modern()) {
      await waitFor(() => traced("tb").length >= 1, 15_000, "the tapback request");
      // The gateway and the imsg child holding the tapback both die: it never lands.
      const pid = sendChildPid(ws.stateDir);
      await gw.kill();
      if (pid) process.kill(pid, "SIGKILL");
      sim.db.setControl("tapback_delay_ms", 0);
      gw = gateway();
    }
    await replyTo("ha");
    if (modern()) await waitFor(() => ours(m.guid)[0], 20_000, "the tapback sent again");
    expect(ours(m.guid).map((r) => r.type)).toEqual(modern() ? ["laugh"] : []);
    expect(traced("tb")).toHaveLength(modern() ? 2 : 0);
    expect(sim.db.sent().map((s) => s.text)).toEqual(["ha"]);
    expect(await gw.stop()).toBe(0);
  }, 60_000);

  test("a threaded reply with the bridge carries reply_to; without it, it goes out unthreaded once", async () => {
    setup({ bridge: true });
    const gw = gateway();
    await gw.subscribed();
    const a = sim.db.inject({ from: ALICE, text: "REPLY-TO: this\\nin thread" });
    const s = await replyTo("in thread");
    expect(sim.db.messageByGuid(s.guid)!.associatedMessageGuid.endsWith(a.guid)).toBe(modern());
    // The bridge goes away after the capabilities were read: imsg refuses reply_to, the part goes out plain, once.
    sim.db.setControl("bridge", false);
    sim.db.inject({ from: ALICE, text: "REPLY-TO: this\\nplain now" });
    const p = await replyTo("plain now");
    expect(sim.db.messageByGuid(p.guid)!.associatedMessageGuid).toBe("");
    expect(traced("s").filter((t) => t.text === "plain now").length).toBe(modern() ? 2 : 1);
    expect(sim.db.sent().map((x) => x.text)).toEqual(["in thread", "plain now"]);
    expect(await gw.stop()).toBe(0);
  });

  test("a threaded file the bridge helper cannot thread is refused, then sent plain once; the text stays threaded", async () => {
    setup({ bridge: true });
    sim.db.setControl("bridge_attachment_metadata", "0");
    const file = join(ws.dir, "chart.png");
    writeFileSync(file, Buffer.alloc(128, 7));
    const gw = gateway();
    await gw.subscribed();
    const a = sim.db.inject({ from: ALICE, text: `REPLY-TO: this\\nhere it is\\nMEDIA:${file}` });
    const files = await waitFor(
      () => {
        const f = sim.db.sent().filter((x) => x.file);
        return f.length ? f : undefined;
      },
      15_000,
      "the file",
    );
    const text = await replyTo("here it is");
    expect(files).toHaveLength(1);
    expect(sim.db.messageByGuid(files[0]!.guid)!.associatedMessageGuid).toBe("");
    expect(sim.db.messageByGuid(text.guid)!.associatedMessageGuid.endsWith(a.guid)).toBe(modern());
    expect(sim.db.sent()).toHaveLength(2);
    expect(await gw.stop()).toBe(0);
  });

  test("the bridge goes away after imsg was asked: the refused tapback asks again and goes through `imsg react` (reactFallback), once", async () => {
    setup({ bridge: true, imessage: { reactFallback: true } });
    const gw = gateway();
    await gw.subscribed();
    sim.db.inject({ from: ALICE, text: "hi" });
    await replyTo("hi");
    sim.db.setControl("bridge", false);
    const m = sim.db.inject({ from: ALICE, text: "REACT: like\\nok" });
    await replyTo("ok");
    await waitFor(() => ours(m.guid)[0], 10_000, "the tapback");
    expect(ours(m.guid).map((r) => r.type)).toEqual(["like"]);
    expect(traced("react")).toHaveLength(1);
    // 0.9 cannot say what it can do: it never tries the bridge, `imsg react` straight away.
    expect(traced("tb").length).toBeLessThanOrEqual(modern() ? 1 : 0);
    expect(await gw.stop()).toBe(0);
  });

  test("without the bridge: no tapback and no reply_to is attempted; the reply goes out once", async () => {
    setup({ bridge: false });
    const gw = gateway();
    await gw.subscribed();
    const m = sim.db.inject({ from: ALICE, text: "REACT: like\\nREPLY-TO: this\\nhello there" });
    const s = await replyTo("hello there");
    await gw.logs.waitFor((l) => /tapback .*not sent/i.test(l.msg), 10_000);
    expect(traced("tb")).toEqual([]);
    expect(traced("react")).toEqual([]);
    expect(ours(m.guid)).toEqual([]);
    expect(traced("s")).toHaveLength(1);
    expect(sim.db.messageByGuid(s.guid)!.associatedMessageGuid).toBe("");
    expect(await gw.stop()).toBe(0);
  });

  test("reactFallback: without the bridge a standard tapback goes through `imsg react`, only while the message is the newest", async () => {
    setup({ bridge: false, imessage: { reactFallback: true } });
    const gw = gateway();
    await gw.subscribed();
    const m = sim.db.inject({ from: ALICE, text: "REACT: like\\nok" });
    await replyTo("ok");
    await waitFor(() => ours(m.guid)[0], 10_000, "the tapback by imsg react");
    expect(ours(m.guid).map((r) => r.type)).toEqual(["like"]);
    expect(traced("react")).toHaveLength(1);
    expect(await gw.stop()).toBe(0);
  });

  test("reactFallback: a newer incoming message came while the agent worked, so `imsg react` is not run (it would react to that one)", async () => {
    setup({ bridge: false, imessage: { reactFallback: true } });
    const log = join(ws.dir, "agent.jsonl");
    const gw = gateway({ AGENT_DELAY_MS: "1500", AGENT_LOG: log });
    await gw.subscribed();
    const a = sim.db.inject({ from: ALICE, text: "REACT: like\\nfirst" });
    await waitFor(() => existsSync(log), 15_000, "the agent started on the first message");
    const b = sim.db.inject({ from: ALICE, text: "second" });
    await replyTo("first");
    await replyTo("second");
    await gw.logs.waitFor((l) => l.msg.includes("newest incoming message only"), 10_000);
    expect(traced("react")).toEqual([]);
    expect([...sim.db.reactionsOn(a.guid), ...sim.db.reactionsOn(b.guid)]).toEqual([]);
    expect(await gw.stop()).toBe(0);
  });

  test("reactFallback: imsg react refused (no Accessibility permission): the text still goes, once, and the log says why", async () => {
    setup({ bridge: false, imessage: { reactFallback: true } });
    sim.db.setControl("react_denied", true);
    const gw = gateway();
    await gw.subscribed();
    const m = sim.db.inject({ from: ALICE, text: "REACT: love\\nstill here" });
    await replyTo("still here");
    const why = await gw.logs.waitFor((l) => /tapback .*not sent: imsg react failed/.test(l.msg), 10_000);
    expect(why.msg).toContain("assistive access");
    expect(traced("react")).toHaveLength(1);
    expect(ours(m.guid)).toEqual([]);
    expect(sim.db.sent().map((s) => s.text)).toEqual(["still here"]);
    expect(await gw.stop()).toBe(0);
  });
});

/** The pid of the imsg child an outbound part was handed to (the journal records it). */
function sendChildPid(stateDir: string): number | undefined {
  const db = new DatabaseSync(join(stateDir, "state.db"), { readOnly: true });
  try {
    const r = db.prepare("SELECT sender_pid FROM outbound WHERE sender_pid IS NOT NULL ORDER BY id DESC LIMIT 1").get() as
      | { sender_pid: number }
      | undefined;
    return r?.sender_pid;
  } finally {
    db.close();
  }
}
