// Sending a tapback, the pure decisions: which way it goes out on this Mac (bridge kind or emoji, the `imsg react`
// fallback, or dropped), how that is recorded on its part, and how history proves it landed. I/O is in
// send-tapback.ts (sending) and reconcile.ts (looking it up).
import { nearestTapback, type TapbackAction, type TapbackKind } from "./actions.ts";
import type { ImsgMessage, ImsgReaction } from "./imsg.ts";

/** How a tapback goes out: imsg's `tapback` (a kind, or an emoji where allowed), or `imsg react` (a kind). */
export type TapbackWay = { via: "bridge" | "react"; kind: TapbackKind } | { via: "bridge"; emoji: string };

/** What this send child can do for a tapback (capabilities.ts ImsgInfo: `advanced.tapback`, `emojiTapback`). */
export interface TapbackCaps {
  tapback: boolean;
  emoji: boolean;
}

/**
 * The way a tapback goes out, or why it is dropped: an emoji as itself only where imsg allows emoji tapbacks, else
 * its nearest standard kind; the bridge when usable, else `imsg react` when the account allows it. Pure.
 */
export function planTapback(t: TapbackAction, caps: TapbackCaps, reactFallback: boolean): TapbackWay | { drop: string } {
  if (t.emoji && caps.tapback && caps.emoji) return { via: "bridge", emoji: t.emoji };
  const kind = t.kind ?? (t.emoji ? nearestTapback(t.emoji) : undefined);
  if (!kind) return { drop: "this imsg cannot send emoji tapbacks and no standard tapback is close to the emoji" };
  if (caps.tapback) return { via: "bridge", kind };
  if (reactFallback) return { via: "react", kind };
  return { drop: "tapbacks need the IMCore bridge (or reactFallback on)" };
}

/** The part's `sentAs` for a way: `bridge:<kind>`, `bridge:emoji:<emoji>`, `react:<kind>`. Pure. */
export function formatSentAs(w: TapbackWay): string {
  return "emoji" in w ? `bridge:emoji:${w.emoji}` : `${w.via}:${w.kind}`;
}

/** The way a part's `sentAs` names (undefined for none, or for a text part's `threaded`/`plain`). Pure. */
export function parseSentAs(s: string | undefined): TapbackWay | undefined {
  if (!s) return undefined;
  if (s.startsWith("bridge:emoji:")) return { via: "bridge", emoji: s.slice("bridge:emoji:".length) };
  const [via, kind] = s.split(":");
  if ((via === "bridge" || via === "react") && kind) return { via, kind: kind as TapbackKind };
  return undefined;
}

/** What counts as the part's tapback in history: the way it was handed over, else anything its intent could become. */
export type TapbackWant = { kind: TapbackKind } | { emoji: string };

export function wantsFor(row: { tapback?: TapbackAction; sentAs?: string }): TapbackWant[] {
  const w = parseSentAs(row.sentAs);
  if (w) return ["emoji" in w ? { emoji: w.emoji } : { kind: w.kind }];
  const t = row.tapback;
  if (!t) return [];
  const out: TapbackWant[] = [];
  if (t.kind) out.push({ kind: t.kind });
  if (t.emoji) {
    out.push({ emoji: t.emoji });
    const near = nearestTapback(t.emoji);
    if (near) out.push({ kind: near });
  }
  return out;
}

// Messages may store an emoji with or without its variation selector (☺ / ☺️): compared without it.
const sameEmoji = (a: string, b: string) => a.replace(/\uFE0F/g, "") === b.replace(/\uFE0F/g, "");

// imsg's read side names emphasize `emphasis`.
const readType = (k: TapbackKind) => (k === "emphasize" ? "emphasis" : k);

/** Our own (is_from_me) tapback on `target` that is one of `wants`, if history shows it. Pure. */
export function ownTapback(target: Pick<ImsgMessage, "reactions">, wants: TapbackWant[]): ImsgReaction | undefined {
  return (target.reactions ?? []).find((r) =>
    r.isFromMe && wants.some((w) => ("kind" in w ? r.type === readType(w.kind) || r.type === w.kind : sameEmoji(r.emoji, w.emoji)))
  );
}

/** The chat's newest incoming message that is not itself a tapback (`imsg react` reacts to that one). Pure. */
export function newestIncoming(hist: ImsgMessage[]): ImsgMessage | undefined {
  let best: ImsgMessage | undefined;
  for (const h of hist) if (!h.isFromMe && !h.isReaction && (!best || h.id > best.id)) best = h;
  return best;
}
