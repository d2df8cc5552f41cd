import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import JSON5 from "json5";
import { buildConfig, type Config, type ImessageAccount, legacyWarnings, loadConfig, parseConfig, resolveAccount } from "../src/config.ts";
import { describeSchemaKeys, MINIMAL_CONFIG_EXAMPLE } from "../src/config-docs.ts";
import { closestKey, DEFAULTS, isSafeCliPath } from "../src/config-schema.ts";
import { DEFAULT_ATTACHMENT_ROOT, mergeRoots } from "../src/files.ts";
import { ConfigError, EXIT } from "../src/errors.ts";

const FILE = "/etc/openclaw/test.json5";

/** Parses a config object (written as JSON5 text so the loader path is the real one). */
function cfg(doc: unknown): Config {
  return parseConfig(JSON5.stringify(doc), FILE);
}

/** `channels.imessage` = section, plus any other top-level keys. */
function im(section: Record<string, unknown>, rest: Record<string, unknown> = {}): Config {
  return cfg({ ...rest, channels: { ...((rest.channels as object) ?? {}), imessage: section } });
}

function account(doc: unknown, id?: string): ImessageAccount {
  return resolveAccount(cfg(doc), id);
}

/** The ConfigError a parse throws (fails the test when it does not throw one). */
function problemOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError, but parsing succeeded");
}

const agentsOk = { list: [{ id: "main", default: true, command: ["/usr/local/bin/agent"] }] };

describe("defaults of a resolved account", () => {
  const a = account({ channels: { imessage: {} } });
  const rows: [keyof ImessageAccount, unknown][] = [
    ["accountId", "default"],
    ["enabled", true],
    ["cliPath", "imsg"],
    ["dbPath", undefined],
    ["remoteHost", undefined],
    ["includeAttachments", false],
    ["attachmentRoots", [DEFAULT_ATTACHMENT_ROOT]],
    ["remoteAttachmentRoots", [DEFAULT_ATTACHMENT_ROOT]],
    ["mediaLocalRoots", undefined],
    ["allowSms", false],
    ["dmPolicy", "pairing"],
    ["allowFrom", []],
    ["groupPolicy", "allowlist"],
    ["groupAllowFrom", undefined],
    ["groups", {}],
    ["mediaMaxMb", 16],
    ["textChunkLimit", 4000],
    ["chunkMode", "length"],
    ["reactionNotifications", "own"],
    ["actions", { reactions: true, reply: true }],
    ["reactFallback", false],
    ["configWrites", true],
    ["service", "auto"],
    ["region", "US"],
    ["historyLimit", 50],
    ["dmHistoryLimit", 0],
    ["dmSessionTurns", 20],
    ["dms", {}],
    ["ownerTakeoverMinutes", 0],
    ["debounceMs", undefined],
    ["probeTimeoutMs", 10_000],
    ["sendReadReceipts", true],
    ["responsePrefix", undefined],
    ["defaultTo", undefined],
    ["maxAgeMinutes", 15],
    ["recoveryMaxAgeMinutes", 120],
    ["recoveryMaxRows", 500],
    ["replyMaxChars", 4000],
    ["replyMaxParts", 5],
    ["replyOnError", true],
    ["loopMaxExchanges", 10],
    ["loopFollowMs", 3000],
    ["loopEchoRows", 5],
    ["sectionMissing", false],
  ];
  test.each(rows)("%s defaults to %p", (key, expected) => {
    expect(a[key]).toEqual(expected as never);
  });
  test("every field of ImessageAccount has a default row", () => {
    expect(Object.keys(a).sort()).toEqual(rows.map(([k]) => k).filter((k) => a[k] !== undefined).sort());
  });
});

describe("defaults of the config", () => {
  const c = cfg({});
  const rows: [string, (c: Config) => unknown, unknown][] = [
    ["accountIds", (c) => c.accountIds, ["default"]],
    ["defaultAccount", (c) => c.defaultAccount, "default"],
    ["session.dmScope", (c) => c.session.dmScope, "main"],
    ["session.mainKey", (c) => c.session.mainKey, "main"],
    ["commands.config", (c) => c.commands.config, false],
    ["commands.useAccessGroups", (c) => c.commands.useAccessGroups, true],
    ["messages.groupChat", (c) => c.messages.groupChat, {}],
    ["messages.responsePrefix", (c) => c.messages.responsePrefix, undefined],
    ["agents (no agent invented)", (c) => c.agents, []],
    ["bindings", (c) => c.bindings, []],
    ["retentionDays", (c) => c.retentionDays, 30],
  ];
  test.each(rows)("%s", (_name, get, expected) => {
    expect(get(c)).toEqual(expected as never);
  });
  test("agent timeoutSeconds defaults to 120", () => {
    expect(cfg({ agents: agentsOk }).agents[0]!.timeoutSeconds).toBe(120);
  });
  test("DEFAULTS matches what resolution applies", () => {
    const a = account({ channels: { imessage: {} } });
    for (const [k, val] of Object.entries(DEFAULTS.imessage)) {
      if (k === "retentionDays") expect(cfg({}).retentionDays).toBe(val as number);
      else expect(a[k as keyof ImessageAccount]).toEqual(val as never);
    }
  });
});

describe("values that are accepted", () => {
  const rows: [string, Record<string, unknown>][] = [
    ["cliPath with spaces", { cliPath: "/Applications/Imsg Tools/imsg" }],
    ["cliPath with ~", { cliPath: "~/.openclaw/scripts/imsg-ssh" }],
    ["remoteHost user@host", { remoteHost: "bot@gateway-host" }],
    ["remoteHost bare host", { remoteHost: "mac-mini.tailnet-1234.ts.net" }],
    ["root with * segments", { attachmentRoots: ["/Users/*/Library/Messages/Attachments", "/Volumes/*/Messages"] }],
    ["allowFrom strings and numbers", { allowFrom: ["+15550001111", 15550002222, "chat_id:42", "user@example.com"] }],
    ["dmPolicy open with *", { dmPolicy: "open", allowFrom: ["*"] }],
    ["dmPolicy allowlist with an entry", { dmPolicy: "allowlist", allowFrom: ["+15550001111"] }],
    ["allowlist account inherits top allowFrom", { allowFrom: ["+15550001111"], accounts: { work: { dmPolicy: "allowlist" } } }],
    ["open top level overridden by every account", { dmPolicy: "open", accounts: { work: { allowFrom: ["*"] } } }],
    ["historyLimit 0 (disabled)", { historyLimit: 0, dmHistoryLimit: 0 }],
    ["groups with chat ids and *", { groups: { "42": { requireMention: false, systemPrompt: "be brief" }, "*": { requireMention: true } } }],
    ["groupAllowFrom explicitly empty", { groupAllowFrom: [] }],
    ["every enum value", { dmPolicy: "disabled", groupPolicy: "open", chunkMode: "newline", service: "sms" }],
    ["defaultAccount naming an account", { defaultAccount: "work", accounts: { work: {}, home: {} } }],
  ];
  test.each(rows)("%s", (_name, section) => {
    expect(() => im(section)).not.toThrow();
  });
  test("an openai agent with every field", () => {
    const c = cfg({
      agents: {
        list: [{
          id: "chat",
          openai: { baseUrl: "http://127.0.0.1:11434/v1", model: "llama3.2", apiKeyEnv: "OPENAI_API_KEY", systemPrompt: "You are helpful" },
        }],
      },
    });
    expect(c.agents[0]!.openai!.baseUrl).toBe("http://127.0.0.1:11434/v1");
  });
});

