// The turn side of agent actions: directive lines out of a reply, their resolution, and what a turn announces.
import { describe, expect, test } from "bun:test";
import {
  directiveLines,
  directivesPrompt,
  type ReplyActions,
  type ReplyDirectives,
  resolveActions,
  type ResolveContext,
  splitDirectives,
  turnActions,
} from "../src/actions.ts";

describe("splitDirectives", () => {
  const rows: [string, string, { text: string; directives: ReplyDirectives; extra: string[] }][] = [
    ["no directives", "hello\nthere", { text: "hello\nthere", directives: {}, extra: [] }],
    ["REACT and REPLY-TO are removed", "sure\nREACT: like\nREPLY-TO: this", { text: "sure", directives: { react: "like", replyTo: "this" }, extra: [] }],
    ["anywhere in the text, with spaces around", "  REACT:👍  \nok", { text: "ok", directives: { react: "👍" }, extra: [] }],
    ["an empty REPLY-TO", "ok\nREPLY-TO:", { text: "ok", directives: { replyTo: "" }, extra: [] }],
    ["only the first of each kind counts; the others are removed and named", "REACT: like\nREACT: love\nhi\nREPLY-TO: a\nREPLY-TO: b", {
      text: "hi",
      directives: { react: "like", replyTo: "a" },
      extra: ["REACT: another one (only the first counts)", "REPLY-TO: another one (only the first counts)"],
    }],
    ["lower case is prose, not a directive", "react: that was funny", { text: "react: that was funny", directives: {}, extra: [] }],
    ["inside a line it stays text", "I'd say REACT: like", { text: "I'd say REACT: like", directives: {}, extra: [] }],
    ["a tapback alone leaves no text", "REACT: laugh\n", { text: "", directives: { react: "laugh" }, extra: [] }],
  ];
  test.each(rows)("%s", (_n, input, want) => expect(splitDirectives(input)).toEqual(want));
});

describe("resolveActions", () => {
  const ctx = (over: Partial<ResolveContext> = {}): ResolveContext => ({
    backend: "command",
    config: { reactions: true, reply: true },
    anchorGuid: "ANCHOR",
    isReaction: false,
    knownInChat: (g) => g === "KNOWN",
    ...over,
  });
  const rows: [string, ReplyDirectives, Partial<ResolveContext>, ReplyActions, string[]][] = [
    ["nothing asked", {}, {}, {}, []],
    ["a kind on the anchor", { react: "like" }, {}, { react: { to: "ANCHOR", kind: "like" } }, []],
    ["any spelling imsg accepts", { react: "HaHa" }, {}, { react: { to: "ANCHOR", kind: "laugh" } }, []],
    ["a standard emoji is its kind", { react: "❤️" }, {}, { react: { to: "ANCHOR", kind: "love" } }, []],
    ["a custom emoji", { react: "🦄" }, {}, { react: { to: "ANCHOR", emoji: "🦄" } }, []],
    ["not a tapback", { react: "wow great" }, {}, {}, ["REACT: not a tapback kind or a single emoji"]],
    ["reactions off", { react: "like" }, { config: { reactions: false, reply: true } }, {}, ["REACT: actions.reactions is off"]],
    ["REPLY-TO: this", { replyTo: "this" }, {}, { replyTo: "ANCHOR" }, []],
    ["REPLY-TO: THIS", { replyTo: "THIS" }, {}, { replyTo: "ANCHOR" }, []],
    ["an empty REPLY-TO is the anchor", { replyTo: "" }, {}, { replyTo: "ANCHOR" }, []],
    ["the anchor's guid", { replyTo: "ANCHOR" }, {}, { replyTo: "ANCHOR" }, []],
    ["command: a guid the journal knows in this chat", { replyTo: "KNOWN" }, {}, { replyTo: "KNOWN" }, []],
    ["command: an unknown guid", { replyTo: "OTHER" }, {}, {}, ["REPLY-TO: no message with that guid in this chat"]],
    ["openai: the anchor", { replyTo: "this" }, { backend: "openai" }, { replyTo: "ANCHOR" }, []],
    ["openai: never another message, even a known one", { replyTo: "KNOWN" }, { backend: "openai" }, {}, [
      "REPLY-TO: a model may thread only to the message it answers",
    ]],
    ["openai: reacts only on the anchor", { react: "like" }, { backend: "openai" }, { react: { to: "ANCHOR", kind: "like" } }, []],
    ["reply off", { replyTo: "this" }, { config: { reactions: true, reply: false } }, {}, ["REPLY-TO: actions.reply is off"]],
    ["a tapback turn: both dropped", { react: "like", replyTo: "this" }, { isReaction: true }, {}, [
      "REACT: the turn answers a tapback",
      "REPLY-TO: the turn answers a tapback",
    ]],
    ["a message without a guid", { react: "like", replyTo: "this" }, { anchorGuid: "" }, {}, [
      "REACT: the message has no guid",
      "REPLY-TO: the message has no guid",
    ]],
  ];
  test.each(rows)("%s", (_n, d, over, actions, dropped) => expect(resolveActions(d, ctx(over))).toEqual({ actions, dropped }));
});

