// What bounds a turn end to end: reply size caps (command and openai backends), the error notice when an agent
// fails or times out (replyOnError), and /stop cancelling a running turn.
import { describe, expect, test } from "bun:test";
import { waitFor } from "../helpers/sim.ts";
import { AGENT, baseConfig, e2eResources } from "../helpers/gateway.ts";
import { TRUNCATION_MARKER } from "../../src/chunk.ts";
import { ERROR_REPLY, NOTHING_TO_STOP_REPLY, STOP_REPLY } from "../../src/turn.ts";
import { inboundKey, Store } from "../../src/store.ts";

const res = e2eResources();
const OWNER = "+15550001111";

function setup(imessage: Record<string, unknown> = {}, extra: Record<string, unknown> = {}, env: Record<string, string> = {}) {
  const sim = res.sim({ env: { IMSG_SIM_POLL_MS: "50" } });
  const ws = res.workspace();
  ws.writeConfig(baseConfig(sim.cliPath, imessage, extra));
  const g = res.gateway(ws, { env });
  return { sim, ws, g, sent: () => sim.db.sent() };
}

function inboundState(stateDir: string, r: { rowid: number; guid: string }): { state: string; reason?: string } | undefined {
  const store = Store.openIfExists(stateDir)!;
  try {
    const row = store.getInbound("default", inboundKey(r.guid, r.rowid));
    return row && { state: row.state, reason: row.reason };
  } finally {
    store.close();
  }
}

describe("reply size caps", () => {
  test("a 5 MB command-agent reply becomes at most replyMaxParts messages, ending with the marker, and is logged", async () => {
    const { sim, g, sent } = setup({ textChunkLimit: 1000, replyMaxParts: 4, replyMaxChars: 100_000 }, {}, { AGENT_MODE: "huge" });
    await g.subscribed();
    sim.db.inject({ from: OWNER, text: "tell me everything" });
    await g.logs.waitFor((l) => l.msg.startsWith("replied to"), 30_000);
    expect(sent()).toHaveLength(4);
    expect(sent().at(-1)!.text).toEndWith(TRUNCATION_MARKER);
    expect(g.logs.items.some((l) => l.msg.includes("cut to 4 part(s)"))).toBe(true);
    expect(g.logs.items.some((l) => l.msg.includes('agent "main" printed more than the output cap'))).toBe(true);
  }, 60_000);

  test("a 3.9 MB openai reply is cut to the default caps (4000 characters)", async () => {
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: () => Response.json({ choices: [{ message: { role: "assistant", content: "blah ".repeat(780_000) } }] }),
    });
    res.track(() => server.stop(true));
    const { sim, g, sent } = setup({ textChunkLimit: 500 }, {
      agents: { list: [{ id: "chat", default: true, openai: { baseUrl: `http://127.0.0.1:${server.port}/v1`, model: "m" } }] },
    });
    await g.subscribed();
    sim.db.inject({ from: OWNER, text: "go on" });
    await g.logs.waitFor((l) => l.msg.startsWith("replied to"), 30_000);
    expect(sent().length).toBeLessThanOrEqual(5);
    expect(sent().reduce((n, s) => n + s.text.length, 0)).toBeLessThanOrEqual(4000 + TRUNCATION_MARKER.length + 5);
    expect(sent().at(-1)!.text).toEndWith(TRUNCATION_MARKER);
  }, 60_000);
});

describe("replyOnError", () => {
  test("a failing agent gets the fixed notice, never the error; a timed-out one too", async () => {
    const { sim, g, sent } = setup({}, {}, { AGENT_MODE: "fail" });
    await g.subscribed();
    sim.db.inject({ from: OWNER, text: "hello" });
    await waitFor(() => sent().find((s) => s.text === ERROR_REPLY), 15_000, "error notice");
    expect(sent().map((s) => s.text).join("\n")).not.toMatch(/exited|code 3|blew up/);
  });

  test("timeout → notice; replyOnError false → nothing sent, the row failed", async () => {
    const slow = setup({}, { agents: { list: [{ id: "main", default: true, command: [process.execPath, AGENT], timeoutSeconds: 1 }] } }, {
      AGENT_MODE: "slow",
      AGENT_DELAY_MS: "5000",
    });
    await slow.g.subscribed();
    slow.sim.db.inject({ from: OWNER, text: "take your time" });
    await waitFor(() => slow.sent().find((s) => s.text === ERROR_REPLY), 15_000, "timeout notice");

    const off = setup({ replyOnError: false }, {}, { AGENT_MODE: "fail" });
    await off.g.subscribed();
    const r = off.sim.db.inject({ from: OWNER, text: "hello" });
    await off.g.logs.waitFor((l) => l.msg.includes(`agent turn for row ${r.rowid} failed (nothing sent)`), 15_000);
    expect(off.sent()).toHaveLength(0);
  }, 60_000);
});

describe("/stop", () => {
  test("cancels the conversation's running turn: no reply for it, the row recorded; nothing running → says so", async () => {
    const { sim, ws, g, sent } = setup({}, {}, { AGENT_MODE: "slow", AGENT_DELAY_MS: "20000" });
    await g.subscribed();
    const long = sim.db.inject({ from: OWNER, text: "a long job" });
    // Wait until the agent is running (its turn is dispatched), then stop it.
    await waitFor(() => inboundState(ws.stateDir, long)?.state === "dispatched" || undefined, 10_000, "turn running");
    const started = Date.now();
    sim.db.inject({ from: OWNER, text: "/stop" });
    await waitFor(() => sent().find((s) => s.text === STOP_REPLY), 10_000, "stop reply");
    await g.logs.waitFor((l) => l.msg.includes(`agent turn for row ${long.rowid} cancelled by /stop`), 10_000);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(inboundState(ws.stateDir, long)).toEqual({ state: "done", reason: "cancelled by /stop" });
    expect(sent().map((s) => s.text)).not.toContain("echo: a long job");
    expect(sent().map((s) => s.text)).not.toContain(ERROR_REPLY);
    // Other text than the first /stop: the same text within 2 s would be taken for an iCloud twin.
    sim.db.inject({ from: OWNER, text: "/stop again" });
    await waitFor(() => sent().find((s) => s.text === NOTHING_TO_STOP_REPLY), 10_000, "nothing to stop");
  }, 60_000);
});
