// Remote Mac mode, outbound: cliPath is an ssh wrapper (`-p <port> -i <key>`, no ssh config) whose far side, a real
// sshd on 127.0.0.1, runs the imsg simulator. A file the agent or `send --file` names is local to the gateway, so
// it is staged into an owner-only temp dir over there, imsg gets that path, and the dir is removed after the send
// — also across a kill -9 mid-send, without sending the file twice.
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { createSim, scaled, type Sim, waitFor } from "../helpers/sim.ts";
import { baseConfig, GatewayProc, runCli, type Workspace, workspace } from "../helpers/gateway.ts";
import { type Sshd, sshdMissing, startSshd } from "../helpers/sshd.ts";
import { STAGE_PREFIX } from "../../src/stage.ts";
import { Store } from "../../src/store.ts";

let sshd: Sshd;
let sim: Sim;
let ws: Workspace;
const gws: GatewayProc[] = [];
let trace: string;

test("sshd is installed", () => {
  expect(sshdMissing()).toBeUndefined();
});

beforeAll(async () => {
  sshd = await startSshd();
}, scaled(30_000));
afterAll(async () => {
  await sshd?.stop();
});
afterEach(async () => {
  for (const g of gws.splice(0)) await g.kill();
  sim?.cleanup();
  ws?.cleanup();
});

/**
 * The wrapper reaches sshd only with its own -p and -i (and known_hosts via -o): scp without them would go to port
 * 22 with the default key and fail.
 */
function setup(env: Record<string, string> = {}): string {
  ws = workspace();
  trace = join(ws.dir, "trace.jsonl");
  sim = createSim({ env: { IMSG_SIM_POLL_MS: "50", IMSG_SIM_TRACE: trace, ...env } });
  const wrapper = join(ws.dir, "imsg-ssh");
  const opts = `-p ${sshd.port} -i ${sshd.keyPath} -o IdentitiesOnly=yes -o UserKnownHostsFile=${sshd.knownHostsPath} -o GlobalKnownHostsFile=/dev/null`;
  writeFileSync(wrapper, `#!/bin/sh\nexec ssh ${opts} -T ${sshd.user}@127.0.0.1 ${sim.cliPath} "$@"\n`);
  chmodSync(wrapper, 0o755);
  ws.writeConfig(baseConfig(wrapper));
  return wrapper;
}
const gateway = (env: Record<string, string>) => {
  const g = new GatewayProc(ws, { env });
  gws.push(g);
  return g;
};
const sendRequests = () => (existsSync(trace) ? readFileSync(trace, "utf8").split("\n").filter((l) => l.includes('"k":"s"')).length : 0);

/** The file sends imsg got: each a staged copy (same name, our temp dir, not the original path). */
function stagedSends(original: string): string[] {
  const files = sim.db.sent().flatMap((s) => (s.file ? [s.file] : []));
  for (const f of files) {
    expect(f).not.toBe(original);
    expect(basename(f)).toBe(basename(original));
    expect(basename(dirname(f)).startsWith(STAGE_PREFIX)).toBe(true);
  }
  return files;
}
const noStagedRows = () => {
  const store = Store.open(ws.stateDir);
  try {
    return store.stagedOutbound("default").length === 0;
  } finally {
    store.close();
  }
};

test("an agent MEDIA file is staged on the Mac, sent from there, and the staging dir removed", async () => {
  setup();
  const media = join(ws.dir, "chart.png");
  writeFileSync(media, Buffer.alloc(2048, 7));
  const g = gateway({ AGENT_MODE: "media", AGENT_MEDIA: media });
  await g.subscribed(1, 40_000);
  sim.db.inject({ from: "+15550001111", text: "send the chart" });
  await g.logs.waitFor((l) => l.msg.startsWith("replied to"), 45_000);
  const [file] = stagedSends(media);
  expect(sim.db.sent().filter((s) => !s.file).map((s) => s.text)).toEqual(["here you go"]);
  expect(file).toBeDefined();
  await waitFor(() => !existsSync(dirname(file!)), 10_000, "staging dir removed");
  expect(await g.stop()).toBe(0);
  expect(noStagedRows()).toBe(true);
}, scaled(90_000));

test("kill -9 while imsg sends the staged file: sent once, staging dir removed after restart", async () => {
  setup({ IMSG_SIM_SEND_DELAY_MS: "1500" });
  const media = join(ws.dir, "report.pdf");
  writeFileSync(media, "pdf bytes");
  let g = gateway({ AGENT_MODE: "media", AGENT_MEDIA: media });
  await g.subscribed(1, 40_000);
  sim.db.inject({ from: "+15550001111", text: "the report" });
  await waitFor(() => sendRequests() >= 2, 20_000, "the file send inside imsg");
  await g.kill();
  g = gateway({ AGENT_MODE: "media", AGENT_MEDIA: media });
  await g.logs.waitFor((l) => l.msg.startsWith("reconciled 1 unsettled outbound part(s): 1 confirmed sent"), 40_000);
  await g.subscribed(1, 40_000);
  const files = stagedSends(media);
  expect(files).toHaveLength(1);
  expect(sim.db.sent().filter((s) => s.text === "here you go")).toHaveLength(1);
  await waitFor(() => !existsSync(dirname(files[0]!)), 10_000, "staging dir removed after restart");
  expect(await g.stop()).toBe(0);
  expect(noStagedRows()).toBe(true);
}, scaled(90_000));

test("send --file goes through the same staging", () => {
  setup();
  const file = join(ws.dir, "notes 1.txt");
  writeFileSync(file, "hello");
  const r = runCli(["send", "--to", "+15550001111", "--file", file, "--json", "--config", ws.configPath, "--state-dir", ws.stateDir]);
  expect(r.code).toBe(0);
  const [staged] = stagedSends(file);
  expect(staged).toBeDefined();
  // Our JSON names the file the user gave, not the temp copy.
  expect(JSON.parse(r.stdout).sent.map((s: { file: string }) => s.file)).toEqual([file]);
  expect(existsSync(dirname(staged!))).toBe(false);
  expect(noStagedRows()).toBe(true);
}, scaled(90_000));

test("send --file refuses a name that cannot be staged safely, before sending anything", () => {
  setup();
  const file = join(ws.dir, "it's.txt");
  writeFileSync(file, "x");
  const r = runCli(["send", "--to", "+15550001111", "--text", "hi", "--file", file, "--config", ws.configPath, "--state-dir", ws.stateDir]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/cannot be staged on the remote Mac/);
  expect(sim.db.sent()).toEqual([]);
}, scaled(20_000));