describe("rules: each invalid value is reported at its dotted path", () => {
  // [rule, document, expected path, expected message fragment]
  const rows: [string, Record<string, unknown>, string, RegExp][] = [
    [
      "dmPolicy open needs * in allowFrom",
      { channels: { imessage: { dmPolicy: "open", allowFrom: ["+15550001111"] } } },
      "channels.imessage.allowFrom",
      /"open" requires allowFrom to include "\*"/,
    ],
    ["dmPolicy open without allowFrom", { channels: { imessage: { dmPolicy: "open" } } }, "channels.imessage.allowFrom", /include "\*"/],
    [
      "dmPolicy open in an account, inheriting allowFrom",
      { channels: { imessage: { allowFrom: ["+15550001111"], accounts: { work: { dmPolicy: "open" } } } } },
      "channels.imessage.accounts.work.allowFrom",
      /inherited from channels\.imessage\.allowFrom/,
    ],
    [
      "dmPolicy allowlist needs an entry",
      { channels: { imessage: { dmPolicy: "allowlist", allowFrom: [] } } },
      "channels.imessage.allowFrom",
      /at least one sender/,
    ],
    [
      "dmPolicy allowlist inherited by an account without entries",
      { channels: { imessage: { dmPolicy: "allowlist", accounts: { work: {} } } } },
      "channels.imessage.allowFrom",
      /at least one sender/,
    ],
    [
      "remoteHost with an ssh option",
      { channels: { imessage: { remoteHost: "-oProxyCommand=x" } } },
      "channels.imessage.remoteHost",
      /expected SSH host or user@host, no spaces or options/,
    ],
    ["remoteHost with a space", { channels: { imessage: { remoteHost: "a b" } } }, "channels.imessage.remoteHost", /expected SSH host/],
    [
      "remoteHost with a trailing option",
      { channels: { imessage: { remoteHost: "bot@gateway-host -oProxyCommand=whoami" } } },
      "channels.imessage.remoteHost",
      /expected SSH host/,
    ],
    [
      "a national phone number (no country code) in allowFrom",
      { channels: { imessage: { allowFrom: ["+15550002222", "(555) 000-1111"] } } },
      "channels.imessage.allowFrom.1",
      /has no country code/,
    ],
    [
      "a national phone number in an account's groupAllowFrom",
      { channels: { imessage: { accounts: { work: { groupAllowFrom: ["5550001111"] } } } } },
      "channels.imessage.accounts.work.groupAllowFrom.0",
      /E.164/,
    ],
    ["remoteHost with a double @", { channels: { imessage: { remoteHost: "user@@host" } } }, "channels.imessage.remoteHost", /expected SSH host/],
    ["remoteHost with a ;", { channels: { imessage: { remoteHost: "host;rm" } } }, "channels.imessage.remoteHost", /expected SSH host/],
    [
      "relative attachment root",
      { channels: { imessage: { attachmentRoots: ["Library/Messages"] } } },
      "channels.imessage.attachmentRoots.0",
      /absolute path pattern/,
    ],
    [
      "partial * in a remote root",
      { channels: { imessage: { remoteAttachmentRoots: ["/Users/a*/x"] } } },
      "channels.imessage.remoteAttachmentRoots.0",
      /absolute path pattern/,
    ],
    ["cliPath with ; rm", { channels: { imessage: { cliPath: "imsg; rm -rf /" } } }, "channels.imessage.cliPath", /without shell metacharacters/],
    ["cliPath with a pipe", { channels: { imessage: { cliPath: "imsg | tee /tmp/x" } } }, "channels.imessage.cliPath", /shell metacharacters/],
    ["cliPath with $()", { channels: { imessage: { cliPath: "$(whoami)" } } }, "channels.imessage.cliPath", /shell metacharacters/],
    ["cliPath with a newline", { channels: { imessage: { cliPath: "imsg\nrm" } } }, "channels.imessage.cliPath", /shell metacharacters/],
    ["cliPath starting with -", { channels: { imessage: { cliPath: "-x" } } }, "channels.imessage.cliPath", /options/],
    ["empty dbPath", { channels: { imessage: { dbPath: " " } } }, "channels.imessage.dbPath", /must not be empty/],
    [
      "allowFrom entry of the wrong type",
      { channels: { imessage: { allowFrom: [true] } } },
      "channels.imessage.allowFrom.0",
      /expected a string or number, got true/,
    ],
    ["empty allowFrom entry", { channels: { imessage: { groupAllowFrom: [""] } } }, "channels.imessage.groupAllowFrom.0", /non-empty/],
    [
      "groups key that is not a chat id",
      { channels: { imessage: { groups: { "iMessage;+;chat123": {} } } } },
      "channels.imessage.groups.iMessage;+;chat123",
      /numeric chat ids .* or "\*"/,
    ],
    ["mediaMaxMb 0", { channels: { imessage: { mediaMaxMb: 0 } } }, "channels.imessage.mediaMaxMb", /positive integer, got 0/],
    ["mediaMaxMb fractional", { channels: { imessage: { mediaMaxMb: 1.5 } } }, "channels.imessage.mediaMaxMb", /positive integer/],
    ["textChunkLimit negative", { channels: { imessage: { textChunkLimit: -1 } } }, "channels.imessage.textChunkLimit", /positive integer/],
    ["probeTimeoutMs 0", { channels: { imessage: { probeTimeoutMs: 0 } } }, "channels.imessage.probeTimeoutMs", /positive integer/],
    ["historyLimit negative", { channels: { imessage: { historyLimit: -1 } } }, "channels.imessage.historyLimit", /integer ≥ 0/],
    ["dmHistoryLimit fractional", { channels: { imessage: { dmHistoryLimit: 2.5 } } }, "channels.imessage.dmHistoryLimit", /integer ≥ 0/],
    ["maxAgeMinutes 0", { channels: { imessage: { maxAgeMinutes: 0 } } }, "channels.imessage.maxAgeMinutes", /positive integer/],
    ["recoveryMaxAgeMinutes 0", { channels: { imessage: { recoveryMaxAgeMinutes: 0 } } }, "channels.imessage.recoveryMaxAgeMinutes", /positive integer/],
    ["recoveryMaxRows 0", { channels: { imessage: { recoveryMaxRows: 0 } } }, "channels.imessage.recoveryMaxRows", /positive integer/],
    ["retentionDays 0", { channels: { imessage: { retentionDays: 0 } } }, "channels.imessage.retentionDays", /positive integer/],
    [
      "retentionDays inside an account",
      { channels: { imessage: { accounts: { work: { retentionDays: 7 } } } } },
      "channels.imessage.accounts.work.retentionDays",
      /only allowed at the top level/,
    ],
    // Upper bounds: a timer above 2^31−1 ms fires at once, so out-of-range numbers must not load.
    ["probeTimeoutMs 2^31", { channels: { imessage: { probeTimeoutMs: 2147483648 } } }, "channels.imessage.probeTimeoutMs", /at most 600000, got 2147483648/],
    ["probeTimeoutMs above 10 min", { channels: { imessage: { probeTimeoutMs: 600001 } } }, "channels.imessage.probeTimeoutMs", /at most 600000/],
    ["mediaMaxMb huge", { channels: { imessage: { mediaMaxMb: 1e9 } } }, "channels.imessage.mediaMaxMb", /at most 1024/],
    ["textChunkLimit huge", { channels: { imessage: { textChunkLimit: 100001 } } }, "channels.imessage.textChunkLimit", /at most 100000/],
    ["historyLimit huge", { channels: { imessage: { historyLimit: 1001 } } }, "channels.imessage.historyLimit", /at most 1000/],
    ["dmHistoryLimit huge", { channels: { imessage: { dmHistoryLimit: 1001 } } }, "channels.imessage.dmHistoryLimit", /at most 1000/],
    ["maxAgeMinutes huge", { channels: { imessage: { maxAgeMinutes: 10081 } } }, "channels.imessage.maxAgeMinutes", /at most 10080/],
    ["recoveryMaxAgeMinutes huge", { channels: { imessage: { recoveryMaxAgeMinutes: 43201 } } }, "channels.imessage.recoveryMaxAgeMinutes", /at most 43200/],
    ["recoveryMaxRows huge", { channels: { imessage: { recoveryMaxRows: 100001 } } }, "channels.imessage.recoveryMaxRows", /at most 100000/],
    ["retentionDays huge", { channels: { imessage: { retentionDays: 3651 } } }, "channels.imessage.retentionDays", /at most 3650/],
    [
      "account probeTimeoutMs huge",
      { channels: { imessage: { accounts: { a: { probeTimeoutMs: 2147483648 } } } } },
      "channels.imessage.accounts.a.probeTimeoutMs",
      /at most 600000/,
    ],
    ["messages.groupChat.historyLimit huge", { messages: { groupChat: { historyLimit: 5000 } } }, "messages.groupChat.historyLimit", /at most 1000/],
    ["messages.groupChat.historyLimit negative", { messages: { groupChat: { historyLimit: -2 } } }, "messages.groupChat.historyLimit", /integer ≥ 0/],
    ["region that is not a country code", { channels: { imessage: { region: "United States" } } }, "channels.imessage.region", /two-letter region code/],
    ["boolean given as a string", { channels: { imessage: { enabled: "yes" } } }, "channels.imessage.enabled", /expected boolean, got "yes"/],
    [
      "unknown dmPolicy",
      { channels: { imessage: { dmPolicy: "everyone" } } },
      "channels.imessage.dmPolicy",
      /expected one of "pairing", "allowlist", "open", "disabled", got "everyone"/,
    ],
    ["unknown groupPolicy", { channels: { imessage: { groupPolicy: "all" } } }, "channels.imessage.groupPolicy", /expected one of/],
    ["unknown chunkMode", { channels: { imessage: { chunkMode: "words" } } }, "channels.imessage.chunkMode", /expected one of "length", "newline"/],
    ["unknown service", { channels: { imessage: { service: "rcs" } } }, "channels.imessage.service", /expected one of "imessage", "sms", "auto"/],
    ["unknown channels.defaults.groupPolicy", { channels: { defaults: { groupPolicy: "yes" } } }, "channels.defaults.groupPolicy", /expected one of/],
    ["unknown session.dmScope", { session: { dmScope: "per-chat" } }, "session.dmScope", /expected one of "main", "per-peer"/],
    ["empty session.mainKey", { session: { mainKey: "" } }, "session.mainKey", /must not be empty/],
    ["commands.config not a boolean", { commands: { config: 1 } }, "commands.config", /expected boolean/],
    [
      "invalid mention pattern",
      { messages: { groupChat: { mentionPatterns: ["(claw"] } } },
      "messages.groupChat.mentionPatterns.0",
      /invalid regular expression/,
    ],
    [
      "invalid agent mention pattern",
      { agents: { list: [{ id: "main", command: ["a"], groupChat: { mentionPatterns: ["[x"] } }] } },
      "agents.list.0.groupChat.mentionPatterns.0",
      /invalid regular expression/,
    ],
    ["account id with capitals", { channels: { imessage: { accounts: { Work: {} } } } }, "channels.imessage.accounts.Work", /account ids are lowercase/],
    [
      "defaultAccount naming no account",
      { channels: { imessage: { defaultAccount: "work", accounts: { home: {} } } } },
      "channels.imessage.defaultAccount",
      /unknown account "work" \(accounts: home\)/,
    ],
    ["agent without a backend", { agents: { list: [{ id: "main" }] } }, "agents.list.0", /needs one backend/],
    [
      "agent with two backends",
      { agents: { list: [{ id: "main", command: ["a"], openai: { baseUrl: "http://x", model: "m" } }] } },
      "agents.list.0",
      /exactly one backend/,
    ],
    ["agent with an empty command", { agents: { list: [{ id: "main", command: [] }] } }, "agents.list.0.command", /must name the program/],
    ["agent without an id", { agents: { list: [{ command: ["a"] }] } }, "agents.list.0.id", /is required/],
    ["agent id with a colon", { agents: { list: [{ id: "a:b", command: ["a"] }] } }, "agents.list.0.id", /agent ids are lowercase/],
    [
      "duplicate agent ids",
      { agents: { list: [{ id: "main", command: ["a"] }, { id: "main", command: ["b"] }] } },
      "agents.list.1.id",
      /duplicate agent id "main" \(also agents\.list\.0\)/,
    ],
    [
      "two default agents",
      { agents: { list: [{ id: "a", default: true, command: ["a"] }, { id: "b", default: true, command: ["b"] }] } },
      "agents.list.1.default",
      /only one agent may be the default/,
    ],
    [
      "agent timeoutSeconds 2147484",
      { agents: { list: [{ id: "main", command: ["a"], timeoutSeconds: 2147484 }] } },
      "agents.list.0.timeoutSeconds",
      /at most 86400/,
    ],
    ["agent timeoutSeconds 0", { agents: { list: [{ id: "main", command: ["a"], timeoutSeconds: 0 }] } }, "agents.list.0.timeoutSeconds", /positive integer/],
    [
      "openai baseUrl that is not http(s)",
      { agents: { list: [{ id: "c", openai: { baseUrl: "ftp://x", model: "m" } }] } },
      "agents.list.0.openai.baseUrl",
      /http\(s\) URL/,
    ],
    [
      "openai baseUrl that is not a URL",
      { agents: { list: [{ id: "c", openai: { baseUrl: "localhost:11434", model: "m" } }] } },
      "agents.list.0.openai.baseUrl",
      /http\(s\) URL/,
    ],
    ["openai without a model", { agents: { list: [{ id: "c", openai: { baseUrl: "http://x" } }] } }, "agents.list.0.openai.model", /is required/],
    [
      "openai apiKeyEnv that is not a variable name",
      { agents: { list: [{ id: "c", openai: { baseUrl: "http://x", model: "m", apiKeyEnv: "sk-123" } }] } },
      "agents.list.0.openai.apiKeyEnv",
      /environment variable name/,
    ],
    [
      "binding to an unknown agent",
      { agents: agentsOk, bindings: [{ agentId: "chat", match: { channel: "imessage" } }] },
      "bindings.0.agentId",
      /unknown agent "chat" \(agents: main\)/,
    ],
    [
      "binding to an unknown account",
      { agents: agentsOk, bindings: [{ agentId: "main", match: { accountId: "work" } }] },
      "bindings.0.match.accountId",
      /unknown account "work" \(accounts: default\)/,
    ],
    [
      "binding with an unknown peer kind",
      { agents: agentsOk, bindings: [{ agentId: "main", match: { peer: { kind: "dm", id: "+15550001111" } } }] },
      "bindings.0.match.peer.kind",
      /expected "direct" or "group"/,
    ],
    ["channels.imessage that is not an object", { channels: { imessage: true } }, "channels.imessage", /expected an object, got true/],
  ];
  test.each(rows)("%s", (_rule, doc, path, message) => {
    const err = problemOf(() => cfg(doc));
    const line = err.message.split("\n").find((l) => l.startsWith(`  - ${path}: `));
    expect(line ?? err.message).toMatch(message);
    expect(err.exitCode).toBe(EXIT.usage);
  });
});

