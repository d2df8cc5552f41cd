// The config schema: types, documented defaults, field rules, the valibot schema and the key reference
// docs/CONFIG.md is generated from. Values are kept as written (no defaults filled in); config.ts applies
// defaults, cross-field rules and per-account resolution.
import * as v from "valibot";
import { DEFAULT_ATTACHMENT_ROOT, isValidRootPattern } from "./files.ts";
import { normalizeRemoteHost } from "./ssh.ts";
import { closest } from "./suggest.ts";
import { strict } from "./strict-object.ts";
import { errorMessage } from "./errors.ts";

export type DmPolicy = "pairing" | "allowlist" | "open" | "disabled";
export type GroupPolicy = "allowlist" | "open" | "disabled";
export type ChunkMode = "length" | "newline";
export type Service = "imessage" | "sms" | "auto";
export type DmScope = "main" | "per-peer" | "per-channel-peer" | "per-account-channel-peer";
/** Which tapbacks reach the agent: none, those on messages we sent, or every one. */
export type ReactionNotifications = "off" | "own" | "all";

export interface GroupEntry {
  requireMention?: boolean;
  systemPrompt?: string;
}

/** One account after `accounts.<id>` is laid (shallowly) over the top level and defaults are applied. */
export interface ImessageAccount {
  accountId: string;
  enabled: boolean;
  cliPath: string; // default "imsg"; "~" expanded
  dbPath?: string; // "~" expanded
  remoteHost?: string; // validated host | user@host
  sshConfig?: string; // ssh config file for SCP/host-key checks (scp -F); "~" expanded
  includeAttachments: boolean; // false
  attachmentRoots: string[]; // configured roots + DEFAULT_ATTACHMENT_ROOT, deduped, order kept
  remoteAttachmentRoots: string[]; // remote + local configured roots + default, deduped
  mediaLocalRoots?: string[]; // undefined = no allowlist (the secret deny-list still applies); "~" expanded
  allowSms: boolean; // false: SMS/RCS senders are dropped
  dmPolicy: DmPolicy; // "pairing"
  allowFrom: string[]; // entries stringified and trimmed
  groupPolicy: GroupPolicy; // "allowlist"
  groupAllowFrom?: string[]; // undefined = unset (falls back to allowFrom); [] = explicitly empty
  groups: Record<string, GroupEntry>; // keys: chat ids or "*"
  mediaMaxMb: number; // 16
  textChunkLimit: number; // 4000
  chunkMode: ChunkMode; // "length"; streaming.chunkMode (OpenClaw 2026.9) or the older top-level chunkMode
  reactionNotifications: ReactionNotifications; // "own"
  /** Reply directives honoured (OpenClaw's `actions.reactions` / `actions.reply`; the other actions are not supported). */
  actions: { reactions: boolean; reply: boolean }; // both true
  /** Without the bridge, a standard tapback goes through `imsg react` (UI scripting; newest message only). */
  reactFallback: boolean; // false
  configWrites: boolean; // true
  service: Service; // "auto"
  region: string; // "US"
  historyLimit: number; // group pending history: account → messages.groupChat.historyLimit → 50
  /** OpenClaw's meaning: messages seeded from imsg history into a new DM session (0 = none). */
  dmHistoryLimit: number; // 0
  dmSessionTurns: number; // DM session history turns passed to the agent: 20
  /** Per sender (normalized handle) overrides; `historyLimit` seeds that sender's new DM sessions. */
  dms: Record<string, { historyLimit?: number }>;
  /** Minutes the agent stays quiet in a chat after the owner replied there by hand (0 = never). */
  ownerTakeoverMinutes: number; // 0
  /** Inbound debounce window for this channel (messages.inbound); undefined = the built-in default. */
  debounceMs?: number;
  probeTimeoutMs: number; // 10000
  sendReadReceipts: boolean; // true: accepted messages are marked read (needs the IMCore bridge)
  responsePrefix?: string; // account → top level → messages.responsePrefix
  defaultTo?: string; // `send` target when --to is omitted
  /** Stale-row fences (docs/SPEC.md §8.5). */
  maxAgeMinutes: number; // 15: live rows older than this are skipped
  recoveryMaxAgeMinutes: number; // 120: when catching up after a restart
  recoveryMaxRows: number; // 500
  /** Reply size caps (docs/SPEC.md §8.15): longer replies are cut, with a marker. */
  replyMaxChars: number; // 4000
  replyMaxParts: number; // 5
  /** Send a short fixed notice when a turn's agent fails or times out. */
  replyOnError: boolean; // true
  /** Rate guard (docs/SPEC.md §8.16): consecutive exchanges answered within loopFollowMs pause a conversation. */
  loopMaxExchanges: number; // 10; 0 disables the exchange test
  loopFollowMs: number; // 3000
  loopEchoRows: number; // 5 reflected-markup rows a minute; 0 disables
  /** true when the config has no `channels.imessage` at all (groupPolicy forced to allowlist, warn once). */
  sectionMissing: boolean;
}

