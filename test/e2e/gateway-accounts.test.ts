// Several accounts in one gateway, and bindings that route a peer to another agent.
import { afterEach, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createSim, type Sim, waitFor } from "../helpers/sim.ts";
import { AGENT, GatewayProc, runCli, type Workspace, workspace } from "../helpers/gateway.ts";

const sims: Sim[] = [];
let ws: Workspace;
let gw: GatewayProc | undefined;

afterEach(async () => {
  if (gw) await gw.kill();
  gw = undefined;
  for (const s of sims.splice(0)) s.cleanup();
  ws?.cleanup();
});

const sim = () => {
  const s = createSim({ env: { IMSG_SIM_POLL_MS: "50" } });
  sims.push(s);
  return s;
};
const turns = (log: string): any[] => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);

test("two accounts, each with its own imsg and policy, run in one gateway; pairing approvals stay per account", async () => {
  const home = sim();
  const work = sim();
  ws = workspace();
  ws.writeConfig({
    channels: {
      imessage: {
        dmPolicy: "allowlist",
        allowFrom: ["+15550001111"],
        accounts: { home: { cliPath: home.cliPath }, work: { cliPath: work.cliPath, dmPolicy: "pairing", allowFrom: [] } },
      },
    },
    agents: { list: [{ id: "main", command: [process.execPath, AGENT] }] },
  });
  const log = join(ws.dir, "agent.jsonl");
  gw = new GatewayProc(ws, { env: { AGENT_LOG: log } });
  await gw.subscribed(2);
  home.db.inject({ from: "+15550001111", text: "to home" });
  work.db.inject({ from: "+15550001111", text: "to work" });
  await waitFor(() => home.db.sent().some((s) => s.text === "echo: to home"), 10_000, "home reply");
  // The work account pairs strangers: the same sender gets a code there and the agent does not run.
  const code = await waitFor(() => /Pairing code: ([A-Z2-9]{8})/.exec(work.db.sent()[0]?.text ?? "")?.[1], 10_000, "work pairing code");
  expect(code).toHaveLength(8);
  expect(turns(log).map((t) => [t.accountId, t.text])).toEqual([["home", "to home"]]);
  expect(home.db.sent()).toHaveLength(1);
  const approve = runCli(["pairing", "approve", code, "--config", ws.configPath, "--state-dir", ws.stateDir]);
  expect(approve.stdout).toContain("account work");
  work.db.inject({ from: "+15550001111", text: "work again" });
  await waitFor(() => work.db.sent().some((s) => s.text === "echo: work again"), 10_000, "work reply after approval");
  expect(turns(log).at(-1).sessionKey).toBe("agent:main:main");
});

test("a binding routes one group to another agent; everything else goes to the default agent", async () => {
  const s = sim();
  const g = s.db.ensureGroupChat({ identifier: "chat9090", name: "Ops", participants: ["+15550001111"] });
  ws = workspace();
  const opsLog = join(ws.dir, "ops.jsonl");
  const mainLog = join(ws.dir, "main.jsonl");
  ws.writeConfig({
    channels: {
      imessage: { cliPath: s.cliPath, allowFrom: ["+15550001111"], dmPolicy: "allowlist", groupPolicy: "open", groups: { "*": { requireMention: false } } },
    },
    agents: {
      list: [
        { id: "main", default: true, command: ["/usr/bin/env", `AGENT_LOG=${mainLog}`, process.execPath, AGENT] },
        { id: "ops", command: ["/usr/bin/env", `AGENT_LOG=${opsLog}`, process.execPath, AGENT] },
      ],
    },
    bindings: [{ agentId: "ops", match: { channel: "imessage", peer: { kind: "group", id: String(g.id) } } }],
  });
  gw = new GatewayProc(ws);
  await gw.subscribed();
  s.db.inject({ from: "+15550001111", text: "in ops", chatId: g.id });
  s.db.inject({ from: "+15550001111", text: "in dm" });
  await waitFor(() => s.db.sent().length === 2, 10_000, "two replies");
  expect(turns(opsLog).map((t) => [t.agentId, t.sessionKey])).toEqual([["ops", `agent:ops:imessage:group:${g.id}`]]);
  expect(turns(mainLog).map((t) => [t.agentId, t.sessionKey])).toEqual([["main", "agent:main:main"]]);
});
