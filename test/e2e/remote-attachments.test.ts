// Remote Mac mode end to end: the gateway fetches inbound attachments over SCP from a real sshd on 127.0.0.1
// (host alias "testmac" from an ssh config given as channels.imessage.sshConfig), with strict host keys.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSim, scaled, type Sim, waitFor } from "../helpers/sim.ts";
import { baseConfig, GatewayProc, runCli, type Workspace, workspace } from "../helpers/gateway.ts";
import { type Sshd, sshdMissing, startSshd } from "../helpers/sshd.ts";

let sshd: Sshd;
let sim: Sim;
let ws: Workspace;
let gw: GatewayProc | undefined;

// Without sshd this fails with how to install it (the other tests here then fail in beforeAll, never skip).
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
  if (gw) await gw.kill();
  gw = undefined;
  sim?.cleanup();
  ws?.cleanup();
});

function setup(sshConfig: string) {
  sim = createSim({ env: { IMSG_SIM_POLL_MS: "50" } });
  ws = workspace();
  // The "Mac's" attachment folder: on the sshd side, which here is the same machine.
  const root = join(ws.dir, "mac", "Attachments");
  mkdirSync(join(root, "a1"), { recursive: true });
  ws.writeConfig(
    baseConfig(sim.cliPath, { includeAttachments: true, remoteHost: sshd.alias, sshConfig, remoteAttachmentRoots: [root], mediaMaxMb: 1 }),
  );
  return root;
}
const turns = (log: string): any[] => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);

describe("remote attachments over SCP", () => {
  test("a photo on the Mac reaches the agent as a local copy in the media cache", async () => {
    const root = setup(sshd.sshConfigPath);
    const remote = join(root, "a1", "IMG_2001.jpg");
    writeFileSync(remote, Buffer.alloc(4096, 9));
    const log = join(ws.dir, "agent.jsonl");
    gw = new GatewayProc(ws, { env: { AGENT_LOG: log } });
    await gw.subscribed();
    sim.db.inject({ from: "+15550001111", text: "look", attachments: [{ path: remote, mimeType: "image/jpeg", transferName: "IMG_2001.jpg" }] });
    await waitFor(() => turns(log).length === 1, 20_000, "agent turn");
    const a = turns(log)[0].attachments;
    expect(a).toHaveLength(1);
    expect(a[0].path.startsWith(join(ws.stateDir, "media"))).toBe(true);
    expect(readFileSync(a[0].path)).toEqual(readFileSync(remote));
    // probe reports the remote host as valid and known through the same ssh config.
    const probe = JSON.parse(runCli(["probe", "--json", "--config", ws.configPath, "--state-dir", ws.stateDir]).stdout);
    expect(probe.accounts[0].checks.find((c: any) => c.name === "remoteHost valid and known")?.ok).toBe(true);
  }, scaled(40_000));

  test("an unknown host key refuses the fetch: the agent is told the attachment is unavailable", async () => {
    // Same config but an empty known_hosts: strict host-key checking must refuse the connection.
    const cfg = join(sshd.dir, "untrusted.config");
    writeFileSync(
      cfg,
      readFileSync(sshd.sshConfigPath, "utf8").replace(/UserKnownHostsFile\s+\S+/, `UserKnownHostsFile ${join(sshd.dir, "empty_known_hosts")}`),
    );
    writeFileSync(join(sshd.dir, "empty_known_hosts"), "");
    const root = setup(cfg);
    const remote = join(root, "a1", "doc.pdf");
    writeFileSync(remote, "pdf");
    const log = join(ws.dir, "agent.jsonl");
    gw = new GatewayProc(ws, { env: { AGENT_LOG: log } });
    await gw.subscribed();
    sim.db.inject({ from: "+15550001111", text: "the doc", attachments: [{ path: remote, mimeType: "application/pdf" }] });
    await waitFor(() => turns(log).length === 1, 20_000, "agent turn");
    expect(turns(log)[0].attachments).toEqual([]);
    expect(turns(log)[0].body).toContain("[attachment unavailable]");
    const probe = runCli(["probe", "--json", "--config", ws.configPath, "--state-dir", ws.stateDir]);
    expect(probe.code).toBe(1);
    expect(JSON.parse(probe.stdout).accounts[0].checks.find((c: any) => c.name === "remoteHost valid and known")?.ok).toBe(false);
  }, scaled(40_000));
});
