import { describe, expect, test } from "bun:test";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyConfigEdit, commitConfigEdit, configCommand, type ConfigEdit, parseConfigEdit, scopeToAccount } from "../src/config-edit.ts";
import { type ImessageAccount, loadConfig, resolveAccount } from "../src/config.ts";

describe("parseConfigEdit", () => {
  const rows: [string, unknown][] = [
    ["set dmPolicy open", { op: "set", path: ["channels", "imessage", "dmPolicy"], value: "open" }],
    ["set textChunkLimit 2000", { op: "set", path: ["channels", "imessage", "textChunkLimit"], value: 2000 }],
    ['set allowFrom ["+15550001111", "*"]', { op: "set", path: ["channels", "imessage", "allowFrom"], value: ["+15550001111", "*"] }],
    ["set messages.responsePrefix [bot]", { op: "set", path: ["messages", "responsePrefix"], value: "[bot]" }],
    ["unset responsePrefix", { op: "unset", path: ["channels", "imessage", "responsePrefix"] }],
    ["set groups.42.requireMention false", { op: "set", path: ["channels", "imessage", "groups", "42", "requireMention"], value: false }],
  ];
  test.each(rows)("%s", (input, want) => expect(parseConfigEdit(input)).toEqual(want as never));

  // What runs programs or where data goes is never editable from chat.
  test.each([
    "set agents {list:[{id:'x',command:['/bin/sh']}]}",
    "set agents.list.0.command ['/bin/sh']",
    "set cliPath /tmp/evil",
    "set dbPath /tmp/x.db",
    "set remoteHost evil",
    "set attachmentRoots ['/']",
    "unset bindings",
    "set commands.useAccessGroups false",
    "set configWrites true",
    "set accounts.work.cliPath /tmp/evil",
    "set channels.telegram.token x",
  ])("refuses protected %p", (input) => {
    expect((parseConfigEdit(input) as { error: string }).error).toContain("cannot be changed from chat");
  });

  test.each(["", "set", "set dmPolicy", "unset a b", "frobnicate x", "set __proto__.x 1", "set a.constructor.b 1"])("rejects %p", (input) => {
    expect(parseConfigEdit(input)).toHaveProperty("error");
  });
});

describe("applyConfigEdit", () => {
  test("creates intermediate objects, leaves the input untouched", () => {
    const doc = { channels: { imessage: { enabled: true } } };
    const out = applyConfigEdit(doc, { op: "set", path: ["channels", "imessage", "groups", "7", "requireMention"], value: false });
    expect(out).toEqual({ channels: { imessage: { enabled: true, groups: { "7": { requireMention: false } } } } });
    expect(doc).toEqual({ channels: { imessage: { enabled: true } } });
  });
  test("unset of a missing path is a no-op", () => {
    const doc = { channels: { imessage: {} } };
    expect(applyConfigEdit(doc, { op: "unset", path: ["channels", "imessage", "x", "y"] })).toEqual(doc);
  });
});

