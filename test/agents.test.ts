// agents.ts: routing, session keys, reply parsing, the body a model sees (pure), and the command backend.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { AgentError, type AgentTurn, parseReply, routeAgent, runCommandAgent, sessionKey } from "../src/agents.ts";
import type { Peer } from "../src/policy.ts";
import { buildBody } from "../src/turn.ts";
import type { AgentConfig, Binding } from "../src/config.ts";
import { waitFor } from "./helpers/sim.ts";

const agent = (id: string, def = false): AgentConfig => ({ id, default: def, timeoutSeconds: 120, command: ["/bin/true"] });
const agents = [agent("main", true), agent("ops"), agent("family")];
const dm: Peer = { kind: "direct", id: "+15550001111" };
const group: Peer = { kind: "group", id: "42" };

describe("routeAgent", () => {
  const rows: [string, Binding[], string, Peer, string | undefined][] = [
    ["no bindings → the default agent", [], "default", dm, "main"],
    ["a peer binding wins for that group", [{ agentId: "ops", match: { channel: "imessage", peer: { kind: "group", id: "42" } } }], "default", group, "ops"],
    ["chat_id: prefix in a binding's peer id is accepted", [{ agentId: "ops", match: { peer: { kind: "group", id: "chat_id:42" } } }], "default", group, "ops"],
    ["a peer binding does not catch other peers", [{ agentId: "ops", match: { peer: { kind: "group", id: "43" } } }], "default", group, "main"],
    ["peer kind must match", [{ agentId: "ops", match: { peer: { kind: "direct", id: "42" } } }], "default", group, "main"],
    ["an account binding routes the whole account", [{ agentId: "family", match: { accountId: "home" } }], "home", dm, "family"],
    ["… but not other accounts", [{ agentId: "family", match: { accountId: "home" } }], "work", dm, "main"],
    [
      "the most specific binding wins (peer over account)",
      [{ agentId: "family", match: { accountId: "home" } }, { agentId: "ops", match: { accountId: "home", peer: { kind: "direct", id: "+15550001111" } } }],
      "home",
      dm,
      "ops",
    ],
    ["a binding for another channel is ignored", [{ agentId: "ops", match: { channel: "telegram" } }], "default", dm, "main"],
  ];
  test.each(rows)("%s", (_n, bindings, account, peer, want) => expect(routeAgent({ agents, bindings }, account, peer)?.id).toBe(want));
  test("no agents → undefined", () => expect(routeAgent({ agents: [], bindings: [] }, "default", dm)).toBeUndefined());
});

describe("sessionKey (docs/SPEC.md §8.1)", () => {
  const rows: [string, Peer, "main" | "per-peer" | "per-channel-peer" | "per-account-channel-peer", string][] = [
    ["groups are isolated per chat", group, "main", "agent:main:imessage:group:42"],
    ["DMs collapse into the main session by default", dm, "main", "agent:main:main"],
    ["per-peer", dm, "per-peer", "agent:main:dm:+15550001111"],
    ["per-channel-peer", dm, "per-channel-peer", "agent:main:imessage:dm:+15550001111"],
    ["per-account-channel-peer", dm, "per-account-channel-peer", "agent:main:imessage:work:dm:+15550001111"],
    ["dmScope does not affect groups", group, "per-peer", "agent:main:imessage:group:42"],
  ];
  test.each(rows)("%s", (_n, peer, dmScope, want) => expect(sessionKey("main", "work", peer, { dmScope, mainKey: "main" })).toBe(want));
  test("session.mainKey names the main session", () => expect(sessionKey("main", "default", dm, { dmScope: "main", mainKey: "home" })).toBe("agent:main:home"));
});

describe("parseReply", () => {
  const rows: [string, string, ReturnType<typeof parseReply>][] = [
    ["plain text", "hello\n", { text: "hello", media: [] }],
    ["empty output means no reply", "  \n", { text: "", media: [] }],
    ["MEDIA lines become attachments, the rest stays text", "here\nMEDIA:/tmp/a.png\nMEDIA:/tmp/b.pdf\n", {
      text: "here",
      media: ["/tmp/a.png", "/tmp/b.pdf"],
    }],
    ["a relative MEDIA path is not media (stays text)", "MEDIA:a.png", { text: "MEDIA:a.png", media: [] }],
    ["CRLF output", "one\r\nMEDIA:/x.png\r\n", { text: "one", media: ["/x.png"] }],
    ["directives come out of the text, as written", "ok\r\nREACT: like\nREPLY-TO: this\nMEDIA:/x.png", {
      text: "ok",
      media: ["/x.png"],
      directives: { react: "like", replyTo: "this" },
    }],
    ["a second REACT is dropped and named", "REACT: like\nREACT: love", {
      text: "",
      media: [],
      directives: { react: "like" },
      extraDirectives: ["REACT: another one (only the first counts)"],
    }],
  ];
  test.each(rows)("%s", (_n, out, want) => expect(parseReply(out)).toEqual(want));
  test("media: false (a model's output) keeps MEDIA lines as text but still takes the directives", () => {
    expect(parseReply("MEDIA:/etc/passwd\nREACT: 👍", { media: false })).toEqual({ text: "MEDIA:/etc/passwd", media: [], directives: { react: "👍" } });
  });
});