describe("unknown keys name the path and the closest known key", () => {
  const rows: [string, Record<string, unknown>, string][] = [
    [
      "top level of channels.imessage",
      { channels: { imessage: { dmPolcy: "open" } } },
      '  - channels.imessage.dmPolcy: unknown key (did you mean "dmPolicy"?)',
    ],
    ["wrong case", { channels: { imessage: { allowfrom: [] } } }, '  - channels.imessage.allowfrom: unknown key (did you mean "allowFrom"?)'],
    [
      "inside an account",
      { channels: { imessage: { accounts: { work: { historyLimt: 3 } } } } },
      '  - channels.imessage.accounts.work.historyLimt: unknown key (did you mean "historyLimit"?)',
    ],
    [
      "inside a group entry",
      { channels: { imessage: { groups: { "42": { requireMentions: true } } } } },
      '  - channels.imessage.groups.42.requireMentions: unknown key (did you mean "requireMention"?)',
    ],
    ["inside an agent entry", { agents: { list: [{ id: "main", comand: ["a"] }] } }, '  - agents.list.0.comand: unknown key (did you mean "command"?)'],
    [
      "inside an agent's openai block",
      { agents: { list: [{ id: "c", openai: { baseURL: "http://x", model: "m" } }] } },
      '  - agents.list.0.openai.baseURL: unknown key (did you mean "baseUrl"?)',
    ],
    ["inside agents", { agents: { lst: [] } }, '  - agents.lst: unknown key (did you mean "list"?)'],
    ["nothing close: no suggestion", { channels: { imessage: { gateway: { port: 1 } } } }, "  - channels.imessage.gateway: unknown key"],
  ];
  test.each(rows)("%s", (_name, doc, line) => {
    expect(problemOf(() => cfg(doc)).message.split("\n")).toContain(line);
  });
});

