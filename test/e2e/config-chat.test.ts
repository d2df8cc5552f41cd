// `/config` from chat against a running gateway: protected keys hold whatever the path, one account's owner
// changes only that account, a file changed on disk is not overwritten, and a failed write still finishes the row.
import { describe, expect, test } from "bun:test";
import { lstatSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Sim, waitFor } from "../helpers/sim.ts";
import { AGENT, baseConfig, e2eResources, type Workspace } from "../helpers/gateway.ts";
import { inboundKey, Store } from "../../src/store.ts";

const res = e2eResources();
const OWNER = "+15550001111";
const OTHER_OWNER = "+15550002222";
const GROUP = { identifier: "chat100200300", name: "Team", participants: [OWNER, OTHER_OWNER, "+15550003333"] };

const simOpts = { env: { IMSG_SIM_POLL_MS: "50" } };
const fileDoc = (ws: Workspace) => JSON.parse(readFileSync(ws.configPath, "utf8"));
const reply = (sim: Sim, prefix: string) => waitFor(() => sim.db.sent().find((s) => s.text.startsWith(prefix)), 10_000, `reply starting "${prefix}"`);

async function single(imessage: Record<string, unknown> = {}, configPath?: string) {
  const sim = res.sim(simOpts);
  const w = res.workspace();
  const ws: Workspace = configPath ? { ...w, configPath: join(w.dir, configPath) } : w;
  writeFileSync(ws.configPath, JSON.stringify(baseConfig(sim.cliPath, imessage, { commands: { config: true } }), null, 2), { mode: 0o600 });
  const gw = res.gateway(ws);
  await gw.subscribed();
  return { sim, ws, gw };
}

describe("/config from chat", () => {
  test("replacing channels.imessage with a planted cliPath, or setting accounts, is refused and the file is unchanged", async () => {
    const { sim, ws } = await single();
    const before = readFileSync(ws.configPath, "utf8");
    sim.db.inject({ from: OWNER, text: `/config set channels.imessage {enabled:true,cliPath:"/tmp/evil",dmPolicy:"allowlist",allowFrom:["${OWNER}"]}` });
    expect((await reply(sim, "Not saved")).text).toContain("cliPath (account default) cannot be changed from chat");
    sim.db.inject({ from: OWNER, text: `/config set accounts {x:{cliPath:"/tmp/evil"}}` });
    await reply(sim, "channels.imessage.accounts cannot be changed from chat");
    expect(readFileSync(ws.configPath, "utf8")).toBe(before);
  });

  test("a's owner sets groupPolicy open: a answers the group, b still drops it", async () => {
    const a = res.sim(simOpts);
    const b = res.sim(simOpts);
    const ws = res.workspace();
    ws.writeConfig({
      channels: {
        imessage: {
          dmPolicy: "allowlist",
          groupPolicy: "disabled",
          groups: { "*": { requireMention: false } },
          accounts: { a: { cliPath: a.cliPath, allowFrom: [OWNER] }, b: { cliPath: b.cliPath, allowFrom: [OTHER_OWNER] } },
        },
      },
      agents: { list: [{ id: "main", command: [process.execPath, AGENT], timeoutSeconds: 30 }] },
      commands: { config: true },
    });
    const gw = res.gateway(ws);
    await gw.subscribed(2);
    a.db.inject({ from: OWNER, text: "/config set groupPolicy open" });
    expect((await reply(a, "Saved")).text).toContain('channels.imessage.accounts.a.groupPolicy = "open" (account a only)');
    const doc = fileDoc(ws).channels.imessage;
    expect([doc.groupPolicy, doc.accounts.a.groupPolicy, doc.accounts.b.groupPolicy]).toEqual(["disabled", "open", undefined]);
    a.db.inject({ from: "+15550003333", text: "hello a", group: GROUP });
    await reply(a, "echo: hello a");
    const r = b.db.inject({ from: "+15550003333", text: "hello b", group: GROUP });
    await gw.logs.waitFor((l) => l.msg.startsWith(`drop row ${r.rowid} `) && l.msg.includes("groupPolicy disabled"), 10_000, `b drops row ${r.rowid}`);
    expect(b.db.sent()).toHaveLength(0);
  });

  test("an edit racing a manual change is refused and the manual change stays; a symlinked config stays a symlink", async () => {
    const sim = res.sim(simOpts);
    const ws = res.workspace();
    const target = join(ws.dir, "real.json5");
    writeFileSync(target, JSON.stringify(baseConfig(sim.cliPath, {}, { commands: { config: true } }), null, 2), { mode: 0o600 });
    symlinkSync(target, ws.configPath);
    const gw = res.gateway(ws);
    await gw.subscribed();
    sim.db.inject({ from: OWNER, text: "/config set textChunkLimit 1234" });
    await reply(sim, "Saved");
    expect(lstatSync(ws.configPath).isSymbolicLink()).toBe(true);
    expect(JSON.parse(readFileSync(target, "utf8")).channels.imessage.textChunkLimit).toBe(1234);
    // The operator edits the file by hand while the gateway runs (atomically, as editors do).
    const manual = JSON.stringify({ ...JSON.parse(readFileSync(target, "utf8")), session: { dmScope: "per-peer" } }, null, 2);
    writeFileSync(`${target}.new`, manual, { mode: 0o600 });
    renameSync(`${target}.new`, target);
    sim.db.inject({ from: OWNER, text: "/config set textChunkLimit 99" });
    expect((await reply(sim, "Not saved")).text).toBe("Not saved: the config file changed on disk since the gateway loaded it; restart or edit the file.");
    expect(readFileSync(target, "utf8")).toBe(manual);
  });

  test("a failed write replies Not saved and the row is finished, not replayed", async () => {
    // The temp file beside a 240-character name cannot be created (ENAMETOOLONG), even as root.
    const { sim, ws } = await single({}, `${"c".repeat(240)}.json5`);
    const before = readFileSync(ws.configPath, "utf8");
    const row = sim.db.inject({ from: OWNER, text: "/config set textChunkLimit 99" });
    expect((await reply(sim, "Not saved")).text).toContain("ENAMETOOLONG");
    expect(readFileSync(ws.configPath, "utf8")).toBe(before);
    const store = Store.open(ws.stateDir);
    try {
      const state = await waitFor(
        () => (store.getInbound("default", inboundKey(row.guid, row.rowid))?.state === "done" ? "done" : undefined),
        10_000,
        "row done",
      );
      expect(state).toBe("done");
    } finally {
      store.close();
    }
  });
});