describe("commitConfigEdit", () => {
  const base = {
    channels: { imessage: { enabled: true, dmPolicy: "allowlist", allowFrom: ["+15550001111"] } },
    agents: { list: [{ id: "main", command: ["/bin/true"] }] },
  };
  function withFile<T>(fn: (path: string) => T): T {
    const dir = mkdtempSync(join(tmpdir(), "cfg-edit-"));
    const path = join(dir, "c.json5");
    writeFileSync(path, "// my comment\n" + JSON.stringify(base));
    try {
      return fn(path);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test("a valid edit is written and reloads to the new value", () =>
    withFile((path) => {
      const r = commitConfigEdit(loadConfig(path), parseConfigEdit("set textChunkLimit 1234") as never);
      expect(r.reply).toContain("channels.imessage.textChunkLimit = 1234");
      expect(r.config).toBeDefined();
      expect(JSON.parse(readFileSync(path, "utf8")).channels.imessage.textChunkLimit).toBe(1234);
    }));

  test("an edit that would make the config invalid is refused and nothing is written", () =>
    withFile((path) => {
      const before = readFileSync(path, "utf8");
      const r = commitConfigEdit(loadConfig(path), parseConfigEdit("set dmPolicy open") as never);
      expect(r.reply).toStartWith("Not saved");
      expect(r.reply).toContain("allowFrom");
      expect(r.config).toBeUndefined();
      expect(readFileSync(path, "utf8")).toBe(before);
    }));

  test("switching attachments on asks for a restart", () =>
    withFile((path) => {
      const r = commitConfigEdit(loadConfig(path), parseConfigEdit("set includeAttachments true") as never);
      expect(r.reply).toContain("Restart the gateway");
    }));
});

// A scratch dir with one config file; `name` lets a test pick an awkward file name.
function scratch(doc: unknown, name = "c.json5") {
  const dir = mkdtempSync(join(tmpdir(), "cfg-edit-"));
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(doc, null, 2), { mode: 0o600 });
  return { dir, path, text: () => readFileSync(path, "utf8"), [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

const OWNER_A = "+15550001111";
const OWNER_B = "+15550002222";
const agents = { list: [{ id: "main", command: ["/bin/true"] }] };
const owns = (sender: string) => ({ ownerOf: (a: ImessageAccount) => a.allowFrom.includes(sender) });
const single = (imessage: Record<string, unknown> = {}) => ({
  channels: { imessage: { enabled: true, cliPath: "/usr/local/bin/imsg", dmPolicy: "allowlist", allowFrom: [OWNER_A], ...imessage } },
  agents,
  commands: { config: true },
});
const twoAccounts = (imessage: Record<string, unknown> = {}) => ({
  channels: {
    imessage: {
      dmPolicy: "allowlist",
      groupPolicy: "allowlist",
      allowFrom: [OWNER_A],
      ...imessage,
      accounts: { a: { cliPath: "/opt/a/imsg" }, b: { cliPath: "/opt/b/imsg", allowFrom: [OWNER_B] } },
    },
  },
  agents,
  commands: { config: true },
});
/** Runs `/config <args>` as `sender` on `accountId`, the way the gateway does. */
function run(path: string, args: string, sender = OWNER_A, accountId?: string) {
  const cfg = loadConfig(path);
  return configCommand(cfg, resolveAccount(cfg, accountId), args, owns(sender));
}

describe("protected values are checked on the resolved config, whatever the path", () => {
  const evilSection = JSON.stringify({ enabled: true, cliPath: "/tmp/evil", dmPolicy: "allowlist", allowFrom: [OWNER_A] });
  test.each([
    ["replacing channels.imessage plants a cliPath", `set channels.imessage ${evilSection}`, /cliPath \(account default\)/],
    [
      "replacing channels.imessage adds accounts",
      `set channels.imessage {dmPolicy:"allowlist",allowFrom:["${OWNER_A}"],cliPath:"/usr/local/bin/imsg",accounts:{x:{}}}`,
      /account list/,
    ],
    [
      "replacing channels.imessage widens the roots",
      `set channels.imessage {dmPolicy:"allowlist",allowFrom:["${OWNER_A}"],cliPath:"/usr/local/bin/imsg",attachmentRoots:["/etc"]}`,
      /attachmentRoots \(account default\)/,
    ],
    [
      "replacing channels.imessage turns configWrites off",
      `set channels.imessage {dmPolicy:"allowlist",allowFrom:["${OWNER_A}"],cliPath:"/usr/local/bin/imsg",configWrites:false}`,
      /configWrites/,
    ],
    ["unsetting the parent resets cliPath", "unset channels.imessage", /cliPath \(account default\)/],
  ])("%s: refused, file unchanged", (_name, args, want) => {
    using f = scratch(single());
    const before = f.text();
    const r = run(f.path, args);
    expect(r.reply).toStartWith("Not saved");
    expect(r.reply).toMatch(want);
    expect(r.config).toBeUndefined();
    expect(f.text()).toBe(before);
  });

  test.each([
    "set accounts {b:{cliPath:'/tmp/evil'}}",
    "set channels.imessage.accounts.b.cliPath /tmp/evil",
    "unset accounts",
    "set channels.imessage.sshConfig /tmp/x",
  ])(
    "%s: refused by path, file unchanged",
    (args) => {
      using f = scratch(twoAccounts());
      const before = f.text();
      expect(run(f.path, args).reply).toContain("cannot be changed from chat");
      expect(f.text()).toBe(before);
    },
  );

  // The path check is only the friendly first line; an edit that slips past it is still caught.
  test.each<[string, ConfigEdit]>([
    ["an account's cliPath", { op: "set", path: ["channels", "imessage", "accounts", "b", "cliPath"], value: "/tmp/evil" }],
    ["an account's dbPath", { op: "set", path: ["channels", "imessage", "accounts", "a", "dbPath"], value: "/tmp/x.db" }],
    ["an account's remoteHost", { op: "set", path: ["channels", "imessage", "accounts", "a", "remoteHost"], value: "evil" }],
    ["the accounts map", { op: "unset", path: ["channels", "imessage", "accounts", "b"] }],
    ["agents", { op: "set", path: ["agents"], value: { list: [{ id: "main", command: ["/bin/sh"] }] } }],
    ["commands", { op: "set", path: ["commands", "useAccessGroups"], value: false }],
    ["another channel", { op: "set", path: ["channels", "telegram"], value: { token: "x" } }],
  ])("a raw edit of %s is refused by the resolved check", (_name, edit) => {
    using f = scratch(twoAccounts());
    const before = f.text();
    const r = commitConfigEdit(loadConfig(f.path), edit);
    expect(r.reply).toMatch(/^Not saved: .* cannot be changed from chat/);
    expect(f.text()).toBe(before);
  });

  test("replacing the section is fine when every protected value stays the same", () => {
    using f = scratch(single());
    const r = run(
      f.path,
      `set channels.imessage {enabled:true,cliPath:"/usr/local/bin/imsg",dmPolicy:"allowlist",allowFrom:["${OWNER_A}"],groupPolicy:"open"}`,
    );
    expect(r.reply).toStartWith("Saved");
    expect(JSON.parse(f.text()).channels.imessage.groupPolicy).toBe("open");
  });
});

describe("an owner of one account changes only that account", () => {
  test("a's owner sets groupPolicy open: a's override changes, b and the top level do not", () => {
    using f = scratch(twoAccounts());
    const r = run(f.path, "set groupPolicy open", OWNER_A, "a");
    expect(r.reply).toContain('channels.imessage.accounts.a.groupPolicy = "open" (account a only)');
    const doc = JSON.parse(f.text()).channels.imessage;
    expect(doc.groupPolicy).toBe("allowlist");
    expect(doc.accounts.a.groupPolicy).toBe("open");
    expect(doc.accounts.b.groupPolicy).toBeUndefined();
    expect(resolveAccount(r.config!, "a").groupPolicy).toBe("open");
    expect(resolveAccount(r.config!, "b").groupPolicy).toBe("allowlist");
  });

  test("an owner of every account edits the top level", () => {
    using f = scratch(twoAccounts({ allowFrom: [OWNER_A, OWNER_B] }));
    // b's own allowFrom lists only OWNER_B, so OWNER_B owns both a (inherited) and b.
    const r = run(f.path, "set groupPolicy open", OWNER_B, "b");
    expect(r.reply).toContain('channels.imessage.groupPolicy = "open".');
    expect(JSON.parse(f.text()).channels.imessage.groupPolicy).toBe("open");
  });

  test("an edit inside an inherited map copies it first, so the account keeps the other entries", () => {
    using f = scratch(twoAccounts({ groups: { "1": { requireMention: true }, "2": { requireMention: true } } }));
    const r = run(f.path, "set groups.1.requireMention false", OWNER_A, "a");
    expect(r.reply).toStartWith("Saved");
    expect(resolveAccount(r.config!, "a").groups).toEqual({ "1": { requireMention: false }, "2": { requireMention: true } });
    expect(resolveAccount(r.config!, "b").groups).toEqual({ "1": { requireMention: true }, "2": { requireMention: true } });
  });

  test.each(["set messages.responsePrefix [x]", "set session.dmScope per-peer", "set channels.imessage {}"])(
    "%s (applies to every account) is refused",
    (args) => {
      using f = scratch(twoAccounts());
      const before = f.text();
      expect(run(f.path, args, OWNER_A, "a").reply).toContain("only an owner of every account");
      expect(f.text()).toBe(before);
    },
  );

  test("scopeToAccount is pure and rewrites the path", () => {
    const doc = { channels: { imessage: { groups: { "1": {} } } } };
    const r = scopeToAccount(doc, { op: "set", path: ["channels", "imessage", "groups", "1", "requireMention"], value: false }, "a");
    expect(r).toEqual({
      doc: { channels: { imessage: { groups: { "1": {} }, accounts: { a: { groups: { "1": {} } } } } } },
      edit: { op: "set", path: ["channels", "imessage", "accounts", "a", "groups", "1", "requireMention"], value: false },
    });
    expect(doc).toEqual({ channels: { imessage: { groups: { "1": {} } } } });
  });
});

describe("the file on disk", () => {
  test("a manual edit since load makes /config refuse, and the manual edit stays", () => {
    using f = scratch(single());
    const cfg = loadConfig(f.path);
    const manual = JSON.stringify(single({ dmPolicy: "disabled" }));
    writeFileSync(f.path, manual);
    const r = configCommand(cfg, resolveAccount(cfg), "set textChunkLimit 99", owns(OWNER_A));
    expect(r.reply).toBe("Not saved: the config file changed on disk since the gateway loaded it; restart or edit the file.");
    expect(f.text()).toBe(manual);
  });

  test("a symlinked config stays a symlink; the target is replaced and keeps 0600", () => {
    using f = scratch(single());
    const link = join(f.dir, "link.json5");
    symlinkSync(f.path, link);
    const r = run(link, "set textChunkLimit 99");
    expect(r.reply).toStartWith("Saved");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(JSON.parse(f.text()).channels.imessage.textChunkLimit).toBe(99);
    expect(statSync(f.path).mode & 0o777).toBe(0o600);
    expect(readdirSync(f.dir).sort()).toEqual(["c.json5", "link.json5"]); // no temp file left behind
  });

  test.each([
    [0o644, 0o600],
    [0o400, 0o400],
  ])("mode %o becomes %o (kept, never wider than 0600)", (from, want) => {
    using f = scratch(single());
    chmodSync(f.path, from);
    expect(run(f.path, "set textChunkLimit 99").reply).toStartWith("Saved");
    expect(statSync(f.path).mode & 0o777).toBe(want);
  });

  test("a failed write replies Not saved with the reason and leaves the file and directory as they were", () => {
    // A name so long that the temp file beside it cannot be created: fails even for root, unlike a read-only dir.
    using f = scratch(single(), `${"c".repeat(240)}.json5`);
    const before = f.text();
    const r = run(f.path, "set textChunkLimit 99");
    expect(r.reply).toMatch(/^Not saved: .*ENAMETOOLONG/);
    expect(r.config).toBeUndefined();
    expect(f.text()).toBe(before);
    expect(readdirSync(f.dir)).toHaveLength(1);
  });

  test.skipIf(process.getuid?.() === 0)("a read-only directory replies Not saved", () => {
    using f = scratch(single());
    const sub = join(f.dir, "ro");
    mkdirSync(sub);
    const path = join(sub, "c.json5");
    writeFileSync(path, JSON.stringify(single()));
    chmodSync(sub, 0o500);
    try {
      expect(run(path, "set textChunkLimit 99").reply).toMatch(/^Not saved: .*EACCES/);
    } finally {
      chmodSync(sub, 0o700);
    }
  });

  test("unset of a key the file does not have writes nothing", () => {
    using f = scratch(single());
    const before = f.text();
    expect(run(f.path, "unset responsePrefix").reply).toContain("Nothing changed");
    expect(f.text()).toBe(before);
  });
});
