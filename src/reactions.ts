// Tapbacks in: which ones reach the agent (`reactionNotifications`), and how one is described to it. A tapback is
// an event for the agent's session, never a user turn; who may send one is policy's job (the same rules as a text).
// Pure: the journal lookups come in as functions.
import type { ReactionNotifications } from "./config.ts";
import type { ImsgMessage } from "./imsg.ts";
import { clip } from "./text.ts";

/** A tapback as the agent receives it (command stdin `reaction`). */
export interface ReactionEvent {
  /** imsg's reaction type: love, like, dislike, laugh, emphasis, question, custom ("" when imsg could not tell). */
  kind: string;
  emoji: string;
  added: boolean;
  /** Guid of the message reacted to. */
  messageGuid: string;
  /** Its text, when known ("" otherwise). */
  text: string;
  /** The message reacted to is one this gateway sent. */
  fromAgent: boolean;
}

export type ReactionGate = { pass: true; fromAgent: boolean } | { drop: string };

/** Whether a tapback row is passed on under the account's `reactionNotifications`. */
export function reactionGate(msg: Pick<ImsgMessage, "reactedToGuid">, mode: ReactionNotifications, sentByUs: (guid: string) => boolean): ReactionGate {
  if (mode === "off") return { drop: "reactionNotifications off" };
  const target = msg.reactedToGuid ?? "";
  const fromAgent = target !== "" && sentByUs(target);
  if (mode === "own" && !fromAgent) return { drop: 'not on a message we sent (reactionNotifications "own")' };
  return { pass: true, fromAgent };
}

// Messages' own wording quotes the target: `Liked “See you at 8”`, `Removed a heart from “…”`.
const QUOTED = /“([\s\S]*)”/;

/** The event for a tapback row; the target's text comes from the journal, else from Messages' wording. */
export function describeReaction(msg: ImsgMessage, fromAgent: boolean, textOf: (guid: string) => string | undefined): ReactionEvent {
  const messageGuid = msg.reactedToGuid ?? "";
  const text = (messageGuid ? textOf(messageGuid) : undefined) ?? QUOTED.exec(msg.text)?.[1] ?? "";
  return {
    kind: msg.reactionType ?? "",
    emoji: msg.reactionEmoji ?? "",
    added: msg.isReactionAdd !== false,
    messageGuid,
    text,
    fromAgent,
  };
}

/** The short line a model reads for a tapback (the openai backend sends it as a system message). */
export function reactionLine(r: ReactionEvent, who: string): string {
  const what = r.emoji || r.kind || "a reaction";
  const target = r.fromAgent ? "your message" : "a message";
  const quoted = r.text ? `: "${clip(r.text, 200)}"` : "";
  return r.added ? `[Reaction] ${who} reacted ${what} to ${target}${quoted}` : `[Reaction] ${who} removed ${what} from ${target}${quoted}`;
}