describe("problem report", () => {
  test("every problem is listed under a header naming the file", () => {
    const err = problemOf(() =>
      cfg({
        channels: { imessage: { dmPolicy: "open", mediaMaxMb: 0, cliPaht: "imsg", accounts: { work: { region: 1 } } } },
        agents: { list: [{ id: "main" }] },
      })
    );
    const [header, ...lines] = err.message.split("\n");
    expect(header).toBe(`${FILE}: invalid configuration (5 problems):`);
    expect(lines.map((l) => l.split(":")[0]).sort()).toEqual(
      [
        "  - agents.list.0",
        "  - channels.imessage.accounts.work.region",
        "  - channels.imessage.allowFrom",
        "  - channels.imessage.cliPaht",
        "  - channels.imessage.mediaMaxMb",
      ].sort(),
    );
  });

  const notObjects: [string, string, RegExp][] = [
    ["an array", "[1, 2]", /top level must be an object.*got an array/],
    ["a number", "42", /top level must be an object.*got number/],
    ["null", "null", /top level must be an object.*got null/],
  ];
  test.each(notObjects)("top level that is %s", (_name, text, message) => {
    expect(problemOf(() => parseConfig(text, FILE)).message).toMatch(message);
  });
});

describe("JSON5 syntax errors carry file:line:column", () => {
  const rows: [string, string, string][] = [
    ["trailing comma at end of input", "{a:1,", `${FILE}:1:6: invalid end of input`],
    ["unterminated string", "{a: 'x}", `${FILE}:1:8: invalid end of input`],
    ["extra brace", "{a: 1}}", `${FILE}:1:7: invalid character '}'`],
    ["bad value on line 3", "{\n  a: 1,\n  b: nope\n}", `${FILE}:3:7: invalid character 'o'`],
    ["empty file", "", `${FILE}:1:1: invalid end of input`],
  ];
  test.each(rows)("%s", (_name, text, message) => {
    const err = problemOf(() => parseConfig(text, FILE));
    expect(err.message).toBe(message);
    expect(err.exitCode).toBe(EXIT.usage);
  });
  test("JSON5 comments, unquoted keys and trailing commas are fine", () => {
    const c = parseConfig("// mine\n{ channels: { imessage: { cliPath: 'imsg', }, }, /* end */ }", FILE);
    expect(resolveAccount(c).cliPath).toBe("imsg");
  });
});

describe("unrelated keys of a full OpenClaw config are ignored", () => {
  const rows: [string, Record<string, unknown>][] = [
    ["gateway", { gateway: { port: 18789, auth: { token: "x" } } }],
    ["models", { models: { providers: { ollama: { baseUrl: "http://127.0.0.1:11434" } } } }],
    ["channels.telegram", { channels: { telegram: { botToken: "x" }, imessage: { enabled: true } } }],
    ["session.reset", { session: { reset: { mode: "daily" } } }],
    ["messages.queue", { messages: { queue: { mode: "collect" }, groupChat: { mentionPatterns: ["@claw"], other: 1 } } }],
    ["commands.native", { commands: { native: "auto", config: true } }],
    ["channels.defaults.other", { channels: { defaults: { heartbeat: {} } } }],
    ["bindings of other channels", {
      agents: agentsOk,
      bindings: [{ agentId: "main", match: { channel: "telegram", accountId: "tg", peer: { kind: "channel", id: "-100" } } }],
    }],
  ];
  test.each(rows)("%s", (_name, doc) => {
    expect(() => cfg(doc)).not.toThrow();
  });
  test("raw keeps the whole document", () => {
    expect(cfg({ gateway: { port: 1 } }).raw).toEqual({ gateway: { port: 1 } });
  });
});