export interface AgentConfig {
  id: string;
  /** Exactly one agent of a non-empty list has it: the one marked `default: true`, else the first. */
  default: boolean;
  timeoutSeconds: number; // 120
  groupChat?: { mentionPatterns?: string[] };
  /** Exactly one backend is set. */
  command?: string[];
  openai?: {
    baseUrl: string;
    model: string;
    apiKeyEnv?: string;
    systemPrompt?: string;
    /** Media understanding (src/media.ts holds the defaults and the meaning of each key). */
    vision?: boolean;
    transcribeModel?: string;
    imageMaxMb?: number;
    turnImagesMaxMb?: number;
    audioMaxMb?: number;
  };
}

export interface Binding {
  agentId: string;
  match: { channel?: string; accountId?: string; peer?: { kind: "direct" | "group"; id: string } };
}

export interface Config {
  /** Absolute path of the file it came from (for /config writes and error messages). */
  path: string;
  /** The parsed JSON5 document, untouched (for /config show|set|unset). */
  raw: Record<string, unknown>;
  /** Every account id, sorted; ["default"] when `accounts` is absent. */
  accountIds: string[];
  /** `defaultAccount`, else "default" if present, else the first id. */
  defaultAccount: string;
  session: { dmScope: DmScope; mainKey: string };
  messages: {
    groupChat: { mentionPatterns?: string[]; historyLimit?: number };
    responsePrefix?: string;
    /** OpenClaw's inbound debounce: `debounceMs`, per channel `byChannel.imessage`. */
    inbound?: { debounceMs?: number; byChannel?: Record<string, number | undefined> };
  };
  commands: { config: boolean; useAccessGroups: boolean };
  agents: AgentConfig[]; // when absent: one default agent "main" with no backend is NOT invented; list is []
  /** Bindings that apply to iMessage (`match.channel` absent or "imessage"); other channels' are dropped. */
  bindings: Binding[];
  /** Days to keep the journal and session history (`channels.imessage.retentionDays`, default 30). */
  retentionDays: number;
  /** One line per accepted-but-unsupported OpenClaw key that is set (logged once when the file is loaded). */
  warnings: string[];
  /** `channels.imessage` as written (validated, no defaults); undefined when the section is absent. */
  imessage?: ImessageSection;
  /** `channels.defaults` (only `groupPolicy` matters here). */
  channelDefaults?: { groupPolicy?: GroupPolicy };
}

// Measured in bench/debounce.ts (docs/BENCHMARKS.md "Inbound debounce").
const DEBOUNCE_DEFAULT_MS = 3000;

/** The documented defaults (also the source for the generated config reference). */
export const DEFAULTS = {
  accountId: "default",
  imessage: {
    enabled: true,
    cliPath: "imsg",
    includeAttachments: false,
    attachmentRoots: [DEFAULT_ATTACHMENT_ROOT],
    remoteAttachmentRoots: [DEFAULT_ATTACHMENT_ROOT],
    allowSms: false,
    dmPolicy: "pairing",
    groupPolicy: "allowlist",
    mediaMaxMb: 16,
    textChunkLimit: 4000,
    chunkMode: "length",
    reactionNotifications: "own",
    actions: { reactions: true, reply: true },
    reactFallback: false,
    configWrites: true,
    service: "auto",
    region: "US",
    historyLimit: 50,
    dmHistoryLimit: 0,
    dmSessionTurns: 20,
    ownerTakeoverMinutes: 0,
    probeTimeoutMs: 10_000,
    sendReadReceipts: true,
    maxAgeMinutes: 15,
    recoveryMaxAgeMinutes: 120,
    recoveryMaxRows: 500,
    replyMaxChars: 4000,
    replyMaxParts: 5,
    replyOnError: true,
    loopMaxExchanges: 10,
    loopFollowMs: 3000,
    loopEchoRows: 5,
    retentionDays: 30,
  },
  session: { dmScope: "main", mainKey: "main" },
  /** The debounce window when messages.inbound sets none (see docs/BENCHMARKS.md for why this value). */
  inboundDebounceMs: DEBOUNCE_DEFAULT_MS,
  commands: { config: false, useAccessGroups: true },
  agent: { timeoutSeconds: 120 },
} as const;

