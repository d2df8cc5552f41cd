import { describe, expect, test } from "bun:test";
import type { ImsgMessage } from "../src/imsg.ts";
import { describeReaction, type ReactionEvent, reactionGate, reactionLine } from "../src/reactions.ts";

const OURS = "G-OURS";
const sentByUs = (g: string) => g === OURS;

describe("reactionGate", () => {
  const rows: [string, "off" | "own" | "all", string | undefined, string][] = [
    ["off drops everything", "off", OURS, "drop:reactionNotifications off"],
    ["own passes a tapback on our message", "own", OURS, "pass:ours"],
    ["own drops a tapback on someone else's", "own", "G-THEIRS", 'drop:not on a message we sent (reactionNotifications "own")'],
    ["own drops a tapback with no target", "own", undefined, 'drop:not on a message we sent (reactionNotifications "own")'],
    ["all passes someone else's", "all", "G-THEIRS", "pass:theirs"],
  ];
  test.each(rows)("%s", (_n, mode, to, expected) => {
    const g = reactionGate({ reactedToGuid: to }, mode, sentByUs);
    expect("drop" in g ? `drop:${g.drop}` : `pass:${g.fromAgent ? "ours" : "theirs"}`).toBe(expected);
  });
});

describe("describeReaction", () => {
  const msg = (over: Partial<ImsgMessage>): ImsgMessage =>
    ({
      id: 5,
      chatId: 1,
      guid: "R1",
      sender: "+15550001111",
      isFromMe: false,
      text: "Liked “see you at 8”",
      createdAt: "",
      attachments: [],
      chatIdentifier: "",
      chatGuid: "",
      chatName: "",
      participants: [],
      isGroup: false,
      isReaction: true,
      reactionType: "like",
      reactionEmoji: "👍",
      isReactionAdd: true,
      reactedToGuid: OURS,
      ...over,
    }) as ImsgMessage;
  test("the journal's text wins over Messages' wording", () => {
    expect(describeReaction(msg({}), true, () => "See you at 8!")).toEqual({
      kind: "like",
      emoji: "👍",
      added: true,
      messageGuid: OURS,
      text: "See you at 8!",
      fromAgent: true,
    });
  });
  test("falls back to the quoted text of the row", () => {
    expect(describeReaction(msg({}), true, () => undefined).text).toBe("see you at 8");
  });
  test("a removal and an unknown custom emoji", () => {
    const r = describeReaction(
      msg({ isReactionAdd: false, reactionType: undefined, reactionEmoji: undefined, text: "Removed a like" }),
      false,
      () => undefined,
    );
    expect(r).toMatchObject({ kind: "", emoji: "", added: false, text: "" });
  });
});

describe("reactionLine", () => {
  const base: ReactionEvent = { kind: "like", emoji: "👍", added: true, messageGuid: OURS, text: "See you at 8", fromAgent: true };
  const rows: [string, ReactionEvent, string][] = [
    ["added to our message", base, '[Reaction] Alice reacted 👍 to your message: "See you at 8"'],
    ["removed from someone else's", { ...base, added: false, fromAgent: false }, '[Reaction] Alice removed 👍 from a message: "See you at 8"'],
    ["no emoji, no text", { ...base, emoji: "", text: "" }, "[Reaction] Alice reacted like to your message"],
  ];
  test.each(rows)("%s", (_n, r, line) => expect(reactionLine(r, "Alice")).toBe(line));
});
