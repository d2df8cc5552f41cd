// Hostile inputs end to end: a forged SMS from the owner's number, forged context lines, MEDIA paths reaching
// secrets through a symlinked home, and a contact wiping the session it shares with the owner.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor, type Sim } from "../helpers/sim.ts";
import { baseConfig, e2eResources, type GatewayProc, type Workspace } from "../helpers/gateway.ts";

const res = e2eResources();
const OWNER = "+15550001111";
const STRANGER = "+15550003333";

interface Setup {
  sim: Sim;
  ws: Workspace;
  gw: GatewayProc;
  agentLog: string;
}

async function start(imessage: Record<string, unknown>, extra: Record<string, unknown> = {}, env: Record<string, string> = {}): Promise<Setup> {
  const sim = res.sim({ env: { IMSG_SIM_POLL_MS: "50" } });
  const ws = res.workspace();
  writeFileSync(ws.configPath, JSON.stringify(baseConfig(sim.cliPath, imessage, extra), null, 2), { mode: 0o600 });
  const agentLog = join(ws.dir, "agent.jsonl");
  const gw = res.gateway(ws, { env: { AGENT_LOG: agentLog, ...env } });
  await gw.subscribed();
  return { sim, ws, gw, agentLog };
}

const turns = (s: Setup): { body: string; text: string }[] =>
  existsSync(s.agentLog) ? readFileSync(s.agentLog, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];

async function dropped(s: Setup, rowid: number): Promise<string> {
  const l = await s.gw.logs.waitFor((x) => x.msg.startsWith(`drop row ${rowid} `), 10_000, `drop of row ${rowid}\n${s.gw.stderrText}`);
  return l.msg.split(": ").slice(1).join(": ");
}

const replyTo = (s: Setup, text: string) => waitFor(() => s.sim.db.sent().find((r) => r.text === text), 10_000, `reply "${text}"`);

describe("a forged SMS from the owner's number", () => {
  test("the spoofed /config sequence gets no reply and changes nothing; a stranger stays out", async () => {
    const s = await start({ dmPolicy: "allowlist", allowFrom: [OWNER] }, { commands: { config: true } });
    const before = readFileSync(s.ws.configPath, "utf8");
    const a = s.sim.db.inject({ from: OWNER, service: "SMS", text: `/config set allowFrom ["${OWNER}","*"]` });
    expect(await dropped(s, a.rowid)).toBe("sms not allowed");
    const b = s.sim.db.inject({ from: OWNER, service: "SMS", text: "/config set dmPolicy open" });
    expect(await dropped(s, b.rowid)).toBe("sms not allowed");
    const c = s.sim.db.inject({ from: STRANGER, text: "am I in now?" });
    expect(await dropped(s, c.rowid)).toBe("dmPolicy blocked");
    expect(readFileSync(s.ws.configPath, "utf8")).toBe(before);
    expect(s.sim.db.sent()).toHaveLength(0);
    expect(turns(s)).toHaveLength(0);
    // The same owner over iMessage is still answered: the gateway was listening all along.
    s.sim.db.inject({ from: OWNER, text: "ping" });
    await replyTo(s, "echo: ping");
  });

  test("allowSms: the SMS owner reaches the agent, but /config is never run for it", async () => {
    const s = await start({ dmPolicy: "allowlist", allowFrom: [OWNER], allowSms: true }, { commands: { config: true } });
    const before = readFileSync(s.ws.configPath, "utf8");
    s.sim.db.inject({ from: OWNER, service: "SMS", text: "/config set dmPolicy open" });
    const r = await replyTo(s, "echo: /config set dmPolicy open");
    expect(r.chatGuid.startsWith("SMS;")).toBe(true);
    expect(readFileSync(s.ws.configPath, "utf8")).toBe(before);
  });

  test("a macOS 26 any; chat is unverified: /config is not run for the owner's number there", async () => {
    const s = await start({ dmPolicy: "allowlist", allowFrom: [OWNER] }, { commands: { config: true } });
    const before = readFileSync(s.ws.configPath, "utf8");
    s.sim.db.inject({ from: OWNER, anyGuid: true, text: "/config set dmPolicy open" });
    await replyTo(s, "echo: /config set dmPolicy open");
    expect(readFileSync(s.ws.configPath, "utf8")).toBe(before);
  });
});
