// Screening before policy, one table row per rule. Journal lookups come from a real SQLite Store file.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ImsgMessage } from "../src/imsg.ts";
import { SCREEN_REASONS } from "../src/reasons.ts";
import { convKey, screen, type ScreenInput, type ScreenLookups, type ScreenResult } from "../src/screen.ts";
import { normalizeForEcho } from "../src/sanitize.ts";
import { inboundKey, Store } from "../src/store.ts";

const NOW = Date.parse("2026-01-01T12:00:00Z");
const ME = "+15550009999";
const ACCOUNT = { groups: {}, maxAgeMinutes: 15, recoveryMaxAgeMinutes: 120 };

const msg = (over: Partial<ImsgMessage> = {}): ImsgMessage => ({
  id: 10,
  chatId: 7,
  guid: "IN-10",
  sender: "+15550001111",
  isFromMe: false,
  text: "hello there",
  createdAt: new Date(NOW - 1000).toISOString(),
  attachments: [],
  chatIdentifier: "+15550001111",
  chatGuid: "iMessage;-;+15550001111",
  chatName: "",
  participants: ["+15550001111"],
  isGroup: false,
  destinationCallerId: ME,
  ...over,
} as ImsgMessage);

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A real store with an optional history: an outbound part we sent and an earlier inbound row. */
function journal(seed: { sent?: { text: string; chatId?: number; target: string; guid?: string }; inbound?: ImsgMessage[] } = {}): ScreenLookups {
  const dir = mkdtempSync(join(tmpdir(), "screen-"));
  dirs.push(dir);
  const store = Store.open(dir);
  stores.push(store);
  if (seed.sent) {
    const row = store.recordOutbound({
      accountId: "default",
      seq: 0,
      target: seed.sent.target,
      chatId: seed.sent.chatId,
      text: seed.sent.text,
      echoKey: normalizeForEcho(seed.sent.text),
    });
    if (seed.sent.guid) store.markOutbound(row.id, "sent", { messageId: 99, messageGuid: seed.sent.guid });
  }
  for (const m of seed.inbound ?? []) {
    store.journalInbound("default", {
      guid: m.guid,
      rowid: m.id,
      chatId: m.chatId,
      sender: m.sender,
      isFromMe: m.isFromMe,
      createdAt: Date.parse(m.createdAt),
      message: m,
    });
  }
  return {
    hasOutboundGuid: (g) => store.hasOutboundGuid("default", g),
    outboundByEcho: (t, since) => store.outboundByEcho("default", t, since),
    inboundNear: (c, s, at, w, except) => store.inboundNear("default", c, s, at, w, except),
  };
}

const input = (m: ImsgMessage, over: Partial<ScreenInput> = {}): ScreenInput => ({
  key: inboundKey(m.guid, m.id),
  msg: m,
  catchup: false,
  account: ACCOUNT,
  echoWindowMs: 30_000,
  now: NOW,
  ...over,
});
const outcome = (r: ScreenResult) => ("pass" in r ? "pass" : r.detail ? `${r.state} ${r.drop}: ${r.detail}` : `${r.state} ${r.drop}`);

describe("screen: the rules before policy, in order", () => {
  const group = { isGroup: true, chatId: 7, chatIdentifier: "chat123", participants: ["+15550001111", "+15550002222"] };
  const rows: [string, ImsgMessage, Partial<ScreenInput>, Parameters<typeof journal>[0], string][] = [
    ["an ordinary fresh DM passes", msg(), {}, {}, "pass"],
    ["an is_from_me row (see the from-me rules below)", msg({ isFromMe: true }), {}, {}, "dropped from me: the owner's reply, kept as context"],
    [
      "a row with the guid of a message we sent",
      msg({ guid: "OUT-1" }),
      {},
      { sent: { text: "x", target: "imessage:+15550001111", guid: "OUT-1" } },
      "dropped echo (our own message guid)",
    ],
    ["an undatable row is skipped", msg({ createdAt: "garbage" }), {}, {}, 'skipped unreadable created_at: "garbage"'],
    ["older than maxAgeMinutes live", msg({ createdAt: new Date(NOW - 16 * 60_000).toISOString() }), {}, {}, "skipped stale: older than 15 min"],
    ["16 min old is fine at catch-up", msg({ createdAt: new Date(NOW - 16 * 60_000).toISOString() }), { catchup: true }, {}, "pass"],
    [
      "older than recoveryMaxAgeMinutes at catch-up",
      msg({ createdAt: new Date(NOW - 121 * 60_000).toISOString() }),
      { catchup: true },
      {},
      "skipped stale at catch-up: older than 120 min",
    ],
    [
      "DM text we just sent into this chat",
      msg({ text: "On my way" }),
      {},
      { sent: { text: "On my way", chatId: 7, target: "imessage:+15550009999" } },
      "dropped echo (text we just sent)",
    ],
    ["DM text we sent to this handle before the chat existed", msg({ text: "On my way", chatId: 8 }), {}, {
      sent: { text: "On my way", target: "imessage:+15550001111" },
    }, "dropped echo (text we just sent)"],
    ["same text in another DM is not an echo", msg({ text: "On my way", chatId: 8, sender: "+15550003333", chatIdentifier: "+15550003333" }), {}, {
      sent: { text: "On my way", chatId: 7, target: "imessage:+15550001111" },
    }, "pass"],
    ["a group member repeating our text is not an echo", msg({ ...group, text: "ok" }), {}, { sent: { text: "ok", chatId: 7, target: "chat_id:7" } }, "pass"],
    ["our text under our own handle in a group is an echo", msg({ ...group, text: "ok", sender: ME }), {}, {
      sent: { text: "ok", chatId: 7, target: "chat_id:7" },
    }, "dropped echo (text we just sent)"],
    [
      "a chat listed in groups is a group for the echo rule too (imsg says is_group false)",
      msg({ text: "ok" }),
      { account: { ...ACCOUNT, groups: { "7": {} } } },
      { sent: { text: "ok", target: "imessage:+15550001111" } },
      "pass",
    ],
    [
      "an iCloud twin: earlier row, same chat, sender and text, within 2 s, another guid",
      msg({ id: 11, guid: "IN-11" }),
      {},
      { inbound: [msg({ id: 10, guid: "IN-10", createdAt: new Date(NOW - 2500).toISOString() })] },
      "dropped icloud twin: duplicate of row 10 (same sender, text and time; another guid)",
    ],
    ["a later row is never the twin's original", msg({ id: 9, guid: "IN-9" }), {}, { inbound: [msg({ id: 10, guid: "IN-10" })] }, "pass"],
    ["reflected assistant markup", msg({ text: "<thinking>plan</thinking> sure" }), {}, {}, "dropped reflected assistant content"],
  ];
  test.each(rows)("%s", (_name, m, over, seed, want) => {
    expect(outcome(screen(input(m, over), journal(seed)))).toBe(want);
  });

  test("reflected content is marked as loop evidence; an expected echo is not", () => {
    expect(screen(input(msg({ text: "<thinking>x</thinking>" })), journal())).toMatchObject({ echo: true });
    expect(screen(input(msg({ text: "On my way" })), journal({ sent: { text: "On my way", chatId: 7, target: "x" } }))).not.toHaveProperty("echo");
  });

  test("every reason screen returns is in the vocabulary", () => {
    for (const [, m, over, seed] of rows) {
      const r = screen(input(m, over), journal(seed));
      if (!("pass" in r)) expect(SCREEN_REASONS).toContain(r.drop);
    }
  });
});

