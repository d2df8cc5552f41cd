// Agent actions out: the reply directives an agent may write beside its text (`REACT:`, `REPLY-TO:`), and the
// tapback vocabulary both the turn side (what to ask for) and the send side (what imsg can do) share. Pure.
// The protocol is described in docs/SPEC.md ("Agent actions").

/** The six standard tapbacks, as imsg's `tapback` takes them (the read side says `emphasis`). */
export const TAPBACK_KINDS = ["love", "like", "dislike", "laugh", "emphasize", "question"] as const;
export type TapbackKind = (typeof TAPBACK_KINDS)[number];

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

// ---- the turn side: directives out of the agent's text, resolved against config, backend and the turn ----

/** The directive lines an agent wrote, as written (first of each kind; unresolved). */
export interface ReplyDirectives {
  react?: string;
  replyTo?: string;
}

// Upper case only, like `MEDIA:`: a sentence starting "React: ..." stays text.
const DIRECTIVE = /^(REACT|REPLY-TO):(.*)$/;

/**
 * Takes `REACT:` and `REPLY-TO:` lines out of an agent's text. Only the first of each kind counts; later ones
 * are removed too and named in `extra` (so the caller can log them). Pure.
 */
export function splitDirectives(text: string): { text: string; directives: ReplyDirectives; extra: string[] } {
  const directives: ReplyDirectives = {};
  const extra: string[] = [];
  const keep: string[] = [];
  for (const line of text.split("\n")) {
    const m = DIRECTIVE.exec(line.trim());
    if (!m) {
      keep.push(line);
      continue;
    }
    const key = m[1] === "REACT" ? "react" : "replyTo";
    if (directives[key] === undefined) directives[key] = m[2]!.trim();
    else extra.push(`${m[1]}: another one (only the first counts)`);
  }
  return { text: keep.join("\n").trim(), directives, extra };
}

/** `actions.reactions` / `actions.reply` as the account resolves them (OpenClaw's names; both default on). */
export interface ActionsConfig {
  reactions: boolean;
  reply: boolean;
}

/** What a backend may ask for: a command (operator code) may thread to any known message; a model only to the anchor. */
export type Backend = "command" | "openai";

export interface ResolveContext {
  backend: Backend;
  config: ActionsConfig;
  /** Guid of the row the turn answers (a burst's newest row). */
  anchorGuid: string;
  /** The turn answers a tapback: nothing can be reacted to or threaded under. */
  isReaction: boolean;
  /** The journal knows a message with this guid in the turn's chat (an inbound row or a part we sent). */
  knownInChat: (guid: string) => boolean;
}

/**
 * The actions a reply's directives resolve to, and one reason per directive dropped (for the log). Capabilities of
 * the Mac are not consulted: the send side decides what imsg can do and falls back there. Pure.
 */
export function resolveActions(d: ReplyDirectives, ctx: ResolveContext): { actions: ReplyActions; dropped: string[] } {
  const actions: ReplyActions = {};
  const dropped: string[] = [];
  const anchor = ctx.anchorGuid;
  if (d.react !== undefined) {
    const r = parseReaction(d.react);
    if (ctx.isReaction) dropped.push("REACT: the turn answers a tapback");
    else if (!ctx.config.reactions) dropped.push("REACT: actions.reactions is off");
    else if (!anchor) dropped.push("REACT: the message has no guid");
    else if (!r) dropped.push("REACT: not a tapback kind or a single emoji");
    else actions.react = { to: anchor, ...r };
  }
  if (d.replyTo !== undefined) {
    const v = d.replyTo.trim();
    const toAnchor = v === "" || v.toLowerCase() === "this" || v === anchor;
    if (ctx.isReaction) dropped.push("REPLY-TO: the turn answers a tapback");
    else if (!ctx.config.reply) dropped.push("REPLY-TO: actions.reply is off");
    else if (toAnchor && !anchor) dropped.push("REPLY-TO: the message has no guid");
    else if (toAnchor) actions.replyTo = anchor;
    else if (ctx.backend !== "command") dropped.push("REPLY-TO: a model may thread only to the message it answers");
    else if (!ctx.knownInChat(v)) dropped.push("REPLY-TO: no message with that guid in this chat");
    else actions.replyTo = v;
  }
  return { actions, dropped };
}

/** What the gateway will honour this turn (the command turn's `actions`; the openai backend's directive line). */
export interface TurnActions {
  react: boolean;
  /** A custom emoji is sent as itself (else as its nearest standard kind). */
  emoji: boolean;
  replyTo: boolean;
}

/** What this Mac can do, as last reported by imsg (undefined: not known yet, or imsg cannot say). */
export interface MacActions {
  tapback: boolean;
  emoji: boolean;
  replyTo: boolean;
}

/**
 * config × turn × this Mac. Without the bridge a standard tapback can still go through `reactFallback`; a Mac not
 * heard from yet counts as one without the bridge. Pure.
 */
export function turnActions(config: ActionsConfig & { reactFallback: boolean }, isReaction: boolean, mac?: MacActions): TurnActions {
  if (isReaction) return { react: false, emoji: false, replyTo: false };
  const react = config.reactions && (!!mac?.tapback || config.reactFallback);
  return { react, emoji: react && !!mac?.tapback && mac.emoji, replyTo: config.reply && !!mac?.replyTo };
}

/** The system line the openai backend gets when some directive is available, else undefined. Pure. */
export function directivesPrompt(a: TurnActions): string | undefined {
  const parts: string[] = [];
  if (a.react) {
    parts.push(
      `to react to the message you answer with a tapback, write a line "REACT: <kind>" (${TAPBACK_KINDS.join(", ")}${a.emoji ? ", or a single emoji" : ""})`,
    );
  }
  if (a.replyTo) parts.push('to send your reply as a threaded reply to that message, write a line "REPLY-TO: this"');
  if (!parts.length) return undefined;
  return `Besides your text you may: ${parts.join("; ")}. These lines are removed from what is sent.`;
}

/** The directive lines an honoured reply stands for, so the session history shows what the agent did. Pure. */
export function directiveLines(a: ReplyActions | undefined, anchorGuid: string): string[] {
  const out: string[] = [];
  if (a?.react) out.push(`REACT: ${a.react.kind ?? a.react.emoji}`);
  if (a?.replyTo) out.push(`REPLY-TO: ${a.replyTo === anchorGuid ? "this" : a.replyTo}`);
  return out;
}
