// `probe` against imsg 0.15.6 (the simulator in that mode): initialize's report in the JSON and text output, and
// a -32002 database problem named exactly (dbPath vs Full Disk Access), exit 1 either way.
import { describe, expect, test } from "bun:test";
import type { AccountReport } from "../../src/probe.ts";
import { baseConfig, childEnv, cliCommand, e2eResources } from "../helpers/gateway.ts";
import type { Sim } from "../helpers/sim.ts";

type Report = { ok: boolean; accounts: AccountReport[] };
const e2e = e2eResources();

/** Runs `probe` on a fresh workspace for this sim; the sim's wrapper decides the imsg version. */
async function probe(s: Sim, ...args: string[]): Promise<{ code: number | null; stdout: string }> {
  const ws = e2e.workspace();
  ws.writeConfig(baseConfig(s.cliPath));
  const [cmd, pre] = cliCommand("bun");
  const p = Bun.spawn([cmd, ...pre, "probe", "--config", ws.configPath, "--state-dir", ws.stateDir, ...args], {
    env: childEnv({ IMSG_SIM_VERSION: undefined }),
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const [stdout, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  return { code, stdout };
}

async function probeJson(s: Sim): Promise<{ code: number | null; report: Report; account: AccountReport }> {
  const r = await probe(s, "--json");
  const report = JSON.parse(r.stdout) as Report;
  return { code: r.code, report, account: report.accounts[0]! };
}

const check = (a: AccountReport, name: string) => a.checks.find((c) => c.name === name)!;

describe("probe against imsg 0.15.6", () => {
  test("healthy: exit 0, the imsg report with version, database, bridge not ready, usable methods", async () => {
    const s = e2e.sim({ version: "0.15.6" });
    s.db.inject({ from: "+15550001111", text: "hi" });
    const { code, report, account } = await probeJson(s);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(check(account, "rpc supported").detail).toBe("imsg 0.15.6");
    expect(check(account, "Messages database readable")).toMatchObject({ ok: true, detail: s.dbPath });
    expect(account.imsg).toMatchObject({ version: "0.15.6", protocolVersion: 1, database: { ready: true, path: s.dbPath }, bridge: { ready: false } });
    // imsg lists typing and read without the bridge, but they fail without the injected helper: gated on it.
    expect(account.imsg!.advanced).toEqual({ "messages.after": true, typing: false, read: false, tapback: false, reply_to: false, edit: false, unsend: false });
    expect(account.imsg!.why.typing).toContain("needs the IMCore bridge");
    expect(account.imsg!.methods).toContain("chats.list");
  });

  test("bridge on: tapback and reply_to usable, shown in the text report", async () => {
    const s = e2e.sim({ version: "0.15.6" });
    s.db.setControl("bridge", true);
    const { code, account } = await probeJson(s);
    expect(code).toBe(0);
    expect(account.imsg!.bridge).toEqual({ ready: true });
    expect(account.imsg!.advanced).toEqual({ "messages.after": true, typing: true, read: true, tapback: true, reply_to: true, edit: false, unsend: false });
    const text = await probe(s);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("  info imsg 0.15.6: database ready");
    expect(text.stdout).toContain("bridge ready");
    expect(text.stdout).toContain("  info advanced methods: usable messages.after, typing, read, tapback, reply_to; not usable edit, unsend\n");
  });

  test("missing database: exit 1, the dbPath hint (not Full Disk Access), imsg reports not ready", async () => {
    const s = e2e.sim({ version: "0.15.6", noDatabase: true });
    const { code, report, account } = await probeJson(s);
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    const db = check(account, "Messages database readable");
    expect(db.ok).toBe(false);
    expect(db.detail).toContain("does not exist");
    expect(db.detail).toContain(s.dbPath);
    expect(db.hint).toContain("dbPath");
    expect(db.hint).not.toContain("Full Disk Access");
    expect(check(account, "RPC handshake").ok).toBe(false);
    expect(check(account, "rpc supported").ok).toBe(true);
    expect(account.imsg!.database.ready).toBe(false);
    expect(account.imsg!.advanced["messages.after"]).toBe(false);
  });

  test("unreadable database: exit 1, the Full Disk Access hint naming the parent process", async () => {
    const s = e2e.sim({ version: "0.15.6" });
    s.db.setUnreadable(true);
    const { code, account } = await probeJson(s);
    expect(code).toBe(1);
    const db = check(account, "Messages database readable");
    expect(db.ok).toBe(false);
    expect(db.detail).toContain("could not be opened");
    expect(db.hint).toContain("Grant Full Disk Access");
    expect(db.hint).toContain("to the process that runs imsg and its parent");
    expect(db.hint).not.toContain("dbPath");
    // The same setup heals without restarting anything once access is granted.
    s.db.setUnreadable(false);
    expect((await probeJson(s)).code).toBe(0);
  });

  test("imsg 0.9 in the same harness: no imsg report, the JSON as before", async () => {
    const s = e2e.sim({ version: "0.9.0" });
    const { code, account } = await probeJson(s);
    expect(code).toBe(0);
    expect(account.imsg).toBeUndefined();
    expect(Object.keys(account).sort()).toEqual(["accountId", "checks", "ok"]);
  });
});