describe("turnActions: what a turn announces", () => {
  const on = { reactions: true, reply: true, reactFallback: false };
  const bridge = { tapback: true, emoji: true, replyTo: true };
  const rows: [string, typeof on, boolean, typeof bridge | undefined, ReturnType<typeof turnActions>][] = [
    ["a Mac with the bridge", on, false, bridge, { react: true, emoji: true, replyTo: true }],
    ["a bridge without emoji tapbacks", on, false, { ...bridge, emoji: false }, { react: true, emoji: false, replyTo: true }],
    ["no bridge, no fallback", on, false, { tapback: false, emoji: false, replyTo: false }, { react: false, emoji: false, replyTo: false }],
    ["no bridge, the fallback: standard kinds only", { ...on, reactFallback: true }, false, undefined, { react: true, emoji: false, replyTo: false }],
    ["not heard from yet", on, false, undefined, { react: false, emoji: false, replyTo: false }],
    ["config off", { ...on, reactions: false, reply: false }, false, bridge, { react: false, emoji: false, replyTo: false }],
    ["a tapback turn", on, true, bridge, { react: false, emoji: false, replyTo: false }],
  ];
  test.each(rows)("%s", (_n, cfg, isReaction, mac, want) => expect(turnActions(cfg, isReaction, mac)).toEqual(want));
});

describe("directivesPrompt and directiveLines", () => {
  test("no line when nothing is available", () => expect(directivesPrompt({ react: false, emoji: false, replyTo: false })).toBeUndefined());
  test("the line names only what is available", () => {
    const r = directivesPrompt({ react: true, emoji: false, replyTo: false })!;
    expect(r).toContain('"REACT: <kind>" (love, like, dislike, laugh, emphasize, question)');
    expect(r).not.toContain("REPLY-TO");
    expect(r).not.toContain("emoji");
    expect(directivesPrompt({ react: true, emoji: true, replyTo: true })).toContain('"REPLY-TO: this"');
    expect(directivesPrompt({ react: true, emoji: true, replyTo: false })).toContain("or a single emoji");
  });
  const rows: [string, ReplyActions | undefined, string[]][] = [
    ["none", undefined, []],
    ["a kind on the anchor, threaded to it", { react: { to: "A", kind: "like" }, replyTo: "A" }, ["REACT: like", "REPLY-TO: this"]],
    ["an emoji, threaded elsewhere", { react: { to: "A", emoji: "🦄" }, replyTo: "B" }, ["REACT: 🦄", "REPLY-TO: B"]],
  ];
  test.each(rows)("history lines: %s", (_n, a, want) => expect(directiveLines(a, "A")).toEqual(want));
});
