// kill -9 while a send is still inside imsg: the restarted gateway waits for that send's child, finds the part in
// the chat's history, and does not send it again (text and file parts).
import { afterEach, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSim, type Sim, waitFor } from "../helpers/sim.ts";
import { baseConfig, GatewayProc, type Workspace, workspace } from "../helpers/gateway.ts";

let sim: Sim;
let ws: Workspace;
const gws: GatewayProc[] = [];
let trace: string;

afterEach(async () => {
  for (const g of gws.splice(0)) await g.kill();
  sim?.cleanup();
  ws?.cleanup();
});

function setup(env: Record<string, string> = {}) {
  ws = workspace();
  trace = join(ws.dir, "trace.jsonl");
  sim = createSim({ env: { IMSG_SIM_POLL_MS: "50", IMSG_SIM_SEND_DELAY_MS: "1500", IMSG_SIM_TRACE: trace, ...env } });
  ws.writeConfig(baseConfig(sim.cliPath));
}
const gateway = (env: Record<string, string> = {}) => {
  const g = new GatewayProc(ws, { env });
  gws.push(g);
  return g;
};
/** Resolves once the simulator has received a send request (it then takes IMSG_SIM_SEND_DELAY_MS to finish it). */
const sendInFlight = (n = 1) =>
  waitFor(() => existsSync(trace) && readFileSync(trace, "utf8").split("\n").filter((l) => l.includes('"k":"s"')).length >= n, 10_000, "a send request");

test("text: killed mid-send, restarted, the reply exists exactly once", async () => {
  setup();
  let g = gateway();
  await g.subscribed();
  sim.db.inject({ from: "+15550001111", text: "hello" });
  await sendInFlight();
  await g.kill();
  g = gateway();
  await g.logs.waitFor((l) => l.msg.startsWith("reconciled 1 unsettled outbound part(s): 1 confirmed sent"), 15_000);
  await g.subscribed();
  expect(sim.db.sent().map((s) => s.text)).toEqual(["echo: hello"]);
  expect(await g.stop()).toBe(0);
}, 30_000);

test("file: killed mid-send, restarted, the file is found in history by name and not sent again", async () => {
  setup();
  const media = join(ws.dir, "chart.png");
  writeFileSync(media, Buffer.alloc(256, 3));
  let g = gateway({ AGENT_MODE: "media", AGENT_MEDIA: media });
  await g.subscribed();
  sim.db.inject({ from: "+15550001111", text: "send the chart" });
  await sendInFlight(2); // the text part went out, the file part is inside imsg
  await g.kill();
  g = gateway({ AGENT_MODE: "media", AGENT_MEDIA: media });
  await g.logs.waitFor((l) => l.msg.startsWith("reconciled 1 unsettled outbound part(s): 1 confirmed sent"), 15_000);
  await g.subscribed();
  const sent = sim.db.sent();
  expect(sent).toHaveLength(2);
  expect(sent[0]!.text).toBe("here you go");
  expect(sent.filter((s) => s.file)).toHaveLength(1);
  rmSync(media);
}, 30_000);
