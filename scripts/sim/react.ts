// `imsg react --chat-id N --reaction K`: a standard tapback by UI scripting of Messages.app (docs/IMSG-PROTOCOL.md
// "CLI"). It can only react to the chat's most recent incoming message; controls `react_denied` (no Accessibility
// permission) and `react_delay_ms` stand in for what the Mac does.
import { existsSync } from "node:fs";
import { isGroupChat, isTapbackType, type ReactionType, SimDb, unreadableMarker } from "../sim-db.ts";
import { MODERN, SELF } from "./env.ts";
import { trace, writeLine } from "./output.ts";
import { dbPathOf, fdaBanner, one, type ParsedOptions } from "./cli.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// imsg's ReactionType.parse for the CLI (names case-insensitive, emoji exact), by the name it reports.
const NAMES: Record<Exclude<ReactionType, "custom">, { words: string[]; emoji: string[] }> = {
  love: { words: ["love", "heart"], emoji: ["❤️", "❤"] },
  like: { words: ["like", "thumbsup", "thumbs-up"], emoji: ["👍"] },
  dislike: { words: ["dislike", "thumbsdown", "thumbs-down"], emoji: ["👎"] },
  laugh: { words: ["laugh", "haha", "lol"], emoji: ["😂"] },
  emphasis: { words: ["emphasis", "emphasize", "exclaim", "exclamation"], emoji: ["‼️", "‼"] },
  question: { words: ["question", "questionmark", "question-mark"], emoji: ["❓", "?"] },
};
const EMOJI: Record<string, string> = { love: "❤️", like: "👍", dislike: "👎", laugh: "😂", emphasis: "‼️", question: "❓" };
const ONE_EMOJI =
  /^(?:\p{Extended_Pictographic}|\p{Emoji_Presentation})(?:\uFE0F|\p{Emoji_Modifier})?(?:\u200D(?:\p{Extended_Pictographic}|\p{Emoji_Presentation})(?:\uFE0F|\p{Emoji_Modifier})?)*$/u;

/** A standard kind, `{custom}` for one emoji (which the CLI cannot send), or undefined. */
function parseKind(raw: string): Exclude<ReactionType, "custom"> | { custom: string } | undefined {
  const s = raw.trim();
  if (!s) return undefined;
  for (const [name, v] of Object.entries(NAMES)) {
    if (v.words.includes(s.toLowerCase()) || v.emoji.includes(s)) return name as Exclude<ReactionType, "custom">;
  }
  return ONE_EMOJI.test(s) ? { custom: s } : undefined;
}

// 0.15.1+ writes command errors to stderr; 0.9 printed them on stdout.
function fail(message: string): number {
  if (MODERN) process.stderr.write(message + "\n");
  else writeLine(message);
  return 1;
}

export async function cmdReact(o: ParsedOptions): Promise<number> {
  const rawChat = one(o, "--chat-id");
  const raw = one(o, "--reaction") ?? one(o, "-r");
  trace({ k: "react", chat_id: rawChat, reaction: raw });
  if (rawChat === undefined) return fail("Missing required option --chat-id");
  if (raw === undefined) return fail("Missing required option --reaction");
  if (!/^\d+$/.test(rawChat)) return fail(`Invalid value for --chat-id: ${rawChat}`);
  const chatId = Number(rawChat);
  const kind = parseKind(raw);
  if (!kind) return fail(`Invalid reaction: ${raw}\n\nValid reactions: love, like, dislike, laugh, emphasis, question`);
  if (typeof kind === "object") {
    return fail(
      `Unsupported reaction: custom emoji tapback '${kind.custom}' cannot be sent by Messages.app AppleScript automation; use love, like, dislike, laugh, emphasis, or question.`,
    );
  }
  const path = dbPathOf(o);
  if (process.env.IMSG_SIM_FDA || !existsSync(path) || existsSync(unreadableMarker(path))) return fail(fdaBanner(path));
  const db = new SimDb(path, { selfHandle: SELF, modern: MODERN });
  try {
    const chat = db.chatById(chatId);
    if (!chat) return fail(`Chat not found: ${chatId}`);
    const delay = Number(db.control("react_delay_ms") ?? 0);
    if (delay > 0) await sleep(delay);
    if (db.control("react_denied") === "1") {
      return fail("AppleScript failed: 0:0: execution error: System Events got an error: osascript is not allowed assistive access. (-1719)");
    }
    // The keystrokes land on whatever incoming message is newest; with none there is nothing to react to.
    const target = db
      .messages()
      .filter((m) => m.chatId === chatId && !m.isFromMe && !isTapbackType(m.associatedMessageType))
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.rowid - b.rowid)
      .at(-1);
    if (target) {
      db.inject({ from: isGroupChat(chat.identifier, chat.guid) ? "" : chat.identifier, chatId, isFromMe: true, reaction: { to: target.guid, type: kind } });
    }
  } finally {
    db.close();
  }
  if (o.flags.has("--json") || o.flags.has("-j") || o.flags.has("--json-output") || o.flags.has("--jsonOutput")) {
    writeLine(JSON.stringify({ success: true, chat_id: chatId, reaction_type: kind, reaction_emoji: EMOJI[kind] }));
  } else {
    writeLine(`Sent ${EMOJI[kind]} reaction to chat ${chatId}`);
  }
  return 0;
}
