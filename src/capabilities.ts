// Which advanced imsg methods this Mac can use right now: the one place that reads `initialize`/`status`
// (imsg 0.14+) for that. The probe prints it; the gateway's presence (typing, read) acts on it. Pure.
import type { ImsgStatus } from "./imsg.ts";

/** Methods and options beyond the basics, each usable now or not (from `status`). */
export const ADVANCED = ["messages.after", "typing", "read", "tapback", "reply_to", "edit", "unsend"] as const;
export type Advanced = (typeof ADVANCED)[number];

/** What imsg reports about itself: version, database, bridge (never a failure), usable methods. */
export interface ImsgInfo {
  version?: string;
  protocolVersion?: number;
  database: { ready: boolean; path?: string; error?: string };
  bridge?: { ready: boolean; error?: string };
  methods: string[];
  advanced: Record<Advanced, boolean>;
  /** A tapback may be a custom emoji (`capabilities.features["tapback.emoji"] >= 2` with a usable `tapback`). */
  emojiTapback: boolean;
  /** Why each advanced method that is not usable is not (one short sentence each). */
  why: Partial<Record<Advanced, string>>;
}

const BRIDGE_ONLY: Advanced[] = ["typing", "read", "tapback", "reply_to", "edit", "unsend"];
const METHOD: Record<Advanced, string> = {
  "messages.after": "messages.after",
  typing: "typing",
  read: "read",
  tapback: "tapback",
  reply_to: "send",
  edit: "message.edit",
  unsend: "message.unsend",
};

/**
 * Which advanced features this imsg can use now. Every action needs a listed method and a ready IMCore bridge:
 * imsg 0.15 lists `typing` and `read` even without the bridge (they try to activate Messages.app themselves),
 * but on a Mac without the injected helper they fail, so they are gated on the bridge as OpenClaw does.
 */
export function imsgInfo(st: ImsgStatus): ImsgInfo {
  const bridgeReady = st.bridge?.ready === true;
  const bridgeWhy = `needs the IMCore bridge (SIP off, \`imsg launch\`): ${
    !st.bridge ? "not reported" : st.bridge.error ? `not ready (${st.bridge.error})` : "not ready"
  }`;
  const advanced = {} as Record<Advanced, boolean>;
  const why: Partial<Record<Advanced, string>> = {};
  for (const a of ADVANCED) {
    const listed = st.methods.includes(METHOD[a]);
    const needsBridge = BRIDGE_ONLY.includes(a);
    advanced[a] = listed && (!needsBridge || bridgeReady);
    if (advanced[a]) continue;
    if (needsBridge && !bridgeReady) why[a] = bridgeWhy;
    else {why[a] = a === "messages.after" && !st.database.ready
        ? "the database is not ready"
        : `imsg ${st.version ?? ""} does not offer ${METHOD[a]}`.replace("  ", " ");}
  }
  const emojiTapback = advanced.tapback && (st.capabilityLevels?.["tapback.emoji"] ?? 0) >= 2;
  return {
    version: st.version,
    protocolVersion: st.protocolVersion,
    database: st.database,
    bridge: st.bridge,
    methods: st.methods,
    advanced,
    emojiTapback,
    why,
  };
}

/** An imsg without `status` (before 0.14): nothing advanced is attempted, as its surface cannot be discovered. */
export const UNDISCOVERABLE = "imsg has no `status` (0.14+ needed): typing, read receipts, tapbacks and threaded replies are off";

/** The text report's lines for ImsgInfo (informational, so never FAIL). */
export function describeImsgInfo(i: ImsgInfo): string[] {
  const db = i.database.ready
    ? `database ready${i.database.path ? ` (${i.database.path})` : ""}`
    : `database not ready: ${i.database.error ?? "no reason given"}`;
  const bridge = !i.bridge ? "bridge not reported" : i.bridge.ready ? "bridge ready" : `bridge not ready${i.bridge.error ? ` (${i.bridge.error})` : ""}`;
  const on = ADVANCED.filter((a) => i.advanced[a]);
  const off = ADVANCED.filter((a) => !i.advanced[a]);
  // Methods that are off for the same reason share one line.
  const byWhy = new Map<string, Advanced[]>();
  for (const a of off) byWhy.set(i.why[a] ?? "not usable", [...(byWhy.get(i.why[a] ?? "not usable") ?? []), a]);
  return [
    `imsg ${i.version ?? "(version not reported)"}: ${db}; ${bridge}`,
    `advanced methods: ${on.length ? `usable ${on.join(", ")}` : "none usable"}${off.length ? `; not usable ${off.join(", ")}` : ""}`,
    ...[...byWhy].map(([why, list]) => `${list.join(", ")}: ${why}`),
  ];
}

/** The actions a chat can see the agent do (typing, read receipts, tapbacks, threads, edits, unsends). */
export const ACTIONS = ["typing", "read", "tapback", "reply_to", "edit", "unsend"] as const satisfies readonly Advanced[];

/** One line for `/status`: which actions this Mac supports now; `note` when imsg could not be asked. */
export function describeActions(info: ImsgInfo | undefined, note?: string): string {
  if (!info) return `imsg actions: none (${note ?? "not checked yet"})`;
  const on = ACTIONS.filter((a) => info.advanced[a]);
  const off = ACTIONS.filter((a) => !info.advanced[a]);
  const bridge = info.bridge?.ready ? "bridge ready" : "bridge not ready";
  return `imsg ${info.version ?? "?"} (${bridge}): actions ${on.length ? on.join(", ") : "none"}${off.length ? `; not supported: ${off.join(", ")}` : ""}`;
}