describe("loadConfig", () => {
  const dir = mkdtempSync(join(tmpdir(), "openclaw-imsg-config-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("a missing file names the path and shows a minimal config", () => {
    const file = join(dir, "missing.json5");
    const err = problemOf(() => loadConfig(file));
    expect(err.message).toBe(`config file not found: ${file}`);
    expect(err.hint).toContain(MINIMAL_CONFIG_EXAMPLE);
    expect(err.exitCode).toBe(EXIT.usage);
  });

  test("the minimal example it shows is itself a valid config", () => {
    const c = parseConfig(MINIMAL_CONFIG_EXAMPLE, FILE);
    expect(c.agents.map((a) => a.id)).toEqual(["main"]);
    expect(resolveAccount(c).enabled).toBe(true);
  });

  test("an unreadable file reports the OS reason", () => {
    const err = problemOf(() => loadConfig(dir));
    expect(err.message).toStartWith(`cannot read config file ${dir}: `);
    expect(err.message).toMatch(/EISDIR|directory/i);
  });

  test("a valid file loads with its absolute path", () => {
    const file = join(dir, "ok.json5");
    writeFileSync(file, "\uFEFF{ channels: { imessage: { dmPolicy: 'disabled' } } }");
    const c = loadConfig(file);
    expect(c.path).toBe(file);
    expect(resolveAccount(c).dmPolicy).toBe("disabled");
  });

  test("syntax errors name the file that was read", () => {
    const file = join(dir, "bad.json5");
    writeFileSync(file, "{\n  channels: {\n    imessage: { enabled: tru }\n  }\n}\n");
    expect(problemOf(() => loadConfig(file)).message).toBe(`${file}:3:29: invalid character ' '`);
  });
});

describe("accounts", () => {
  const rows: [string, Record<string, unknown> | undefined, string[], string][] = [
    ["no section", undefined, ["default"], "default"],
    ["no accounts", {}, ["default"], "default"],
    ["empty accounts", { accounts: {} }, ["default"], "default"],
    ["keys sorted; first when no default", { accounts: { zed: {}, alpha: {} } }, ["alpha", "zed"], "alpha"],
    ["default preferred when present", { accounts: { zed: {}, default: {} } }, ["default", "zed"], "default"],
    ["defaultAccount wins", { accounts: { zed: {}, default: {} }, defaultAccount: "zed" }, ["default", "zed"], "zed"],
  ];
  test.each(rows)("%s", (_name, section, ids, def) => {
    const c = section === undefined ? cfg({}) : im(section);
    expect(c.accountIds).toEqual(ids);
    expect(c.defaultAccount).toBe(def);
    expect(resolveAccount(c).accountId).toBe(def);
  });

  test("an unknown account id lists the known ones", () => {
    const err = problemOf(() => resolveAccount(im({ accounts: { work: {}, home: {} } }), "play"));
    expect(err.message).toBe('unknown account "play" (accounts: home, work)');
  });

  test("account ids are matched case-insensitively", () => {
    expect(resolveAccount(im({ accounts: { work: {} } }), " Work ").accountId).toBe("work");
  });

  test("an account is laid shallowly over the top level", () => {
    const c = im({
      cliPath: "/usr/local/bin/imsg",
      dmPolicy: "allowlist",
      allowFrom: ["+15550001111", "+15550002222"],
      groups: { "1": { requireMention: true }, "*": { requireMention: false } },
      mediaMaxMb: 8,
      accounts: {
        work: { cliPath: "/opt/imsg-work", allowFrom: ["user@example.com"], groups: { "2": {} } },
        home: {},
      },
    });
    const work = resolveAccount(c, "work");
    expect(work.cliPath).toBe("/opt/imsg-work"); // scalar from the account
    expect(work.dmPolicy).toBe("allowlist"); // inherited
    expect(work.mediaMaxMb).toBe(8); // inherited
    expect(work.allowFrom).toEqual(["user@example.com"]); // array replaced, not merged
    expect(work.groups).toEqual({ "2": {} }); // map replaced, not merged
    const home = resolveAccount(c, "home");
    expect(home.allowFrom).toEqual(["+15550001111", "+15550002222"]);
    expect(home.groups).toEqual({ "1": { requireMention: true }, "*": { requireMention: false } });
  });

  const enabledRows: [unknown, unknown, boolean][] = [
    [undefined, undefined, true],
    [true, undefined, true],
    [false, undefined, false],
    [false, true, false],
    [true, false, false],
    [undefined, false, false],
  ];
  test.each(enabledRows)("enabled: top %p, account %p → %p", (top, acct, expected) => {
    const section: Record<string, unknown> = { accounts: { work: acct === undefined ? {} : { enabled: acct } } };
    if (top !== undefined) section.enabled = top;
    expect(resolveAccount(im(section), "work").enabled).toBe(expected);
  });
});

describe("fallback chains", () => {
  const rows: [string, Record<string, unknown>, keyof ImessageAccount, unknown][] = [
    [
      "historyLimit: account",
      { channels: { imessage: { historyLimit: 5, accounts: { default: { historyLimit: 7 } } } }, messages: { groupChat: { historyLimit: 9 } } },
      "historyLimit",
      7,
    ],
    ["historyLimit: top level", { channels: { imessage: { historyLimit: 5 } }, messages: { groupChat: { historyLimit: 9 } } }, "historyLimit", 5],
    ["historyLimit: messages.groupChat", { channels: { imessage: {} }, messages: { groupChat: { historyLimit: 9 } } }, "historyLimit", 9],
    [
      "historyLimit: 0 is kept, not defaulted",
      { channels: { imessage: { historyLimit: 0 } }, messages: { groupChat: { historyLimit: 9 } } },
      "historyLimit",
      0,
    ],
    [
      "responsePrefix: account",
      { channels: { imessage: { responsePrefix: "[top]", accounts: { default: { responsePrefix: "[acct]" } } } }, messages: { responsePrefix: "[msg]" } },
      "responsePrefix",
      "[acct]",
    ],
    ["responsePrefix: top level", { channels: { imessage: { responsePrefix: "[top]" } }, messages: { responsePrefix: "[msg]" } }, "responsePrefix", "[top]"],
    ["responsePrefix: messages", { channels: { imessage: {} }, messages: { responsePrefix: "[msg]" } }, "responsePrefix", "[msg]"],
    ["groupPolicy: explicit", { channels: { defaults: { groupPolicy: "disabled" }, imessage: { groupPolicy: "open" } } }, "groupPolicy", "open"],
    ["groupPolicy: channels.defaults", { channels: { defaults: { groupPolicy: "open" }, imessage: {} } }, "groupPolicy", "open"],
    ["groupPolicy: allowlist", { channels: { imessage: {} } }, "groupPolicy", "allowlist"],
    ["groupPolicy: missing section forces allowlist over channels.defaults", { channels: { defaults: { groupPolicy: "open" } } }, "groupPolicy", "allowlist"],
    ["sectionMissing: no channels.imessage", { channels: { defaults: { groupPolicy: "open" } } }, "sectionMissing", true],
    ["sectionMissing: empty section is present", { channels: { imessage: {} } }, "sectionMissing", false],
    ["groupAllowFrom: unset stays undefined", { channels: { imessage: { allowFrom: ["+15550001111"] } } }, "groupAllowFrom", undefined],
    ["groupAllowFrom: explicit [] is kept", { channels: { imessage: { groupAllowFrom: [] } } }, "groupAllowFrom", []],
    ["allowFrom: stringified and trimmed", { channels: { imessage: { allowFrom: [15550001111, " user@example.com ", "chat_id:42"] } } }, "allowFrom", [
      "15550001111",
      "user@example.com",
      "chat_id:42",
    ]],
    ["remoteHost: trimmed", { channels: { imessage: { remoteHost: " bot@mac-mini " } } }, "remoteHost", "bot@mac-mini"],
    ["cliPath: ~ expanded", { channels: { imessage: { cliPath: "~/.openclaw/scripts/imsg-ssh" } } }, "cliPath", join(homedir(), ".openclaw/scripts/imsg-ssh")],
    ["dbPath: ~ expanded", { channels: { imessage: { dbPath: "~/Library/Messages/chat.db" } } }, "dbPath", join(homedir(), "Library/Messages/chat.db")],
    ["dbPath: absolute kept", { channels: { imessage: { dbPath: "/Users/bot/Library/Messages/chat.db" } } }, "dbPath", "/Users/bot/Library/Messages/chat.db"],
  ];
  test.each(rows)("%s", (_name, doc, key, expected) => {
    expect(account(doc)[key]).toEqual(expected as never);
  });
});

