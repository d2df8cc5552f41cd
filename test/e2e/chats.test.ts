// `chats` end to end: the CLI as a child process against the imsg simulator.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Sim } from "../helpers/sim.ts";
import { baseConfig, e2eResources, runCli, type Workspace } from "../helpers/gateway.ts";

const e2e = e2eResources();
let ws: Workspace | undefined;

const sim = (env: Record<string, string> = {}, version?: string): Sim => e2e.sim({ env, version });

/** A workspace whose config points at `cliPath`. */
function setup(cliPath: string, imessage: Record<string, unknown> = {}): Workspace {
  ws = e2e.workspace();
  ws.writeConfig(baseConfig(cliPath, imessage));
  return ws;
}

function chats(w: Workspace, ...args: string[]) {
  return runCli(["chats", "--config", w.configPath, "--state-dir", w.stateDir, ...args]);
}

/** A DM and a group (newest), with a slash in the group name to show imsg's "\/" escaping is undone. */
function seed(s: Sim) {
  s.db.inject({ from: "+15550001111", text: "hello" });
  s.db.inject({
    group: { identifier: "chat424242", name: "Ski trip 1/2", participants: ["+15550001111", "user@example.com"] },
    from: "user@example.com",
    text: "hi all",
  });
}

describe("chats", () => {
  test("table: one row per chat with id, name, identifier, guid, service, group flag, participants, last activity", () => {
    const s = sim();
    seed(s);
    const r = chats(setup(s.cliPath));
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]!.split(/\s{2,}/)).toEqual(["CHAT_ID", "NAME", "IDENTIFIER", "GUID", "SERVICE", "GROUP", "PARTICIPANTS", "LAST ACTIVITY"]);
    expect(lines).toHaveLength(3);
    const group = lines[1]!.split(/\s{2,}/);
    expect(group.slice(0, 7)).toEqual(["2", "Ski trip 1/2", "chat424242", "iMessage;+;chat424242", "iMessage", "yes", "+15550001111, user@example.com"]);
    expect(group[7]).toMatch(/^\d{4}-\d\d-\d\dT/);
    const dm = lines[2]!.split(/\s{2,}/);
    expect(dm.slice(0, 7)).toEqual(["1", "+15550001111", "+15550001111", "iMessage;-;+15550001111", "iMessage", "no", "+15550001111"]);
    // Columns line up: every cell of a column starts at the header's offset.
    const col = lines[0]!.indexOf("IDENTIFIER");
    expect(lines[1]!.slice(col).startsWith("chat424242")).toBe(true);
    expect(lines[2]!.slice(col).startsWith("+15550001111")).toBe(true);
  });

  test("--json prints {accountId, chats} with the chat objects exactly as imsg returns them", () => {
    const s = sim();
    seed(s);
    const r = chats(setup(s.cliPath), "--json");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc).sort()).toEqual(["accountId", "chats"]);
    expect(doc.accountId).toBe("default");
    expect(doc.chats).toEqual(JSON.parse(JSON.stringify(s.db.listChats(20))));
    expect(doc.chats[0]).toMatchObject({
      id: 2,
      name: "Ski trip 1/2",
      identifier: "chat424242",
      is_group: true,
      participants: ["+15550001111", "user@example.com"],
    });
    // snake_case keys as imsg sends them, not our camelCase model.
    expect(Object.keys(doc.chats[0])).toContain("last_message_at");
  });

  test("--limit caps the list (newest first)", () => {
    const s = sim();
    seed(s);
    s.db.inject({ from: "user@example.com", text: "newest" });
    const w = setup(s.cliPath);
    const one = JSON.parse(chats(w, "--json", "--limit", "1").stdout);
    expect(one.chats.map((c: { identifier: string }) => c.identifier)).toEqual(["user@example.com"]);
    const two = chats(w, "--limit", "2");
    expect(two.stdout.trimEnd().split("\n")).toHaveLength(3);
  });

  test.each([["0"], ["abc"], ["-1"]])("--limit %s is a usage error (exit 2)", (v) => {
    const r = chats(setup(sim().cliPath), "--limit", v);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--limit");
  });

  test("no chats yet: a friendly line, and [] in JSON", () => {
    const w = setup(sim().cliPath);
    const r = chats(w);
    expect(r).toMatchObject({ code: 0, stdout: "No chats with messages yet.\n" });
    expect(JSON.parse(chats(w, "--json").stdout)).toEqual({ accountId: "default", chats: [] });
  });

  test("--account picks that account's imsg", () => {
    const a = sim();
    const b = sim();
    a.db.inject({ from: "+15550001111", text: "on a" });
    b.db.inject({ from: "user@example.com", text: "on b" });
    ws = e2e.workspace();
    ws.writeConfig(baseConfig(a.cliPath, { defaultAccount: "home", accounts: { home: {}, work: { cliPath: b.cliPath } } }));
    const def = JSON.parse(chats(ws, "--json").stdout);
    expect(def.accountId).toBe("home");
    expect(def.chats.map((c: { identifier: string }) => c.identifier)).toEqual(["+15550001111"]);
    const work = JSON.parse(chats(ws, "--json", "--account", "work").stdout);
    expect(work).toMatchObject({ accountId: "work" });
    expect(work.chats.map((c: { identifier: string }) => c.identifier)).toEqual(["user@example.com"]);
  });

  test("an unknown --account is a usage error (exit 2)", () => {
    const r = chats(setup(sim().cliPath), "--account", "nope");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown account "nope"');
    expect(r.stdout).toBe("");
  });

  test("an invalid config is exit 2", () => {
    ws = e2e.workspace();
    ws.writeConfig({ channels: { imessage: { dmPolicy: "sometimes" } } });
    expect(chats(ws).code).toBe(2);
  });

  test("imsg dying is exit 1 with the reason and a hint", () => {
    const r = chats(setup(sim({ IMSG_SIM_CRASH_AFTER: "0" }).cliPath));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot list chats: imsg rpc exited (code 1)");
    expect(r.stderr).toMatch(/hint: .*probe/);
    expect(r.stdout).toBe("");
  });

  test("a missing imsg is exit 1 naming the path", () => {
    const w = setup("/nonexistent/bin/imsg");
    const r = chats(w, "--json");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("imsg not found: /nonexistent/bin/imsg");
    expect(r.stdout).toBe("");
  });

  // Versions before 0.9 (no rpc, the legacy banner) are played by the 0.9 profile only.
  test("imsg without rpc (0.2.0) is exit 1 with what imsg said", () => {
    const r = chats(setup(sim({ IMSG_VERSION: "0.2.0" }, "0.9.0").cliPath));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Unknown subcommand 'rpc'");
  });

  test("a hung imsg is exit 1 after probeTimeoutMs", () => {
    const t0 = Date.now();
    const r = chats(setup(sim({ IMSG_SIM_HANG_AFTER: "0" }).cliPath, { probeTimeoutMs: 500 }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("imsg rpc timeout (chats.list) after 500 ms");
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  for (const mode of ["1", "legacy"]) {
    test(`missing Full Disk Access (IMSG_SIM_FDA=${mode}) is exit 1 mentioning Full Disk Access`, () => {
      const r = chats(setup(sim({ IMSG_SIM_FDA: mode }, mode === "legacy" ? "0.9.0" : undefined).cliPath));
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("Full Disk Access");
      expect(r.stdout).toBe("");
    });
  }

  test("a dbPath that does not exist reads as the database error", () => {
    const s = sim();
    const r = chats(setup(s.cliPath, { dbPath: join(s.dir, "missing.db") }));
    expect(r.code).toBe(1);
    // 0.9 cannot tell a missing file from a permission problem; 0.15 says which (-32002 "does not exist").
    expect(r.stderr).toContain(s.version === "0.9.0" ? "Full Disk Access" : "does not exist");
  });
});
