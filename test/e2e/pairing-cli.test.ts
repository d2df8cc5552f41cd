// `openclaw-imsg pairing …` end to end: the real CLI on a real state dir, and pairing through a running gateway.
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { APPROVED_NOTICE, requestPairing } from "../../src/pairing.ts";
import { Store } from "../../src/store.ts";
import { type Sim, waitFor } from "../helpers/sim.ts";
import { baseConfig, e2eResources, runCli, type Workspace } from "../helpers/gateway.ts";

const e2e = e2eResources();
let sim: Sim | undefined;
let ws: Workspace | undefined;

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const CODE = /^[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{8}$/;

/** A workspace with two accounts on one simulator. */
function setup(): { sim: Sim; ws: Workspace } {
  sim = e2e.sim();
  ws = e2e.workspace();
  ws.writeConfig(baseConfig(sim.cliPath, { dmPolicy: "pairing", allowFrom: [], accounts: { default: {}, work: {} } }));
  return { sim, ws };
}

function pairing(args: string[]) {
  return runCli(["pairing", ...args, "--config", ws!.configPath, "--state-dir", ws!.stateDir]);
}

/** Pending requests written the way the gateway writes them; `ageMs` backdates them (expiry). */
function seed(requests: { account: string; sender: string; ageMs?: number }[]): string[] {
  return requests.map((r) => {
    const store = Store.open(ws!.stateDir, { now: () => Date.now() - (r.ageMs ?? 0) });
    try {
      return requestPairing(store, r.account, r.sender, { sender: r.sender, chatId: "7" }).code;
    } finally {
      store.close();
    }
  });
}

describe("pairing list", () => {
  test("--json prints every pending request in the docs/SPEC.md §4.3 shape, across accounts", () => {
    setup();
    const [a, b] = seed([
      { account: "default", sender: "+15550003333" },
      { account: "work", sender: "user@example.com" },
    ]);
    const r = pairing(["list", "--json"]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toEqual({
      channel: "imessage",
      requests: [
        {
          code: a,
          id: "+15550003333",
          accountId: "default",
          createdAt: expect.stringMatching(ISO),
          lastSeenAt: expect.stringMatching(ISO),
          meta: { sender: "+15550003333", chatId: "7" },
        },
        {
          code: b,
          id: "user@example.com",
          accountId: "work",
          createdAt: expect.stringMatching(ISO),
          lastSeenAt: expect.stringMatching(ISO),
          meta: { sender: "user@example.com", chatId: "7" },
        },
      ],
    });
    expect(a).toMatch(CODE);
  });

  const filters: { name: string; args: string[]; ids: string[] }[] = [
    { name: "the channel word is accepted", args: ["list", "imessage", "--json"], ids: ["+15550003333", "user@example.com"] },
    { name: "--account keeps to that account", args: ["list", "--account", "work", "--json"], ids: ["user@example.com"] },
    { name: "--account is matched like the config (case-insensitive)", args: ["list", "imessage", "--account", "WORK", "--json"], ids: ["user@example.com"] },
  ];
  for (const row of filters) {
    test(row.name, () => {
      setup();
      seed([
        { account: "default", sender: "+15550003333" },
        { account: "work", sender: "user@example.com" },
      ]);
      const r = pairing(row.args);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).requests.map((q: { id: string }) => q.id)).toEqual(row.ids);
    });
  }

  test("expired requests are not listed", () => {
    setup();
    const [fresh] = seed([
      { account: "default", sender: "+15550003333" },
      { account: "default", sender: "+15550004444", ageMs: 61 * 60_000 },
    ]);
    const r = pairing(["list", "--json"]);
    expect(JSON.parse(r.stdout).requests.map((q: { code: string }) => q.code)).toEqual([fresh]);
  });

  test("the table shows code, sender and account; an empty list says so", () => {
    setup();
    expect(pairing(["list"]).stdout).toBe("No pending imessage pairing requests.\n");
    const [code] = seed([{ account: "work", sender: "+15550003333" }]);
    const r = pairing(["list"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe("Pairing requests (1)");
    expect(lines[1]).toMatch(/^CODE\s+SENDER\s+ACCOUNT\s+REQUESTED$/);
    expect(lines[2]!.split(/\s+/).slice(0, 3)).toEqual([code!, "+15550003333", "work"]);
  });
});

describe("pairing approve", () => {
  test('approving a second person under dmScope "main" prints the privacy consequence and the fix', () => {
    setup();
    const [first, second] = seed([{ account: "default", sender: "+15550003333" }, { account: "default", sender: "+15550004444" }]);
    const one = pairing(["approve", first!]);
    expect(one.code).toBe(0);
    expect(one.stdout).not.toContain("Warning");
    const two = pairing(["approve", second!]);
    expect(two.code).toBe(0);
    expect(two.stdout).toContain("Warning: DMs from different people share one agent session");
    expect(two.stdout).toContain('2 people now share it. Set session.dmScope: "per-peer"');
  });

  test("an approval next to a configured owner warns too; under per-peer nothing is printed", () => {
    sim = e2e.sim();
    ws = e2e.workspace();
    ws.writeConfig(baseConfig(sim.cliPath, { dmPolicy: "pairing", allowFrom: ["+15550001111"] }));
    const [a, b] = seed([{ account: "default", sender: "+15550003333" }, { account: "default", sender: "+15550004444" }]);
    expect(pairing(["approve", a!]).stdout).toContain("2 people now share it");
    ws.writeConfig(baseConfig(sim.cliPath, { dmPolicy: "pairing", allowFrom: ["+15550001111"] }, { session: { dmScope: "per-peer" } }));
    const r = pairing(["approve", b!]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("Warning");
  });

  test("a lower-case code approves the sender; the request leaves the list and the sender is allowed", () => {
    setup();
    const [code] = seed([{ account: "default", sender: "+15550003333" }]);
    const r = pairing(["approve", "imessage", code!.toLowerCase()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("+15550003333");
    expect(JSON.parse(pairing(["list", "--json"]).stdout).requests).toEqual([]);
    const allowed = JSON.parse(pairing(["allowed", "--json"]).stdout);
    expect(allowed).toEqual({ channel: "imessage", allowed: [{ accountId: "default", id: "+15550003333", approvedAt: expect.stringMatching(ISO) }] });
    // A code works once.
    expect(pairing(["approve", code!]).code).toBe(1);
  });

  test("--notify tells the sender through imsg", () => {
    const { sim } = setup();
    const [code] = seed([{ account: "work", sender: "+15550003333" }]);
    const r = pairing(["approve", code!, "--notify"]);
    expect(r.code).toBe(0);
    expect(sim.db.sent().map((s) => [s.recipient, s.text])).toEqual([["+15550003333", APPROVED_NOTICE]]);
  });

  test("without --notify nothing is sent", () => {
    const { sim } = setup();
    const [code] = seed([{ account: "default", sender: "+15550003333" }]);
    expect(pairing(["approve", code!]).code).toBe(0);
    expect(sim.db.sent()).toEqual([]);
  });

  test("accounts are kept apart: another account's code is refused and stays pending", () => {
    setup();
    const [code] = seed([{ account: "work", sender: "+15550003333" }]);
    const r = pairing(["approve", code!, "--account", "default"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("belongs to account work");
    expect(JSON.parse(pairing(["list", "--json"]).stdout).requests.map((q: { code: string }) => q.code)).toEqual([code]);
    expect(pairing(["approve", code!, "--account", "work"]).code).toBe(0);
    expect(JSON.parse(pairing(["allowed", "--account", "default", "--json"]).stdout).allowed).toEqual([]);
    expect(JSON.parse(pairing(["allowed", "--account", "work", "--json"]).stdout).allowed.map((a: { id: string }) => a.id)).toEqual(["+15550003333"]);
  });

  const failures: { name: string; args: (code: string) => string[]; exit: number; stderr: string }[] = [
    { name: "an unknown code", args: () => ["approve", "ABCDEFGH"], exit: 1, stderr: "No pending pairing request found for code: ABCDEFGH" },
    { name: "an expired code", args: (c) => ["approve", c], exit: 1, stderr: "No pending pairing request found" },
    { name: "a missing code", args: () => ["approve"], exit: 2, stderr: "missing pairing code" },
    { name: "the channel word without a code", args: () => ["approve", "imessage"], exit: 2, stderr: "missing pairing code" },
    { name: "another channel", args: (c) => ["approve", "telegram", c], exit: 2, stderr: 'unknown channel "telegram"' },
    { name: "an unknown --account", args: (c) => ["approve", c, "--account", "nope"], exit: 2, stderr: 'unknown account "nope"' },
  ];
  for (const row of failures) {
    test(`${row.name} → exit ${row.exit}, nothing approved`, () => {
      setup();
      const [expired] = seed([{ account: "default", sender: "+15550004444", ageMs: 61 * 60_000 }]);
      const r = pairing(row.args(expired!));
      expect(r.code).toBe(row.exit);
      expect(r.stderr).toContain(row.stderr);
      expect(JSON.parse(pairing(["allowed", "--json"]).stdout).allowed).toEqual([]);
    });
  }
});

describe("pairing revoke and allowed", () => {
  function approved(): void {
    const codes = seed([
      { account: "default", sender: "+15550003333" },
      { account: "work", sender: "+15550003333" },
      { account: "default", sender: "user@example.com" },
    ]);
    for (const c of codes) expect(pairing(["approve", c]).code).toBe(0);
  }
  const ids = (args: string[]) =>
    JSON.parse(pairing([...args, "--json"]).stdout).allowed.map((a: { accountId: string; id: string }) => `${a.accountId}/${a.id}`);

  test("allowed lists approvals per account; --account filters", () => {
    setup();
    expect(pairing(["allowed"]).stdout).toBe("No senders approved through pairing.\n");
    approved();
    expect(ids(["allowed", "imessage"])).toEqual(["default/+15550003333", "work/+15550003333", "default/user@example.com"]);
    expect(ids(["allowed", "--account", "work"])).toEqual(["work/+15550003333"]);
    expect(pairing(["allowed"]).stdout).toMatch(/^SENDER\s+ACCOUNT\s+APPROVED\n\+15550003333\s+default\s/);
  });

  test("revoke --account removes only that account's approval; the handle may be formatted", () => {
    setup();
    approved();
    const r = pairing(["revoke", "imessage", "+1 (555) 000-3333", "--account", "work"]);
    expect(r.code).toBe(0);
    expect(ids(["allowed"])).toEqual(["default/+15550003333", "default/user@example.com"]);
    expect(pairing(["revoke", "+15550003333", "--account", "work"]).code).toBe(1);
  });

  test("revoke without --account removes the sender from every account; emails match in any case", () => {
    setup();
    approved();
    expect(pairing(["revoke", "+15550003333"]).code).toBe(0);
    expect(pairing(["revoke", "User@Example.com"]).code).toBe(0);
    expect(ids(["allowed"])).toEqual([]);
  });

  const failures: { name: string; args: string[]; exit: number; stderr: string }[] = [
    { name: "an unknown sender", args: ["revoke", "+15550009999"], exit: 1, stderr: "is not an approved sender" },
    { name: "a missing handle", args: ["revoke"], exit: 2, stderr: "missing sender handle" },
    { name: "the channel word without a handle", args: ["revoke", "imessage"], exit: 2, stderr: "missing sender handle" },
    { name: "another channel", args: ["revoke", "sms", "+15550003333"], exit: 2, stderr: 'unknown channel "sms"' },
    { name: "another channel for allowed", args: ["allowed", "telegram"], exit: 2, stderr: 'unknown channel "telegram"' },
  ];
  for (const row of failures) {
    test(`${row.name} → exit ${row.exit}, approvals untouched`, () => {
      setup();
      approved();
      const r = pairing(row.args);
      expect(r.code).toBe(row.exit);
      expect(r.stderr).toContain(row.stderr);
      expect(ids(["allowed"])).toHaveLength(3);
    });
  }
});

describe("pairing through a running gateway", () => {
  const STRANGERS = ["+15550003333", "+15550004444", "user@example.com", "+15550005555"];
  const CODE_IN_REPLY = /Pairing code: ([A-Z2-9]{8})/;

  test("codes are issued once per stranger, capped at 3, and a CLI approval lets the sender in", async () => {
    // The duplicate echo rows of every send (ours and the CLI's) must not turn our own handle into a "stranger".
    sim = e2e.sim({ env: { IMSG_SIM_POLL_MS: "50", IMSG_SIM_ECHO_DUP: "1" } });
    ws = e2e.workspace();
    ws.writeConfig(baseConfig(sim.cliPath, { dmPolicy: "pairing", allowFrom: ["+15550001111"] }));
    const agentLog = join(ws.dir, "agent.jsonl");
    const gw = e2e.gateway(ws, { env: { AGENT_LOG: agentLog } });
    await gw.subscribed();
    const db = sim.db;
    const repliesTo = (h: string) => db.sent().filter((s) => s.recipient === h);
    const turns = () => (existsSync(agentLog) ? readFileSync(agentLog, "utf8").trim().split("\n").map((l) => JSON.parse(l)) : []);
    // The allowlisted owner's message comes after the rows under test: once it is answered, they were handled.
    let markers = 0;
    const barrier = async () => {
      const text = `marker ${++markers}`;
      db.inject({ from: "+15550001111", text });
      await waitFor(() => db.sent().some((s) => s.text === `echo: ${text}`), 10_000, `the reply to ${text}`);
    };

    db.inject({ from: STRANGERS[0]!, text: "hello" });
    const first = await waitFor(() => repliesTo(STRANGERS[0]!)[0], 10_000, "the pairing reply");
    expect(first.text).toContain(`Your iMessage sender id: ${STRANGERS[0]}`);
    const code = CODE_IN_REPLY.exec(first.text)![1]!;
    expect(first.text).toContain(`openclaw-imsg pairing approve imessage ${code}`);

    // Same stranger again: no new code, no second reply.
    db.inject({ from: STRANGERS[0]!, text: "hello again" });
    // Strangers 2 and 3 fill the cap; the 4th gets nothing at all.
    db.inject({ from: STRANGERS[1]!, text: "hi" });
    db.inject({ from: STRANGERS[2]!, text: "hi" });
    await waitFor(() => repliesTo(STRANGERS[2]!).length === 1 && repliesTo(STRANGERS[1]!).length === 1, 10_000, "replies to strangers 2 and 3");
    db.inject({ from: STRANGERS[3]!, text: "hi" });
    await barrier();
    expect(STRANGERS.map((s) => repliesTo(s).length)).toEqual([1, 1, 1, 0]);
    const listed = JSON.parse(runCli(["pairing", "list", "--json", "--state-dir", ws.stateDir]).stdout);
    expect(listed.requests.map((r: { id: string }) => r.id)).toEqual(STRANGERS.slice(0, 3));
    expect(listed.requests[0].code).toBe(code);

    // Approve (lower case, with --notify) while the gateway holds the database.
    const r = runCli(["pairing", "approve", code.toLowerCase(), "--notify", "--config", ws.configPath, "--state-dir", ws.stateDir]);
    expect(r.code).toBe(0);
    await waitFor(() => repliesTo(STRANGERS[0]!).some((s) => s.text === APPROVED_NOTICE), 10_000, "the approval notice");

    db.inject({ from: STRANGERS[0]!, text: "let me in" });
    await waitFor(() => repliesTo(STRANGERS[0]!).some((s) => s.text === "echo: let me in"), 10_000, "the agent's reply after approval");
    await barrier();

    expect(turns().map((t) => [t.sender, t.text])).toEqual([
      ["+15550001111", "marker 1"],
      [STRANGERS[0], "let me in"],
      ["+15550001111", "marker 2"],
    ]);
    // Exactly: 3 pairing replies, 2 marker answers, the notice, the answer after approval; nothing to our own handle.
    expect(db.sent()).toHaveLength(7);
    expect(repliesTo("+15550009999")).toEqual([]);
    expect(await gw.stop()).toBe(0);
  });
});

describe("the state dir is never loosened or rewritten by a read-only command", () => {
  const mode = (p: string) => statSync(p).mode & 0o7777;
  const list = (stateDir: string) => runCli(["pairing", "list", "--config", ws!.configPath, "--state-dir", stateDir]);

  test("a /tmp-like sticky world-writable dir is refused with the fix, and left as it was", () => {
    setup();
    const shared = join(ws!.dir, "shared-tmp");
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    const r = list(shared);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`state dir ${shared} is writable by others`);
    expect(r.stderr).toContain(`chmod 700 ${shared}`);
    expect(mode(shared)).toBe(0o1777);
    expect(existsSync(join(shared, "state.db"))).toBe(false);
    // A writing command is refused too, before it puts anything there.
    const store = () => Store.open(shared);
    expect(store).toThrow("writable by others");
    expect(existsSync(join(shared, "state.db"))).toBe(false);
  });

  test("an existing 0755 dir is not chmodded and pairing list creates no state.db", () => {
    setup();
    const home = join(ws!.dir, "home-like");
    mkdirSync(home);
    chmodSync(home, 0o755);
    const r = list(home);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("No pending imessage pairing requests.");
    expect(mode(home)).toBe(0o755);
    expect(readdirSync(home)).toEqual([]);
  });

  test("pairing list on a state dir that does not exist yet creates nothing; a store we create is 0700 / 0600", () => {
    setup();
    expect(list(ws!.stateDir).code).toBe(0);
    expect(existsSync(ws!.stateDir)).toBe(false);
    Store.open(ws!.stateDir).close();
    expect(mode(ws!.stateDir)).toBe(0o700);
    expect(mode(join(ws!.stateDir, "state.db"))).toBe(0o600);
  });
});