// ---------------------------------------------------------------------------------------------
// Field rules (pure predicates, shared by the schema and by tests)

// Characters a shell would interpret; cliPath is spawned directly, so they can only be a mistake or an attack.
const SHELL_META = /[;|&$`<>(){}'"\\*?[\]!\u0000-\u001f\u007f]/;

/** A cliPath that is a plain executable path (spaces allowed, shell metacharacters and leading "-" not). */
export function isSafeCliPath(value: string): boolean {
  const t = value.trim();
  return t.length > 0 && !SHELL_META.test(value) && !t.startsWith("-");
}

/** Account ids and agent ids end up in session keys and SQLite rows, so keep them plain. */
const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const GROUP_KEY = /^(\d+|\*)$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function regexError(pattern: string): string | undefined {
  try {
    new RegExp(pattern, "i");
    return undefined;
  } catch (err) {
    return errorMessage(err);
  }
}

function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Schema

/** Closest known key to a misspelt one (see suggest.ts). */
export const closestKey = closest;

// Every number has an upper bound: a huge timeout overflows the timer (Node fires at once above 2^31−1 ms) and a
// huge limit is never meant; the bounds are stated in the config reference.
const int = (min: 0 | 1, max: number) =>
  v.pipe(
    v.number(),
    v.check(
      (n) => Number.isInteger(n) && n >= min,
      (i) => `must be ${min === 1 ? "a positive integer" : "an integer ≥ 0"}, got ${i.received}`,
    ),
    v.maxValue(max, (i) => `must be at most ${max}, got ${i.received}`),
  );
const nonEmpty = v.pipe(v.string(), v.check((s) => s.trim() !== "", "must not be empty"));
const oneOf = <const T extends readonly string[]>(options: T) =>
  v.picklist(options, (i) => `expected one of ${options.map((o) => `"${o}"`).join(", ")}, got ${i.received}`);
const allowList = v.array(
  v.pipe(
    v.union([v.string(), v.number()], (i) => `expected a string or number, got ${i.received}`),
    v.check(
      (x) => (typeof x === "string" ? x.trim() !== "" : Number.isInteger(x) && x >= 0),
      (i) => `must be a non-empty handle or chat target, got ${i.received}`,
    ),
  ),
);
const root = v.pipe(
  v.string(),
  v.check(isValidRootPattern, (i) => `must be an absolute path pattern where "*" is a whole segment, got ${i.received}`),
);
// Like `root`, but `~/` may start it (expanded when the account is resolved).
const mediaRoot = v.pipe(
  v.string(),
  v.check(
    (s) => isValidRootPattern(s.startsWith("~/") ? s.slice(1) : s),
    (i) => `must be an absolute path pattern (or start with ~/) where "*" is a whole segment, got ${i.received}`,
  ),
);
const mentionPatterns = v.array(
  v.pipe(
    v.string(),
    v.check(
      (p) => regexError(p) === undefined,
      (i) => `invalid regular expression: ${regexError(String(i.input))}`,
    ),
  ),
);

const GroupEntrySchema = strict({
  requireMention: v.optional(v.boolean()),
  systemPrompt: v.optional(v.string()),
  // OpenClaw 2026.9 tool policies: accepted so its configs load, not supported (a warning says so).
  tools: v.optional(v.unknown()),
  toolsBySender: v.optional(v.unknown()),
});

const bool = v.optional(v.boolean());
/** The `actions.*` keys this gateway acts on; the rest of ACTIONS load with a warning. */
export const SUPPORTED_ACTIONS = ["reactions", "reply"] as const;
const ACTIONS = [
  "reactions",
  "edit",
  "unsend",
  "reply",
  "sendWithEffect",
  "renameGroup",
  "setGroupIcon",
  "addParticipant",
  "removeParticipant",
  "leaveGroup",
  "sendAttachment",
  "polls",
] as const;

// OpenClaw 2026.9 keys this gateway accepts so an OpenClaw config loads as written, but does not act on:
// each one set gets ONE warning at load naming it and why (config.ts unsupportedWarnings).
export const accountEntries = {
  enabled: v.optional(v.boolean()),
  cliPath: v.optional(
    v.pipe(
      v.string(),
      v.check(
        isSafeCliPath,
        (i) =>
          `must be a path to imsg or a wrapper script, without shell metacharacters or options (it is run directly, not through a shell), got ${i.received}`,
      ),
    ),
  ),
  dbPath: v.optional(nonEmpty),
  remoteHost: v.optional(
    v.pipe(
      v.string(),
      v.check((s) => normalizeRemoteHost(s) !== undefined, (i) => `expected SSH host or user@host, no spaces or options, got ${i.received}`),
    ),
  ),
  sshConfig: v.optional(
    v.pipe(
      v.string(),
      v.check((s) => /^(~\/|\/)/.test(s.trim()) && !s.includes("\u0000"), (i) => `must be an absolute path (or start with ~/), got ${i.received}`),
    ),
  ),
  includeAttachments: v.optional(v.boolean()),
  attachmentRoots: v.optional(v.array(root)),
  remoteAttachmentRoots: v.optional(v.array(root)),
  mediaLocalRoots: v.optional(v.array(mediaRoot)),
  allowSms: v.optional(v.boolean()),
  dmPolicy: v.optional(oneOf(["pairing", "allowlist", "open", "disabled"] as const)),
  allowFrom: v.optional(allowList),
  groupPolicy: v.optional(oneOf(["allowlist", "open", "disabled"] as const)),
  groupAllowFrom: v.optional(allowList),
  groups: v.optional(
    v.record(
      v.pipe(
        v.string(),
        v.regex(GROUP_KEY, (i) => `group keys are numeric chat ids (see \`openclaw-imsg chats\`) or "*", got ${i.received}`),
      ),
      GroupEntrySchema,
    ),
  ),
  mediaMaxMb: v.optional(int(1, 1024)),
  textChunkLimit: v.optional(int(1, 100000)),
  chunkMode: v.optional(oneOf(["length", "newline"] as const)),
  streaming: v.optional(
    strict({
      chunkMode: v.optional(oneOf(["length", "newline"] as const)),
      block: v.optional(
        strict({
          enabled: bool,
          coalesce: v.optional(strict({ minChars: v.optional(int(0, 100000)), maxChars: v.optional(int(0, 100000)), idleMs: v.optional(int(0, 600000)) })),
        }),
      ),
    }),
  ),
  reactionNotifications: v.optional(oneOf(["off", "own", "all"] as const)),
  reactFallback: v.optional(v.boolean()),
  name: v.optional(v.string()),
  capabilities: v.optional(v.array(v.string())),
  markdown: v.optional(strict({ tables: v.optional(oneOf(["off", "bullets", "code", "block"] as const)) })),
  contextVisibility: v.optional(oneOf(["all", "allowlist", "allowlist_quote"] as const)),
  heartbeatVisibility: v.optional(strict({ showOk: bool, showAlerts: bool, useIndicator: bool })),
  healthMonitor: v.optional(strict({ enabled: bool })),
  actions: v.optional(strict(Object.fromEntries(ACTIONS.map((a) => [a, bool])) as Record<(typeof ACTIONS)[number], typeof bool>)),
  sendTransport: v.optional(oneOf(["auto", "bridge", "applescript"] as const)),
  catchup: v.optional(
    strict({
      enabled: bool,
      maxAgeMinutes: v.optional(int(0, 43200)),
      perRunLimit: v.optional(int(0, 100000)),
      firstRunLookbackMinutes: v.optional(int(0, 43200)),
      maxFailureRetries: v.optional(int(0, 1000)),
    }),
  ),
  configWrites: v.optional(v.boolean()),
  service: v.optional(oneOf(["imessage", "sms", "auto"] as const)),
  region: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z]{2}$/, (i) => `expected a two-letter region code such as "US", got ${i.received}`))),
  historyLimit: v.optional(int(0, 1000)),
  dmHistoryLimit: v.optional(int(0, 1000)),
  dmSessionTurns: v.optional(int(0, 1000)),
  dms: v.optional(v.record(nonEmpty, strict({ historyLimit: v.optional(int(0, 1000)) }))),
  ownerTakeoverMinutes: v.optional(int(0, 10080)),
  probeTimeoutMs: v.optional(int(1, 600000)),
  sendReadReceipts: v.optional(v.boolean()),
  responsePrefix: v.optional(v.string()),
  defaultTo: v.optional(nonEmpty),
  maxAgeMinutes: v.optional(int(1, 10080)),
  recoveryMaxAgeMinutes: v.optional(int(1, 43200)),
  recoveryMaxRows: v.optional(int(1, 100000)),
  replyMaxChars: v.optional(int(1, 100000)),
  replyMaxParts: v.optional(int(1, 100)),
  replyOnError: v.optional(v.boolean()),
  loopMaxExchanges: v.optional(int(0, 1000)),
  loopFollowMs: v.optional(int(1, 60000)),
  loopEchoRows: v.optional(int(0, 1000)),
};

