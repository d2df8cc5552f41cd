import { describe, expect, test } from "bun:test";
import { TRUNCATION_MARKER } from "../src/chunk.ts";
import { classifySendError, matchSent, planParts } from "../src/deliver.ts";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { outboundRefusal, sensitivePath } from "../src/files.ts";
import type { ImsgMessage } from "../src/imsg.ts";
import { ImsgPermissionError, ImsgSpawnError, RpcClosedError, RpcError, RpcTimeoutError } from "../src/rpc.ts";

describe("sensitivePath: agent MEDIA paths that must never be sent", () => {
  const home = "/Users/bot";
  const state = "/Users/bot/.openclaw";
  const rows: [string, string | undefined][] = [
    ["/Users/bot/.openclaw/state.db", "inside the gateway's state dir"],
    ["/Users/bot/.ssh/id_ed25519", "inside a hidden directory of the home folder"],
    ["/Users/bot/.aws/credentials", "inside a hidden directory of the home folder"],
    ["/Users/bot/Library/Messages/chat.db", "the Messages database folder"],
    ["/Users/bot/Library/Keychains/login.keychain-db", "inside /Users/bot/Library/Keychains"],
    ["/etc/passwd", "inside /etc"],
    ["/private/etc/master.passwd", "inside /private/etc"],
    ["/Users/bot/Library/Messages/Attachments/ab/IMG_1.jpg", undefined],
    ["/Users/bot/Pictures/cat.png", undefined],
    ["/tmp/agent-out/chart.png", undefined],
    ["/etcetera/file.png", undefined],
    ["/Users/bot/.config/openclaw.json5", "inside a hidden directory of the home folder"],
    ["/Users/bot/agent/openclaw.json5", "the gateway's config file"],
    ["/users/BOT/.SSH/id_ed25519 (case-insensitive file system)", "inside a hidden directory of the home folder"],
    ["/USERS/bot/.openclaw/STATE.DB", "inside the gateway's state dir"],
    ["/Users/bot/library/messages/chat.db", "the Messages database folder"],
    ["/private/var/db/sudo/ts", "inside /private/var/db"],
  ];
  test.each(rows)(
    "%s",
    (path, want) => expect(sensitivePath(path.replace(/ \(.*\)$/, ""), { stateDir: state, home, configPath: "/Users/bot/agent/openclaw.json5" })).toBe(want),
  );
});

describe("outboundRefusal: symlinks resolved on both sides, mediaLocalRoots as an allowlist", () => {
  const dir = mkdtempSync(join(tmpdir(), "outbound-"));
  const realHome = join(dir, "real-home");
  const home = join(dir, "home"); // HOME reached through a symlink, as /tmp is on macOS
  mkdirSync(join(realHome, ".ssh"), { recursive: true });
  mkdirSync(join(realHome, "state"), { recursive: true });
  mkdirSync(join(realHome, "out"), { recursive: true });
  mkdirSync(join(realHome, "Pictures"), { recursive: true });
  symlinkSync(realHome, home);
  for (const f of [".ssh/id_ed25519", "state/state.db", "config.json5", "out/chart.png", "Pictures/cat.png"]) writeFileSync(join(realHome, f), "x");
  symlinkSync(join(realHome, ".ssh/id_ed25519"), join(realHome, "out/innocent.png"));
  const policy = { stateDir: join(home, "state"), configPath: join(home, "config.json5"), home };
  const rows: [name: string, path: string, roots: string[] | undefined, want: string | undefined][] = [
    ["a key through the real path of a symlinked HOME", join(realHome, ".ssh/id_ed25519"), undefined, "inside a hidden directory of the home folder"],
    ["the state db through the real path", join(realHome, "state/state.db"), undefined, "inside the gateway's state dir"],
    ["the config file through the real path", join(realHome, "config.json5"), undefined, "the gateway's config file"],
    ["the config file through the symlinked HOME", join(home, "config.json5"), undefined, "the gateway's config file"],
    ["a symlink in an allowed folder pointing at a key", join(home, "out/innocent.png"), [join(home, "out")], "inside a hidden directory of the home folder"],
    ["an ordinary file without an allowlist", join(home, "Pictures/cat.png"), undefined, undefined],
    ["a file under mediaLocalRoots given through the symlink", join(realHome, "out/chart.png"), [join(home, "out")], undefined],
    ["a file outside mediaLocalRoots", join(home, "Pictures/cat.png"), [join(home, "out")], "outside mediaLocalRoots"],
    ["a wildcard root", join(home, "out/chart.png"), [join(dir, "*", "out")], undefined],
    ["a missing file", join(home, "nope.png"), undefined, "file not found"],
  ];
  test.each(rows)("%s", (_n, path, roots, want) => expect(outboundRefusal(path, { ...policy, ...(roots ? { roots } : {}) })).toBe(want));
  test("cleanup", () => rmSync(dir, { recursive: true, force: true }));
});