describe("attachment roots", () => {
  const rows: [string, Record<string, unknown>, string[], string[]][] = [
    ["defaults only", {}, [DEFAULT_ATTACHMENT_ROOT], [DEFAULT_ATTACHMENT_ROOT]],
    ["top-level local roots extend the default", { attachmentRoots: ["/Volumes/*/Attachments"] }, ["/Volumes/*/Attachments", DEFAULT_ATTACHMENT_ROOT], [
      "/Volumes/*/Attachments",
      DEFAULT_ATTACHMENT_ROOT,
    ]],
    ["the default is not repeated", { attachmentRoots: [DEFAULT_ATTACHMENT_ROOT, "/a"] }, [DEFAULT_ATTACHMENT_ROOT, "/a"], [DEFAULT_ATTACHMENT_ROOT, "/a"]],
    ["trailing slashes do not defeat dedupe", { attachmentRoots: ["/a/", "/a", "//a//"] }, ["/a", DEFAULT_ATTACHMENT_ROOT], ["/a", DEFAULT_ATTACHMENT_ROOT]],
    [
      "account + top, remote before local",
      {
        attachmentRoots: ["/top-local"],
        remoteAttachmentRoots: ["/top-remote"],
        accounts: { default: { attachmentRoots: ["/acct-local"], remoteAttachmentRoots: ["/acct-remote"] } },
      },
      ["/acct-local", "/top-local", DEFAULT_ATTACHMENT_ROOT],
      ["/acct-remote", "/top-remote", "/acct-local", "/top-local", DEFAULT_ATTACHMENT_ROOT],
    ],
  ];
  test.each(rows)("%s", (_name, section, local, remote) => {
    const a = resolveAccount(im(section));
    expect(a.attachmentRoots).toEqual(local);
    expect(a.remoteAttachmentRoots).toEqual(remote);
  });
  test("mergeRoots drops invalid roots", () => {
    expect(mergeRoots(["relative", "/ok/*/x", "/bad/a*"])).toEqual(["/ok/*/x", DEFAULT_ATTACHMENT_ROOT]);
  });
});

describe("agents and bindings", () => {
  test("the first agent is the default when none is marked", () => {
    const c = cfg({ agents: { list: [{ id: "a", command: ["a"] }, { id: "b", command: ["b"] }] } });
    expect(c.agents.map((a) => [a.id, a.default])).toEqual([["a", true], ["b", false]]);
  });
  test("the marked agent is the only default", () => {
    const c = cfg({ agents: { list: [{ id: "a", command: ["a"] }, { id: "b", default: true, command: ["b"] }] } });
    expect(c.agents.map((a) => [a.id, a.default])).toEqual([["a", false], ["b", true]]);
  });
  test("agent fields are carried over", () => {
    const c = cfg({ agents: { list: [{ id: "main", command: ["/bin/agent", "--flag"], timeoutSeconds: 30, groupChat: { mentionPatterns: ["@claw"] } }] } });
    expect(c.agents[0]).toEqual({
      id: "main",
      default: true,
      timeoutSeconds: 30,
      command: ["/bin/agent", "--flag"],
      groupChat: { mentionPatterns: ["@claw"] },
    });
  });
  test("only iMessage bindings are kept, peer ids stringified", () => {
    const c = cfg({
      agents: { list: [{ id: "main", command: ["a"] }, { id: "chat", command: ["b"] }] },
      bindings: [
        { agentId: "chat", match: { channel: "imessage", accountId: "default", peer: { kind: "group", id: 42 } } },
        { agentId: "main", match: { channel: "telegram", peer: { kind: "channel", id: "x" } } },
        { agentId: "main", match: { peer: { kind: "direct", id: " +15550001111 " } } },
      ],
    });
    expect(c.bindings).toEqual([
      { agentId: "chat", match: { channel: "imessage", accountId: "default", peer: { kind: "group", id: "42" } } },
      { agentId: "main", match: { peer: { kind: "direct", id: "+15550001111" } } },
    ]);
  });
  test("session, messages, commands and retentionDays are read", () => {
    const c = cfg({
      session: { dmScope: "per-account-channel-peer", mainKey: "home" },
      messages: { groupChat: { mentionPatterns: ["@claw", "\\bclaw\\b"], historyLimit: 10 }, responsePrefix: "🤖" },
      commands: { config: true, useAccessGroups: false },
      channels: { imessage: { retentionDays: 7 } },
    });
    expect([c.session, c.messages, c.commands, c.retentionDays]).toEqual([
      { dmScope: "per-account-channel-peer", mainKey: "home" },
      { groupChat: { mentionPatterns: ["@claw", "\\bclaw\\b"], historyLimit: 10 }, responsePrefix: "🤖" },
      { config: true, useAccessGroups: false },
      7,
    ]);
  });
});

describe("helpers", () => {
  const cliRows: [string, boolean][] = [
    ["imsg", true],
    ["/Applications/Imsg Tools/imsg", true],
    ["~/.openclaw/scripts/imsg-ssh", true],
    ["imsg; rm -rf /", false],
    ["imsg && x", false],
    ["imsg > /tmp/x", false],
    ["'imsg'", false],
    ["imsg`x`", false],
    ["   ", false],
  ];
  test.each(cliRows)("isSafeCliPath(%p) → %p", (value, ok) => {
    expect(isSafeCliPath(value)).toBe(ok);
  });
  const closeRows: [string, string | undefined][] = [
    ["dmPolcy", "dmPolicy"],
    ["ALLOWFROM", "allowFrom"],
    ["gateway", undefined],
  ];
  test.each(closeRows)("closestKey(%p) → %p", (word, expected) => {
    expect(closestKey(word, ["dmPolicy", "allowFrom", "groups"])).toBe(expected as string);
  });
});

