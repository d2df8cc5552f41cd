// Why an inbound row was not answered: one vocabulary for the journal and the logs. Policy's reasons (decide())
// plus the gateway's own, each a stable readable string; a varying part (an age, a row id) goes in a separate
// detail that is appended after ": ", so a reason can always be matched by its prefix.
import type { DropReason } from "./policy.ts";

/** Screening before policy (echoes, stale rows, loops); see screen.ts. */
export const SCREEN_REASONS = [
  "from me",
  "echo (our own message guid)",
  "unreadable created_at",
  "stale",
  "stale at catch-up",
  "echo (text we just sent)",
  "icloud twin",
  "reflected assistant content",
] as const;

/** The pipeline's own outcomes after policy. */
export const PIPELINE_REASONS = [
  "no agent configured",
  "catch-up limit reached",
  "pairing already requested (no new reply)",
  "pairing: too many pending requests (no reply)",
  "empty reply",
  "journal entry unreadable",
  "reaction not passed on",
  "not joined to a chat",
  "owner takeover",
  "held (conversation paused)",
  "skipped by /resume skip",
  "cancelled by /stop",
] as const;

export type ScreenReason = (typeof SCREEN_REASONS)[number];
export type PipelineReason = (typeof PIPELINE_REASONS)[number];
/** Every reason an inbound row is dropped, skipped or closed without a reply. */
export type InboundReason = DropReason | ScreenReason | PipelineReason;

/** The text journaled and logged: the reason, then the detail when there is one. */
export function reasonText(reason: InboundReason, detail?: string): string {
  return detail ? `${reason}: ${detail}` : reason;
}
