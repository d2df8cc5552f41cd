import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyConfigEdit, commitConfigEdit, parseConfigEdit } from "../src/config-edit.ts";
import { loadConfig } from "../src/config.ts";

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
  const base = { channels: { imessage: { enabled: true, dmPolicy: "allowlist", allowFrom: ["+15550001111"] } }, agents: { list: [{ id: "main", command: ["/bin/true"] }] } };
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
