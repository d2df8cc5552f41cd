// `openclaw-imsg send` end to end: the real CLI as a child process → imsg simulator → chat.db rows we inspect.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { type Sim, waitFor } from "../helpers/sim.ts";
import { baseConfig, e2eResources, runCli, type Workspace } from "../helpers/gateway.ts";

const e2e = e2eResources();
let sim: Sim | undefined;
let ws: Workspace | undefined;

function setup(imessage: Record<string, unknown> = {}, simEnv: Record<string, string> = {}): { sim: Sim; ws: Workspace } {
  sim = e2e.sim({ env: simEnv });
  ws = e2e.workspace();
  ws.writeConfig(baseConfig(sim.cliPath, imessage));
  return { sim, ws };
}

/** Runs `send …` against the workspace's config and state dir. */
function send(args: string[], opts: { input?: string; runtime?: "bun" | "deno" } = {}) {
  return runCli(["send", ...args, "--config", ws!.configPath, "--state-dir", ws!.stateDir], opts);
}

const GROUP = "chat123456789";
const HEX = "0123456789abcdef0123456789abcdef";

describe("send: addressing formats", () => {
  // Each row: what the user types, and where the simulator (Messages) put the row.
  const rows: { name: string; to: (chats: { dm: number; group: number }) => string; args?: string[]; chatGuid: string; target?: string }[] = [
    { name: "chat_id:N sends into that chat", to: (c) => `chat_id:${c.group}`, chatGuid: `iMessage;+;${GROUP}` },
    { name: "chat_id: of a DM reaches the DM", to: (c) => `chat_id:${c.dm}`, chatGuid: "iMessage;-;+15550001111" },
    { name: "chat_guid: addresses a group by guid", to: () => `chat_guid:iMessage;+;${GROUP}`, chatGuid: `iMessage;+;${GROUP}` },
    { name: "chat_identifier: addresses a group by identifier", to: () => `chat_identifier:${GROUP}`, chatGuid: `iMessage;+;${GROUP}` },
    { name: "a bare 32-hex id is a chat identifier, not a phone number", to: () => HEX.toUpperCase(), chatGuid: `iMessage;+;${HEX}` },
    { name: "imessage: handle goes over iMessage", to: () => "imessage:+15550001111", chatGuid: "iMessage;-;+15550001111", target: "imessage:+15550001111" },
    { name: "sms: handle goes over SMS", to: () => "sms:+15550002222", chatGuid: "SMS;-;+15550002222", target: "sms:+15550002222" },
    {
      name: "--service sms sends a bare phone over SMS",
      to: () => "+15550002222",
      args: ["--service", "sms"],
      chatGuid: "SMS;-;+15550002222",
      target: "sms:+15550002222",
    },
    { name: "bare E.164 phone", to: () => "+15550001111", chatGuid: "iMessage;-;+15550001111", target: "auto:+15550001111" },
    { name: "formatted phone with parentheses", to: () => "+1 (555) 000-1111", chatGuid: "iMessage;-;+15550001111", target: "auto:+15550001111" },
    { name: "phone with dots", to: () => "+1.555.000.1111", chatGuid: "iMessage;-;+15550001111", target: "auto:+15550001111" },
    { name: "phone with dashes and no plus", to: () => "1-555-000-1111", chatGuid: "iMessage;-;+15550001111", target: "auto:+15550001111" },
    { name: "phone digits only", to: () => "15550001111", chatGuid: "iMessage;-;+15550001111", target: "auto:+15550001111" },
    { name: "email is lowercased", to: () => "User@Example.COM", chatGuid: "iMessage;-;user@example.com", target: "auto:user@example.com" },
    {
      name: "imessage: email is lowercased too",
      to: () => "imessage:Someone@Example.com",
      chatGuid: "iMessage;-;someone@example.com",
      target: "imessage:someone@example.com",
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const { sim } = setup();
      // Existing chats, as a user would find them with `openclaw-imsg chats`.
      const dm = sim.db.inject({ from: "+15550001111", text: "earlier" }).chatId;
      const group = sim.db.inject({ from: "+15550003333", text: "group earlier", group: { identifier: GROUP, participants: ["+15550001111"] } }).chatId;
      sim.db.inject({ from: "+15550003333", text: "hex group", group: { identifier: HEX } });
      const r = send(["--to", row.to({ dm, group }), "--text", `hello via ${row.name}`, "--json", ...(row.args ?? [])]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const sent = sim.db.sent();
      expect(sent).toHaveLength(1);
      expect(sent[0]!.text).toBe(`hello via ${row.name}`);
      expect(sent[0]!.chatGuid).toBe(row.chatGuid);
      const out = JSON.parse(r.stdout);
      if (row.target) expect(out.target).toBe(row.target);
      expect(out.sent.map((s: { id: number }) => s.id)).toEqual([sent[0]!.rowid]);
    });
  }
});

