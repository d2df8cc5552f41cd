// End to end: gateway child process ↔ imsg simulator ↔ fixture agent, fresh state dir each test.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Sim, waitFor } from "../helpers/sim.ts";
import { baseConfig, e2eResources, type Workspace } from "../helpers/gateway.ts";

const FAST = { IMSG_SIM_POLL_MS: "50" };
const e2e = e2eResources();
let sim: Sim;
let ws: Workspace;

function setup(imessage: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  sim = e2e.sim({ env: FAST });
  ws = e2e.workspace();
  ws.writeConfig(baseConfig(sim.cliPath, imessage, extra));
}

const sentTexts = () => sim.db.sent().map((s) => s.text);

describe("gateway: one DM", () => {
  test("an allowlisted DM reaches the agent and its reply goes back to the sender", async () => {
    setup();
    const log = join(ws.dir, "agent.jsonl");
    const gw = e2e.gateway(ws, { env: { AGENT_LOG: log } });
    await gw.subscribed();
    sim.db.inject({ from: "+15550001111", text: "hello there" });
    await waitFor(() => sentTexts().includes("echo: hello there"), 10_000, "reply");
    const sent = sim.db.sent();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.recipient ?? sent[0]!.chatIdentifier).toContain("+15550001111");
    const turn = JSON.parse(readFileSync(log, "utf8").trim().split("\n")[0]!);
    expect(turn).toMatchObject({
      text: "hello there",
      chatType: "direct",
      sender: "+15550001111",
      sessionKey: "agent:main:main",
      agentId: "main",
      accountId: "default",
    });
    expect(turn.env).toEqual({ session: "agent:main:main", agent: "main", account: "default", chatType: "direct" });
    expect(await gw.stop()).toBe(0);
  });
});