const TOP_ONLY = "only allowed at the top level of channels.imessage, not inside an account";
const AccountSchema = strict(accountEntries, { accounts: TOP_ONLY, defaultAccount: TOP_ONLY, retentionDays: TOP_ONLY });

export const imessageEntries = {
  ...accountEntries,
  accounts: v.optional(
    v.record(
      v.pipe(v.string(), v.regex(ID_PATTERN, (i) => `account ids are lowercase letters, digits, "-" or "_", got ${i.received}`)),
      AccountSchema,
    ),
  ),
  defaultAccount: v.optional(nonEmpty),
  retentionDays: v.optional(int(1, 3650)),
};

const ImessageSchema = strict(imessageEntries);

const OpenAiSchema = strict({
  baseUrl: v.pipe(v.string(), v.check(isHttpUrl, (i) => `expected an http(s) URL, got ${i.received}`)),
  model: nonEmpty,
  apiKeyEnv: v.optional(v.pipe(v.string(), v.regex(ENV_NAME, (i) => `expected an environment variable name, got ${i.received}`))),
  systemPrompt: v.optional(v.string()),
  vision: v.optional(v.boolean()),
  transcribeModel: v.optional(nonEmpty),
  imageMaxMb: v.optional(int(1, 1024)),
  turnImagesMaxMb: v.optional(int(1, 1024)),
  audioMaxMb: v.optional(int(1, 1024)),
});