describe("classifySendError: what a failed send means for its part", () => {
  const typed = (code: number, data: unknown) => new RpcError("send", code, "x", data);
  const rows: [string, unknown, ReturnType<typeof classifySendError>][] = [
    ["imsg answered with an error: refused, certainly not sent", new RpcError("send", -32602, "Invalid params", "unknown chat_id 9"), "refused"],
    ["0.9's plain -32603: refused", new RpcError("send", -32603, "Internal error", "AppleScript failed"), "refused"],
    ["imsg could not start: never got the request", new ImsgSpawnError("/nope/imsg", "ENOENT"), "not-sent"],
    ["imsg cannot read its database: answers everything with an error, sends nothing", new ImsgPermissionError("Full Disk Access"), "not-sent"],
    ["-32002 database unavailable: stays queued until it clears", typed(-32002, { path: "/x", detail: "does not exist", retryable: true }), "not-sent"],
    ["-32603 not_started: safe to send again now", typed(-32603, { retry_safe: true, disposition: "not_started" }), "retry"],
    ["-32004 lane blocked: this send never ran (a fresh child takes it)", typed(-32004, { retry_safe: true }), "retry"],
    ["-32000 server busy: never ran", typed(-32000, "busy"), "retry"],
    ["-32001 may_have_completed: look in history first", typed(-32001, { retry_safe: false, disposition: "may_have_completed" }), "in-doubt"],
    ["-32001 still_in_flight: look in history first", typed(-32001, { retry_safe: false, disposition: "still_in_flight" }), "in-doubt"],
    ["the child died mid-request: look in history", new RpcClosedError("imsg rpc exited (code 1)", 1, null), "in-doubt"],
    ["a timeout: it may still land, looked up before anything is re-sent", new RpcTimeoutError("send", 120000), "in-doubt"],
    ["anything else is in doubt", new Error("boom"), "in-doubt"],
  ];
  test.each(rows)("%s", (_name, err, want) => expect(classifySendError(err)).toBe(want));
});

describe("matchSent: finding a part in the chat's history", () => {
  const row = (over: Partial<ImsgMessage>): ImsgMessage => ({
    id: 1,
    chatId: 7,
    guid: "g",
    sender: "+15550001111",
    isFromMe: true,
    text: "",
    createdAt: "",
    attachments: [],
    chatIdentifier: "",
    chatGuid: "",
    chatName: "",
    participants: [],
    isGroup: false,
    service: "unverified",
    ...over,
  });
  const file = (name: string) => ({
    filename: `~/Library/Messages/Attachments/x/${name}`,
    transferName: name,
    uti: "",
    mimeType: "",
    totalBytes: 1,
    isSticker: false,
    originalPath: "",
    missing: false,
  });
  test("text parts match our own rows by normalized text, skipping rows already matched", () => {
    const hist = [row({ id: 3, text: "hello " }), row({ id: 4, text: "hello", isFromMe: false }), row({ id: 5, text: "hello" })];
    expect(matchSent(hist, { text: "hello" })?.id).toBe(3);
    expect(matchSent(hist, { text: "hello" }, new Set([3]))?.id).toBe(5);
    expect(matchSent(hist, { text: "bye" })).toBeUndefined();
  });
  test("file parts match by file name, not by (empty) text", () => {
    const hist = [row({ id: 8, attachments: [file("other.png")] }), row({ id: 9, attachments: [file("chart.png")] })];
    expect(matchSent(hist, { text: "", file: "/tmp/out/chart.png" })?.id).toBe(9);
    expect(matchSent(hist, { text: "", file: "/tmp/out/missing.png" })).toBeUndefined();
  });
});

describe("planParts", () => {
  const account = { responsePrefix: "[bot]", textChunkLimit: 20, chunkMode: "length" as const, mediaMaxMb: 1 };
  test("sanitizes, prefixes and chunks agent text; gateway replies go whole and unprefixed", () => {
    expect(planParts("<thinking>x</thinking>Hello there, how are you today?", [], account).parts.map((p) => p.text)).toEqual([
      "[bot] Hello there,",
      "how are you today?",
    ]);
    expect(planParts("Your pairing code is ABCD2345, valid 1 hour.", [], { ...account, responsePrefix: undefined }, { whole: true }).parts).toHaveLength(1);
  });
  test("relative, missing and sensitive media are rejected with reasons", () => {
    const { parts, rejected } = planParts("", ["relative.png", "/nonexistent/x.png", "/etc/hosts"], account, { stateDir: "/tmp/state" });
    expect(parts).toEqual([]);
    expect(rejected.map((r) => r.reason)).toEqual(["not an absolute path", "file not found", "inside /etc"]);
  });
  test("size caps: text and files together stay within replyMaxParts; the cut is reported", () => {
    const capped = { ...account, replyMaxChars: 100_000, replyMaxParts: 3 };
    const r = planParts("word ".repeat(100), [process.execPath], capped);
    expect(r.parts).toHaveLength(3);
    expect(r.parts.at(-1)!.text).toEndWith(TRUNCATION_MARKER);
    expect(r.truncated).toMatchObject({ parts: 3 });
    expect(r.rejected.map((x) => x.reason)).toEqual(["over replyMaxParts (3 messages per reply)"]);
    expect(planParts("short", [], capped)).not.toHaveProperty("truncated");
    // The gateway's own replies are never cut.
    expect(planParts("word ".repeat(100), [], capped, { whole: true }).parts).toHaveLength(1);
  });
});