describe("convKey: the rate guard's conversation (policy's group test)", () => {
  const rows: [string, Partial<ImsgMessage>, Record<string, object>, string][] = [
    ["a DM is keyed by the sender", {}, {}, "dm:+15550001111"],
    ["a group by its chat", { isGroup: true }, {}, "chat:7"],
    ["a chat listed in groups by its chat", {}, { "7": {} }, "chat:7"],
    ["a chat with several participants by its chat", { participants: ["+15550001111", "+15550002222"] }, {}, "chat:7"],
    ["no sender: the chat", { sender: "" }, {}, "chat:7"],
  ];
  test.each(rows)("%s", (_n, over, groups, want) => expect(convKey(msg(over), { groups })).toBe(want));
});

describe("screen: is_from_me rows are ours (never the owner's) or the owner's reply (context, never answered)", () => {
  const mine = (over: Partial<ImsgMessage> = {}) => msg({ isFromMe: true, guid: "ME-1", text: "call me at 6", ...over });
  const owner = "dropped from me: the owner's reply, kept as context";
  const rows: [string, ImsgMessage, Partial<ScreenInput>, Parameters<typeof journal>[0], string, boolean][] = [
    ["typed by the owner", mine(), {}, {}, owner, true],
    [
      "our send by guid",
      mine({ guid: "OUT-1" }),
      {},
      { sent: { text: "x", target: "imessage:+15550001111", guid: "OUT-1" } },
      "dropped echo (our own message guid)",
      false,
    ],
    [
      "our send by text into the chat (guid not known yet)",
      mine({ text: "On my way" }),
      {},
      { sent: { text: "On my way", chatId: 7, target: "imessage:+15550001111" } },
      "dropped echo (text we just sent)",
      false,
    ],
    [
      "our group send by text (no handle on outgoing group rows)",
      mine({ text: "ok", sender: "", isGroup: true, participants: ["+15550001111", "+15550002222"] }),
      {},
      { sent: { text: "ok", chatId: 7, target: "chat_id:7" } },
      "dropped echo (text we just sent)",
      false,
    ],
    [
      "same text sent to someone else is still the owner's",
      mine({ text: "ok" }),
      {},
      { sent: { text: "ok", chatId: 8, target: "imessage:+15550003333" } },
      owner,
      true,
    ],
    ["no text (a photo, a tapback)", mine({ text: "" }), {}, {}, "dropped from me", false],
    [
      "our own tapback coming back (imsg gives it text): never the owner's reply",
      mine({ isReaction: true, reactionType: "like", reactionEmoji: "👍", isReactionAdd: true, reactedToGuid: "IN-1", text: "Liked “hi”" }),
      {},
      {},
      "dropped from me: a tapback from this Mac's account",
      false,
    ],
    [
      "the owner's tapback, even a fresh one with text: not a takeover",
      mine({ isReaction: true, reactionType: "love", reactedToGuid: "IN-2", text: "Loved “see you”" }),
      { catchup: false },
      {},
      "dropped from me: a tapback from this Mac's account",
      false,
    ],
    [
      "too old to be context",
      mine({ createdAt: new Date(NOW - 16 * 60_000).toISOString() }),
      {},
      {},
      "dropped from me: too old to keep as the owner's reply",
      false,
    ],
  ];
  test.each(rows)("%s", (_name, m, over, seed, want, isOwner) => {
    const r = screen(input(m, over), journal(seed));
    expect(outcome(r)).toBe(want);
    expect("owner" in r && r.owner === true).toBe(isOwner);
  });
});