describe("send: text", () => {
  test("long text is chunked by textChunkLimit and the parts arrive in order", () => {
    const { sim } = setup({ textChunkLimit: 20 });
    const text = "one two three four five six seven eight nine ten eleven twelve";
    const r = send(["--to", "+15550001111", "--text", text]);
    expect(r.code).toBe(0);
    const parts = sim.db.sent().map((s) => s.text);
    expect(parts).toEqual(["one two three four", "five six seven eight", "nine ten eleven", "twelve"]);
    expect(parts.every((p) => p.length <= 20)).toBe(true);
    expect(r.stdout.trim().split("\n")).toHaveLength(4);
  });

  test("chunkMode newline splits at paragraphs", () => {
    const { sim } = setup({ chunkMode: "newline" });
    const r = send(["--to", "+15550001111", "--text", "First paragraph.\n\nSecond paragraph,\nstill second.\n\nThird."]);
    expect(r.code).toBe(0);
    expect(sim.db.sent().map((s) => s.text)).toEqual(["First paragraph.", "Second paragraph,\nstill second.", "Third."]);
  });

  test("text is sent as written: no markdown stripping, no responsePrefix", () => {
    const { sim } = setup({ responsePrefix: "[bot]" });
    const r = send(["--to", "+15550001111", "--text", "**Reminder**: call <think>mom</think> at 5\n"]);
    expect(r.code).toBe(0);
    expect(sim.db.sent().map((s) => s.text)).toEqual(["**Reminder**: call <think>mom</think> at 5"]);
  });

  test("--text-file - reads the text from stdin", () => {
    const { sim } = setup();
    const r = send(["--to", "+15550001111", "--text-file", "-"], { input: "from a pipe\nsecond line\n" });
    expect(r.code).toBe(0);
    expect(sim.db.sent().map((s) => s.text)).toEqual(["from a pipe\nsecond line"]);
  });

  test("--text-file - works the same under Deno", () => {
    const { sim } = setup();
    const r = send(["--to", "+15550001111", "--text-file", "-", "--json"], { input: "deno pipe\n", runtime: "deno" });
    expect(r.code).toBe(0);
    expect(sim.db.sent().map((s) => s.text)).toEqual(["deno pipe"]);
    expect(JSON.parse(r.stdout).sent[0].id).toBe(sim.db.sent()[0]!.rowid);
  });

  test("--text-file <path> reads a file", () => {
    const { sim, ws } = setup();
    const path = join(ws.dir, "msg.txt");
    writeFileSync(path, "from a file\n");
    const r = send(["--to", "+15550001111", "--text-file", path]);
    expect(r.code).toBe(0);
    expect(sim.db.sent().map((s) => s.text)).toEqual(["from a file"]);
  });

  test("defaultTo is used when --to is omitted", () => {
    const { sim } = setup({ defaultTo: "chat_identifier:" + GROUP });
    sim.db.inject({ from: "+15550003333", text: "group earlier", group: { identifier: GROUP } });
    const r = send(["--text", "to the default"]);
    expect(r.code).toBe(0);
    expect(sim.db.sent().map((s) => [s.text, s.chatGuid])).toEqual([["to the default", `iMessage;+;${GROUP}`]]);
  });

  test("--account picks that account's imsg", () => {
    sim = e2e.sim();
    const sim2 = e2e.sim();
    ws = e2e.workspace();
    ws.writeConfig(baseConfig(sim.cliPath, { accounts: { default: {}, work: { cliPath: sim2.cliPath } } }));
    const r = send(["--to", "+15550001111", "--text", "from work", "--account", "work", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).accountId).toBe("work");
    expect(sim2.db.sent().map((s) => s.text)).toEqual(["from work"]);
    expect(sim.db.sent()).toEqual([]);
  });

  test("--json lists every part with the id and guid imsg returned", () => {
    const { sim } = setup({ textChunkLimit: 10 });
    const r = send(["--to", "+15550001111", "--text", "alpha beta gamma", "--json"]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    const rows = sim.db.sent();
    expect(out).toEqual({
      ok: true,
      accountId: "default",
      to: "+15550001111",
      target: "auto:+15550001111",
      sent: rows.map((s) => ({ id: s.rowid, guid: s.guid, text: s.text, file: null })),
    });
    expect(rows.map((s) => s.text)).toEqual(["alpha beta", "gamma"]);
  });
});

describe("send: files", () => {
  test("a file is sent as an attachment", () => {
    const { sim, ws } = setup();
    const path = join(ws.dir, "photo.jpg");
    writeFileSync(path, Buffer.alloc(2048, 1));
    const r = send(["--to", "+15550001111", "--file", path, "--json"]);
    expect(r.code).toBe(0);
    const sent = sim.db.sent();
    expect(sent.map((s) => s.file)).toEqual([path]);
    // imsg returns no id for file sends; the JSON says so rather than inventing one.
    expect(JSON.parse(r.stdout).sent).toEqual([{ id: null, guid: null, text: "", file: path }]);
  });

  test("text and files: text first, then each file in order; relative paths are resolved", () => {
    const { sim, ws } = setup();
    const a = join(ws.dir, "a.png");
    const b = join(ws.dir, "b.pdf");
    writeFileSync(a, "png");
    writeFileSync(b, "pdf");
    const r = send(["--to", "chat_identifier:+15550001111", "--text", "two files", "--file", a, `--file=${relative(process.cwd(), b)}`]);
    expect(r.code).toBe(0);
    expect(sim.db.sent().map((s) => [s.text, s.file ?? null])).toEqual([
      ["two files", null],
      ["\ufffc", a],
      ["\ufffc", b],
    ]);
  });

  const refused: { name: string; file: (dir: string) => string; reason: string }[] = [
    { name: "a missing file", file: (d) => join(d, "nope.jpg"), reason: "file not found" },
    {
      name: "a file over mediaMaxMb",
      file: (d) => {
        const p = join(d, "big.bin");
        writeFileSync(p, Buffer.alloc(1024 * 1024 + 1));
        return p;
      },
      reason: "larger than mediaMaxMb (1 MB)",
    },
    { name: "a directory", file: (d) => d, reason: "not a regular file" },
  ];
  for (const row of refused) {
    test(`${row.name} is refused (exit 2) and nothing at all is sent`, () => {
      const { sim, ws } = setup({ mediaMaxMb: 1 });
      const ok = join(ws.dir, "ok.txt");
      writeFileSync(ok, "fine");
      const bad = row.file(ws.dir);
      const r = send(["--to", "+15550001111", "--text", "with files", "--file", ok, "--file", bad]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${bad} (${row.reason})`);
      expect(r.stdout).toBe("");
      expect(sim.db.sent()).toEqual([]);
    });
  }
});

describe("send: errors", () => {
  test("an unknown chat_id is an imsg error: exit 1 with imsg's message, nothing sent", () => {
    const { sim } = setup();
    const r = send(["--to", "chat_id:999", "--text", "hello"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unknown chat_id 999");
    expect(sim.db.sent()).toEqual([]);
  });

  test("--json still prints the outcome of a failed send", () => {
    setup();
    const r = send(["--to", "chat_id:999", "--text", "hello", "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, sent: [], error: expect.stringContaining("unknown chat_id 999") });
  });

  test("a hex chat_id is a usage error pointing to chat_identifier:", () => {
    const { sim } = setup();
    const r = send(["--to", `chat_id:${HEX}`, "--text", "hello"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`chat_identifier:${HEX}`);
    expect(sim.db.sent()).toEqual([]);
  });

  const usage: { name: string; args: string[]; input?: string; stderr: string }[] = [
    { name: "blank --text", args: ["--to", "+15550001111", "--text", "   "], stderr: "empty message" },
    { name: "neither text nor file", args: ["--to", "+15550001111"], stderr: "empty message" },
    { name: "empty stdin", args: ["--to", "+15550001111", "--text-file", "-"], input: "\n\n", stderr: "empty message" },
    { name: "--text and --text-file together", args: ["--to", "+15550001111", "--text", "a", "--text-file", "-"], input: "b", stderr: "not both" },
    { name: "unreadable --text-file", args: ["--to", "+15550001111", "--text-file", "/nonexistent/msg.txt"], stderr: "cannot read --text-file" },
    { name: "no --to and no defaultTo", args: ["--text", "hello"], stderr: "missing --to" },
    { name: "an unknown --service", args: ["--to", "+15550001111", "--text", "x", "--service", "fax"], stderr: "--service must be" },
    { name: "an unknown --account", args: ["--to", "+15550001111", "--text", "x", "--account", "nope"], stderr: 'unknown account "nope"' },
    { name: "an empty target", args: ["--to", "imessage:", "--text", "x"], stderr: "target is required" },
  ];
  for (const row of usage) {
    test(`${row.name} is refused with exit 2 and nothing is sent`, () => {
      const { sim } = setup();
      const r = send(row.args, { input: row.input });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(row.stderr);
      expect(sim.db.sent()).toEqual([]);
    });
  }
});

describe("send: while a gateway runs on the same state dir", () => {
  // An open DM policy: an echo that slipped past the echo defence would reach the agent and be answered.
  // The simulator writes imsg's spurious is_from_me=0 copy (sender = our own handle) after every text send.
  const targets: { name: string; to: (dmChat: number) => string }[] = [
    { name: "chat_id:", to: (c) => `chat_id:${c}` },
    { name: "a phone handle", to: () => "+1 (555) 000-1111" },
    { name: "chat_guid:", to: () => "chat_guid:iMessage;-;+15550001111" },
  ];
  for (const row of targets) {
    test(`the echo of a send to ${row.name} is not answered`, async () => {
      const { sim, ws } = setup({ dmPolicy: "open", allowFrom: ["*"] }, { IMSG_SIM_POLL_MS: "50", IMSG_SIM_ECHO_DUP: "1" });
      const agentLog = join(ws.dir, "agent.jsonl");
      const gw = e2e.gateway(ws, { env: { AGENT_LOG: agentLog } });
      await gw.subscribed();
      const dmChat = sim.db.inject({ from: "+15550001111", text: "hi" }).chatId;
      await waitFor(() => sim.db.sent().some((s) => s.text === "echo: hi"), 10_000, "the gateway's reply to hi");

      const r = send(["--to", row.to(dmChat), "--text", "scheduled reminder"]);
      expect(r.code).toBe(0);
      // The marker comes after the echo rows; DMs share one session, so turns run in row order: once the marker is
      // answered, any turn for the echo would already have run.
      sim.db.inject({ from: "+15550002222", text: "marker" });
      await waitFor(() => sim.db.sent().some((s) => s.text === "echo: marker"), 10_000, "the gateway's reply to the marker");

      const turns = readFileSync(agentLog, "utf8").trim().split("\n").map((l) => JSON.parse(l).text);
      expect(turns).toEqual(["hi", "marker"]);
      expect(sim.db.sent().map((s) => s.text)).toEqual(["echo: hi", "scheduled reminder", "echo: marker"]);
      expect(gw.logs.items.some((l) => l.msg.includes("echo (text we just sent)") && l.msg.includes(`chat ${dmChat}`))).toBe(true);
      expect(await gw.stop()).toBe(0);
    });
  }

  // First contact: the chat does not exist before the send, so the CLI cannot record its id. The gateway matches
  // the echo by the DM's chat identifier (the recipient).
  test("the echo of a first-contact send to a new handle is not answered", async () => {
    const { sim, ws } = setup({ dmPolicy: "open", allowFrom: ["*"] }, { IMSG_SIM_POLL_MS: "50", IMSG_SIM_ECHO_DUP: "1" });
    const agentLog = join(ws.dir, "agent.jsonl");
    const gw = e2e.gateway(ws, { env: { AGENT_LOG: agentLog } });
    await gw.subscribed();
    expect(send(["--to", "+15550001111", "--text", "first contact"]).code).toBe(0);
    sim.db.inject({ from: "+15550002222", text: "marker" });
    await waitFor(() => sim.db.sent().some((s) => s.text === "echo: marker"), 10_000, "the gateway's reply to the marker");
    expect(existsSync(agentLog) ? readFileSync(agentLog, "utf8").trim().split("\n").map((l) => JSON.parse(l).text) : []).toEqual(["marker"]);
    expect(sim.db.sent().map((s) => s.text)).toEqual(["first contact", "echo: marker"]);
  });
});