describe("buildBody", () => {
  const base = { isGroup: false, sender: "+15550001111", text: "hi", chatName: "", chatId: 7, pending: [], notes: [] };
  test("a DM is the text, each line quoted", () => expect(buildBody({ ...base, text: "hi\n\nthere" })).toBe("> hi\n>\n> there"));
  test("a group message carries its sender, and unaddressed messages before it as context", () => {
    const body = buildBody({ ...base, isGroup: true, pending: [{ sender: "+15550002222", text: "lunch?" }] });
    expect(body).toBe(
      ["[Chat messages since your last reply - for context]", "+15550002222:", "> lunch?", "", "[Current message - respond to this]", "+15550001111:", "> hi"]
        .join("\n"),
    );
  });
  test("reply context and notes", () => {
    const body = buildBody({ ...base, notes: ["[attachment unavailable]"], replyToText: "earlier", replyToSender: "+15550002222" });
    expect(body).toBe(["> hi", "[attachment unavailable]", "", "[Replying to +15550002222]", "> earlier", "[/Replying]"].join("\n"));
  });
});

describe("runCommandAgent (real child processes)", () => {
  const turn = {
    event: "message",
    sessionKey: "agent:main:imessage:direct:+15550001111",
    agentId: "main",
    accountId: "default",
    chatType: "direct",
    sender: "+15550001111",
    participants: [{ handle: "+15550001111" }],
    createdAt: "2026-01-01T00:00:00.000Z",
    chatId: 1,
    chatGuid: "iMessage;-;+15550001111",
    chatName: "",
    messageId: 1,
    messageGuid: "G1",
    text: "hi",
    body: "hi",
    attachments: [],
    wasMentioned: false,
    commandAuthorized: false,
    history: [],
    actions: { react: false, emoji: false, replyTo: false },
  } satisfies AgentTurn;

  test("a timed-out agent leaves no process behind, even one that ignores SIGTERM", async () => {
    const marker = `${47 + Math.floor(Math.random() * 1000) / 1000 + 0.0001}`;
    const slow: AgentConfig = { ...agent("slow"), timeoutSeconds: 1, command: ["sh", "-c", `trap '' TERM; sleep ${marker} & sleep ${marker}`] };
    const err = await runCommandAgent(slow, turn).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).message).toContain("timed out");
    await waitFor(() => livePids(`sleep\u0000${marker}`).length === 0, 10_000, "no orphaned agent process");
  });

  test("a failing agent's stderr stays out of the error (it is logged at debug only)", async () => {
    const bad: AgentConfig = { ...agent("bad"), command: ["sh", "-c", "echo 'secret text from +15550001111' >&2; exit 2"] };
    const err = (await runCommandAgent(bad, turn).catch((e: unknown) => e)) as AgentError;
    expect(err.message).toBe('agent "bad" exited with code 2');
  });

  test("long non-ASCII output arrives intact", async () => {
    const script = `const b = Buffer.from("é€😀".repeat(40000)); for (let i = 0; i < b.length; i += 4093) process.stdout.write(b.subarray(i, i + 4093));`;
    const a: AgentConfig = { ...agent("utf8"), command: [process.execPath, "-e", script] };
    const r = await runCommandAgent(a, turn);
    expect(r.text).toBe("é€😀".repeat(40000));
  });
});

/** Pids of live (non-zombie) processes whose command line contains `marker` (Linux /proc). */
function livePids(marker: string): string[] {
  return readdirSync("/proc").filter((d) => {
    if (!/^\d+$/.test(d)) return false;
    try {
      return readFileSync(`/proc/${d}/cmdline`, "utf8").includes(marker) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${d}/stat`, "utf8"));
    } catch {
      return false;
    }
  });
}
