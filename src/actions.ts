// Agent actions out: the reply directives an agent may write beside its text (`REACT:`, `REPLY-TO:`), and the
// tapback vocabulary both the turn side (what to ask for) and the send side (what imsg can do) share. Pure.
// The protocol is described in docs/CONTRACT.md ("Agent actions").

/** The six standard tapbacks, as imsg's `tapback` takes them (the read side says `emphasis`). */
export const TAPBACK_KINDS = ["love", "like", "dislike", "laugh", "emphasize", "question"] as const;
export type TapbackKind = (typeof TAPBACK_KINDS)[number];

/** Each standard kind's emoji, as Messages shows it. */
export const TAPBACK_EMOJI: Record<TapbackKind, string> = {
  love: "❤️",
  like: "👍",
  dislike: "👎",
  laugh: "😂",
  emphasize: "‼️",
  question: "❓",
};

/** A tapback the agent asked for, resolved to the message it goes on. */
export interface TapbackAction {
  /** Guid of the message reacted to (always the message the turn answers). */
  to: string;
  /** A standard kind; absent when `emoji` is a custom emoji. */
  kind?: TapbackKind;
  /** A custom emoji tapback (sent as itself only where imsg's capabilities allow; else its nearest kind). */
  emoji?: string;
}

/** What a reply does besides its text and files, resolved against config and the turn (stored with the reply). */
export interface ReplyActions {
  react?: TapbackAction;
  /** Every part of the reply is sent as a threaded reply to this message guid (where imsg can; else plain). */
  replyTo?: string;
}

// Words and emoji imsg's own normaliser accepts for each kind, plus our read side's `emphasis`.
const WORDS: Record<string, TapbackKind> = {
  love: "love",
  heart: "love",
  "❤️": "love",
  "❤": "love",
  like: "like",
  thumbsup: "like",
  "thumbs-up": "like",
  "+1": "like",
  "👍": "like",
  dislike: "dislike",
  thumbsdown: "dislike",
  "thumbs-down": "dislike",
  "-1": "dislike",
  "👎": "dislike",
  laugh: "laugh",
  haha: "laugh",
  lol: "laugh",
  "😂": "laugh",
  "🤣": "laugh",
  emphasize: "emphasize",
  emphasis: "emphasize",
  "!!": "emphasize",
  "‼": "emphasize",
  "‼️": "emphasize",
  question: "question",
  "?": "question",
  "❓": "question",
};

// One emoji: a pictographic base with its modifiers, variation selectors, ZWJ sequences or flag pair.
const ONE_EMOJI =
  /^(?:\p{Regional_Indicator}{2}|(?:\p{Extended_Pictographic}|\p{Emoji_Presentation})(?:\uFE0F|\p{Emoji_Modifier})?(?:\u200D(?:\p{Extended_Pictographic}|\p{Emoji_Presentation})(?:\uFE0F|\p{Emoji_Modifier})?)*)$/u;

/**
 * What a `REACT:` value asks for: a standard kind (any spelling imsg accepts, any case), one custom emoji, or
 * undefined (not a tapback: the directive is dropped). Pure.
 */
export function parseReaction(raw: string): { kind: TapbackKind } | { emoji: string } | undefined {
  const s = raw.trim();
  const kind = WORDS[s.toLowerCase()];
  if (kind) return { kind };
  return ONE_EMOJI.test(s) ? { emoji: s } : undefined;
}

// Custom emoji whose meaning is close to a standard tapback: used where imsg cannot send an emoji tapback.
const NEAREST: [TapbackKind, string][] = [
  ["love", "😍🥰😘💕💖💗💓💞💘💝♥️🫶💜💙💚💛🧡🤍🖤🤎❣️"],
  ["like", "👌✅🙌👏💯🔥⭐🌟✨🎉🥳😊🙂😀😃😄😁☺️💪🤝🆗✔️☑️"],
  ["dislike", "👎🏻😞😠😡🙁☹️😒🚫❌⛔"],
  ["laugh", "😆😅🤭😹😝😜😛🙃"],
  ["emphasize", "❗❕⚠️😮😲😱🤯🚨📣"],
  ["question", "🤔❔🧐🤨😕🤷"],
];

// Skin-tone modifiers and the emoji variation selector: "👍🏽" means 👍.
const DECORATION = /[\u{1F3FB}-\u{1F3FF}\uFE0F]/gu;

/** The standard kind nearest a custom emoji, or undefined when none is close (the tapback is then dropped). Pure. */
export function nearestTapback(emoji: string): TapbackKind | undefined {
  const bare = emoji.replace(DECORATION, "");
  const direct = WORDS[emoji] ?? WORDS[bare];
  if (direct) return direct;
  for (const [kind, set] of NEAREST) if (bare && set.replace(DECORATION, "").includes(bare)) return kind;
  return undefined;
}