const AgentSchema = strict({
  id: v.pipe(v.string(), v.regex(ID_PATTERN, (i) => `agent ids are lowercase letters, digits, "-" or "_", got ${i.received}`)),
  default: v.optional(v.boolean()),
  command: v.optional(v.pipe(v.array(nonEmpty), v.minLength(1, "must name the program to run"))),
  openai: v.optional(OpenAiSchema),
  timeoutSeconds: v.optional(int(1, 86400)),
  groupChat: v.optional(strict({ mentionPatterns: v.optional(mentionPatterns) })),
});

// Everything outside channels.imessage, agents and their entries is loose: a full OpenClaw config carries
// many keys we do not use, and those must not stop us.
export const RootSchema = v.object({
  channels: v.optional(
    v.object({
      defaults: v.optional(v.object({ groupPolicy: v.optional(oneOf(["allowlist", "open", "disabled"] as const)) })),
      imessage: v.optional(ImessageSchema),
    }),
  ),
  session: v.optional(
    v.object({
      dmScope: v.optional(oneOf(["main", "per-peer", "per-channel-peer", "per-account-channel-peer"] as const)),
      mainKey: v.optional(nonEmpty),
    }),
  ),
  messages: v.optional(
    v.object({
      groupChat: v.optional(v.object({ mentionPatterns: v.optional(mentionPatterns), historyLimit: v.optional(int(0, 1000)) })),
      responsePrefix: v.optional(v.string()),
      inbound: v.optional(
        v.object({
          debounceMs: v.optional(int(0, 600000)),
          byChannel: v.optional(v.record(v.string(), int(0, 600000))),
        }),
      ),
    }),
  ),
  commands: v.optional(v.object({ config: v.optional(v.boolean()), useAccessGroups: v.optional(v.boolean()) })),
  agents: v.optional(strict({ list: v.optional(v.array(AgentSchema)) })),
  bindings: v.optional(
    v.array(
      v.object({
        agentId: nonEmpty,
        match: v.optional(
          v.object({
            channel: v.optional(v.string()),
            accountId: v.optional(v.string()),
            peer: v.optional(v.object({ kind: v.string(), id: v.union([nonEmpty, v.number()]) })),
          }),
        ),
      }),
    ),
  ),
});

/** `channels.imessage` as written, after validation. */
export type ImessageSection = v.InferOutput<typeof ImessageSchema>;
/** One `channels.imessage.accounts.<id>` entry (also the shape of the overlayable top-level fields). */
export type ImessageAccountInput = v.InferOutput<typeof AccountSchema>;