describe("debounce, session turns and per-sender DM settings", () => {
  const rows: [string, Record<string, unknown>, Partial<Record<keyof ImessageAccount, unknown>>][] = [
    ["messages.inbound.debounceMs", { messages: { inbound: { debounceMs: 1500 } } }, { debounceMs: 1500 }],
    ["byChannel.imessage wins, 0 disables", { messages: { inbound: { debounceMs: 1500, byChannel: { imessage: 0 } } } }, { debounceMs: 0 }],
    ["an old dmHistoryLimit keeps meaning turns kept (and now also seeds)", { channels: { imessage: { dmHistoryLimit: 7 } } }, {
      dmHistoryLimit: 7,
      dmSessionTurns: 7,
    }],
    ["dmSessionTurns set: the two are independent", { channels: { imessage: { dmHistoryLimit: 7, dmSessionTurns: 3 } } }, {
      dmHistoryLimit: 7,
      dmSessionTurns: 3,
    }],
    ["dms keys are normalized handles", { channels: { imessage: { dms: { "+1 (555) 000-1111": { historyLimit: 5 } } } } }, {
      dms: { "+15550001111": { historyLimit: 5 } },
    }],
    ["ownerTakeoverMinutes", { channels: { imessage: { ownerTakeoverMinutes: 30 } } }, { ownerTakeoverMinutes: 30 }],
  ];
  test.each(rows)("%s", (_n, doc, want) => {
    const a = account(doc);
    for (const [k, v] of Object.entries(want)) expect(a[k as keyof ImessageAccount]).toEqual(v as never);
  });
});

test("an old dmHistoryLimit without dmSessionTurns warns once per place it is set", () => {
  const c = cfg({ channels: { imessage: { dmHistoryLimit: 5, accounts: { a: { dmHistoryLimit: 3, dmSessionTurns: 3 }, b: { dmHistoryLimit: 2 } } } } });
  expect(legacyWarnings(c.imessage).map((w) => w.split(".dmHistoryLimit")[0])).toEqual(["channels.imessage", "channels.imessage.accounts.b"]);
  expect(c.warnings.filter((w) => w.includes("dmHistoryLimit now means"))).toHaveLength(2);
  expect(legacyWarnings(cfg({ channels: { imessage: { dmSessionTurns: 5 } } }).imessage)).toEqual([]);
});

describe("config reference", () => {
  const keys = describeSchemaKeys();
  const documented = [
    "enabled",
    "cliPath",
    "dbPath",
    "remoteHost",
    "sshConfig",
    "includeAttachments",
    "attachmentRoots",
    "remoteAttachmentRoots",
    "mediaLocalRoots",
    "allowSms",
    "dmPolicy",
    "allowFrom",
    "groupPolicy",
    "groupAllowFrom",
    "groups",
    "mediaMaxMb",
    "textChunkLimit",
    "chunkMode",
    "configWrites",
    "service",
    "region",
    "historyLimit",
    "dmHistoryLimit",
    "dmSessionTurns",
    "ownerTakeoverMinutes",
    "probeTimeoutMs",
    "sendReadReceipts",
    "responsePrefix",
    "defaultTo",
    "accounts",
    "defaultAccount",
    "maxAgeMinutes",
    "recoveryMaxAgeMinutes",
    "recoveryMaxRows",
    "retentionDays",
    // OpenClaw 2026.9
    "streaming",
    "reactionNotifications",
    "dms",
    "name",
    "capabilities",
    "markdown",
    "contextVisibility",
    "heartbeatVisibility",
    "healthMonitor",
    "actions",
    "reactFallback",
    "sendTransport",
    "catchup",
    "replyMaxChars",
    "replyMaxParts",
    "replyOnError",
    "loopMaxExchanges",
    "loopFollowMs",
    "loopEchoRows",
  ];
  test("lists exactly the channels.imessage keys", () => {
    expect(keys.map((k) => k.key).sort()).toEqual([...documented].sort());
  });
  test.each(["accounts", "defaultAccount", "retentionDays"])("%s is top-level only", (key) => {
    expect(keys.find((k) => k.key === key)!.perAccount).toBe(false);
  });
  test("every documented key is accepted by the schema", () => {
    const unknownKey = /unknown key/;
    for (const { key } of keys) {
      const err = (() => {
        try {
          im({ [key]: null });
        } catch (e) {
          return (e as Error).message;
        }
        return "";
      })();
      expect(err).not.toMatch(unknownKey);
    }
  });
  test("documented defaults agree with DEFAULTS", () => {
    const d = DEFAULTS.imessage as Record<string, unknown>;
    for (const k of keys) {
      if (k.default !== undefined && typeof d[k.key] !== "object" && d[k.key] !== undefined) {
        expect(k.default).toBe(typeof d[k.key] === "string" ? JSON.stringify(d[k.key]) : String(d[k.key]));
      }
    }
  });
});

describe("realistic configs", () => {
  test("the seed page's remote-Mac setup, with agents, parses and resolves", () => {
    const text = `{
      // Remote Mac over SSH (seed page), plus our agent section
      channels: {
        imessage: {
          enabled: true,
          cliPath: "~/.openclaw/scripts/imsg-ssh",
          remoteHost: "bot@mac-mini.tailnet-1234.ts.net",
          includeAttachments: true,
          dbPath: "/Users/bot/Library/Messages/chat.db",
          attachmentRoots: ["/Users/*/Library/Messages/Attachments"],
          remoteAttachmentRoots: ["/Users/*/Library/Messages/Attachments"],
          dmPolicy: "pairing",
          allowFrom: ["+15550001111", "user@example.com"],
          groupPolicy: "allowlist",
          groupAllowFrom: ["chat_id:42", "+15550001111"],
          groups: { "42": { requireMention: true }, "*": { requireMention: true, systemPrompt: "Keep it short." } },
          mediaMaxMb: 16,
          textChunkLimit: 4000,
          chunkMode: "newline",
          configWrites: false,
          service: "auto",
          region: "US",
          historyLimit: 30,
          dmHistoryLimit: 20,
          probeTimeoutMs: 10000,
          accounts: {
            bot: { cliPath: "/Users/bot/bin/imsg", dbPath: "~/Library/Messages/chat.db", dmPolicy: "allowlist" },
          },
          defaultAccount: "bot",
        },
        telegram: { enabled: false },
      },
      session: { dmScope: "main" },
      messages: { groupChat: { mentionPatterns: ["@openclaw"] }, responsePrefix: "[bot]" },
      commands: { config: true },
      agents: {
        list: [
          { id: "main", default: true, command: ["/usr/local/bin/my-agent", "--flag"], timeoutSeconds: 120,
            groupChat: { mentionPatterns: ["@claw", "\\\\bclaw\\\\b"] } },
          { id: "chat", openai: { baseUrl: "http://127.0.0.1:11434/v1", model: "llama3.2", apiKeyEnv: "OPENAI_API_KEY", systemPrompt: "You are …" } },
        ],
      },
      bindings: [ { agentId: "chat", match: { channel: "imessage", accountId: "bot", peer: { kind: "group", id: "42" } } } ],
      gateway: { mode: "local" },
    }`;
    const c = parseConfig(text, FILE);
    expect(c.accountIds).toEqual(["bot"]);
    expect(c.agents.map((a) => a.id)).toEqual(["main", "chat"]);
    expect(c.agents[0]!.groupChat!.mentionPatterns).toEqual(["@claw", "\\bclaw\\b"]);
    const bot = resolveAccount(c);
    expect(bot).toMatchObject({
      accountId: "bot",
      cliPath: "/Users/bot/bin/imsg",
      dbPath: join(homedir(), "Library/Messages/chat.db"),
      remoteHost: "bot@mac-mini.tailnet-1234.ts.net",
      dmPolicy: "allowlist",
      allowFrom: ["+15550001111", "user@example.com"],
      groupAllowFrom: ["chat_id:42", "+15550001111"],
      chunkMode: "newline",
      configWrites: false,
      historyLimit: 30,
      responsePrefix: "[bot]",
      attachmentRoots: [DEFAULT_ATTACHMENT_ROOT],
      remoteAttachmentRoots: [DEFAULT_ATTACHMENT_ROOT],
      sectionMissing: false,
    });
  });

  test("buildConfig validates an already parsed document", () => {
    const err = problemOf(() => buildConfig({ channels: { imessage: { dmPolicy: "open" } } }, FILE));
    expect(err.message).toContain('  - channels.imessage.allowFrom: dmPolicy "open" requires allowFrom to include "*"');
  });
});

describe("OpenClaw 2026.9 configs", () => {
  const FIXTURE = join(import.meta.dir, "fixtures/openclaw-2026.9.json5");

  test("the full fixture loads, honours what has a meaning here and lists one warning per unsupported key", () => {
    const c = loadConfig(FIXTURE);
    const main = resolveAccount(c, "home");
    const work = resolveAccount(c, "work");
    expect(c.defaultAccount).toBe("work");
    expect(main.chunkMode).toBe("newline"); // streaming.chunkMode
    expect(work.chunkMode).toBe("length"); // the account's own streaming
    expect(main.reactionNotifications).toBe("all");
    expect(work.reactionNotifications).toBe("off");
    expect(main.sendReadReceipts).toBe(true); // honoured (presence), not warned about
    expect(work.sendReadReceipts).toBe(false);
    expect(main.groups["42"]!.systemPrompt).toBe("You help the family plan dinners.");
    const keys = (w: string) => w.split(": accepted")[0]!;
    expect(c.warnings.map(keys)).toEqual([
      "channels.imessage.name, channels.imessage.accounts.work.name",
      "channels.imessage.capabilities",
      "channels.imessage.markdown",
      "channels.imessage.contextVisibility",
      "channels.imessage.heartbeatVisibility",
      "channels.imessage.healthMonitor",
      "channels.imessage.actions (edit, unsend, sendAttachment)",
      "channels.imessage.sendTransport",
      "channels.imessage.catchup",
      "channels.imessage.streaming.block",
      "channels.imessage.groups.42.tools",
      "channels.imessage.groups.42.toolsBySender",
      // OpenClaw's dmHistoryLimit seeds here too; the note says it still sets the turns kept until dmSessionTurns is set.
      `channels.imessage.dmHistoryLimit now means OpenClaw's "seed a new DM session with this many messages"; it also still sets the session turns kept until you set channels.imessage.dmSessionTurns`,
    ]);
    for (const w of c.warnings.filter((x) => !x.includes("dmHistoryLimit now means"))) expect(w).toMatch(/: accepted but not supported \(ignored\): \S/);
  });

  test("a config without OpenClaw-only keys has no warnings", () => {
    expect(im({ dmPolicy: "pairing" }).warnings).toEqual([]);
  });

  const chunkRows: [string, Record<string, unknown>, "length" | "newline"][] = [
    ["streaming.chunkMode", { streaming: { chunkMode: "newline" } }, "newline"],
    ["older top-level chunkMode", { chunkMode: "newline" }, "newline"],
    ["streaming wins over the older spelling", { chunkMode: "length", streaming: { chunkMode: "newline" } }, "newline"],
    [
      "an account's own chunkMode wins over the top level's streaming",
      { streaming: { chunkMode: "newline" }, accounts: { a: { chunkMode: "length" } } },
      "length",
    ],
    ["streaming without chunkMode keeps the default", { streaming: { block: { enabled: true } } }, "length"],
  ];
  test.each(chunkRows)("chunkMode from %s", (_n, section, expected) => {
    const c = im(section);
    expect(resolveAccount(c, c.accountIds[0]).chunkMode).toBe(expected);
  });

  test("a file with three typos reports all three at once, each with its did-you-mean", () => {
    const err = problemOf(() => im({ dmPolcy: "open", reactionNotification: "own", textChunkLimt: 10, accounts: { a: { cliPth: "imsg", streming: {} } } }));
    const lines = err.message.split("\n");
    expect(lines).toContain('  - channels.imessage.dmPolcy: unknown key (did you mean "dmPolicy"?)');
    expect(lines).toContain('  - channels.imessage.reactionNotification: unknown key (did you mean "reactionNotifications"?)');
    expect(lines).toContain('  - channels.imessage.textChunkLimt: unknown key (did you mean "textChunkLimit"?)');
    expect(lines).toContain('  - channels.imessage.accounts.a.cliPth: unknown key (did you mean "cliPath"?)');
    expect(lines).toContain('  - channels.imessage.accounts.a.streming: unknown key (did you mean "streaming"?)');
  });

  test("values of accepted OpenClaw keys are still validated", () => {
    const err = problemOf(() => im({ reactionNotifications: "some", markdown: { tables: "html" }, dms: { "+15550001111": { historyLimt: 1 } } }));
    expect(err.message).toContain('channels.imessage.reactionNotifications: expected one of "off", "own", "all"');
    expect(err.message).toContain("channels.imessage.markdown.tables:");
    expect(err.message).toContain('channels.imessage.dms.+15550001111.historyLimt: unknown key (did you mean "historyLimit"?)');
  });
});

describe("agent actions config", () => {
  const load = (imessage: Record<string, unknown>) => buildConfig({ channels: { imessage } }, "test");
  test("actions.reactions and actions.reply are honoured, with no warning", () => {
    const c = load({ actions: { reactions: false, reply: true }, reactFallback: true });
    expect(c.warnings).toEqual([]);
    const a = resolveAccount(c);
    expect(a.actions).toEqual({ reactions: false, reply: true });
    expect(a.reactFallback).toBe(true);
  });
  test("an unsupported action switched on is named in one warning; switched off it is not", () => {
    expect(load({ actions: { edit: true, polls: false, reply: false } }).warnings).toEqual([
      "channels.imessage.actions (edit): accepted but not supported (ignored): only actions.reactions and actions.reply are acted on; edits, unsends, effects, group admin, polls and attachment actions are not",
    ]);
    expect(load({ actions: { polls: false } }).warnings).toEqual([]);
  });
  test("an account's actions replace the top level's (shallow, as OpenClaw)", () => {
    const c = load({ actions: { reactions: false }, accounts: { work: { actions: { reply: false } } } });
    expect(resolveAccount(c, "work").actions).toEqual({ reactions: true, reply: false });
  });
});
