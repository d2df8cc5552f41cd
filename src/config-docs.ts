// The config reference: type, default and description of every `channels.imessage` key, the source docs/CONFIG.md
// is generated from (scripts/gen-config-doc.ts), and the minimal example shown when the file is missing. Kept apart
// from the schema so the schema file holds only what validates.
import { accountEntries, DEFAULTS, imessageEntries } from "./config-schema.ts";
import { DEFAULT_ATTACHMENT_ROOT } from "./files.ts";

export const UNSUPPORTED_KEYS = {
  name: "account display names are not used",
  capabilities: "capability flags are not used",
  markdown: "replies are sent as plain text",
  contextVisibility: "quoted context is always passed through access rules, not filtered further",
  heartbeatVisibility: "there are no heartbeat messages",
  healthMonitor: "health is reported by `openclaw-imsg probe` and /status",
  actions: "only actions.reactions and actions.reply are acted on; edits, unsends, effects, group admin, polls and attachment actions are not",
  sendTransport: "imsg picks the send transport itself",
  catchup: "deprecated in OpenClaw; use recoveryMaxAgeMinutes and recoveryMaxRows",
  "streaming.block": "replies are sent whole (chunked by streaming.chunkMode), not streamed in blocks",
  "groups.*.tools": "tool policies belong to the agent, not this gateway",
  "groups.*.toolsBySender": "tool policies belong to the agent, not this gateway",
} as const;

/** The smallest useful config, shown when the file is missing. */
export const MINIMAL_CONFIG_EXAMPLE =
  '{ channels: { imessage: { enabled: true, cliPath: "imsg" } }, agents: { list: [ { id: "main", default: true, command: ["/path/to/agent"] } ] } }';

type KeyDoc = { type: string; default?: string; description: string };
const q = (s: string) => JSON.stringify(s);
const d = DEFAULTS.imessage;

const unsupported = (type: string, key: keyof typeof UNSUPPORTED_KEYS): KeyDoc => ({
  type,
  description: `accepted for OpenClaw compatibility, not supported (one warning at load): ${UNSUPPORTED_KEYS[key]}`,
});

// Typed over the schema's keys, so adding a key without documenting it fails type-checking.
const KEY_DOCS: { [K in keyof typeof imessageEntries]: KeyDoc } = {
  enabled: { type: "boolean", default: String(d.enabled), description: "false at the top level disables every account" },
  cliPath: { type: "string", default: q(d.cliPath), description: "imsg binary or a stdio-transparent SSH wrapper; `~` expanded; no shell metacharacters" },
  dbPath: { type: "string", description: "Messages database passed to `imsg rpc --db`; `~` expanded" },
  remoteHost: {
    type: "string",
    description:
      "host or user@host where imsg runs: SCP attachment fetches and outbound file staging (no spaces or options); detected from an ssh wrapper when unset",
  },
  sshConfig: {
    type: "string",
    description:
      "ssh config file for SCP fetches, outbound file staging and the probe's host-key check (ssh/scp -F; a wrapper's own -F wins); default ~/.ssh/config",
  },
  includeAttachments: { type: "boolean", default: String(d.includeAttachments), description: "pass inbound attachments to the agent" },
  attachmentRoots: { type: "string[]", default: q(DEFAULT_ATTACHMENT_ROOT), description: "allowed local attachment roots; extend the default" },
  remoteAttachmentRoots: { type: "string[]", default: q(DEFAULT_ATTACHMENT_ROOT), description: "allowed remote roots; extend attachmentRoots and the default" },
  mediaLocalRoots: {
    type: "string[]",
    description:
      "if set, agent MEDIA files may only be sent from under these roots (`~` expanded, symlinks resolved); secret places (state dir, config file, hidden home folders, keychains, /etc …) are refused either way; not settable from chat",
  },
  allowSms: {
    type: "boolean",
    default: String(d.allowSms),
    description:
      "let SMS/RCS senders reach the agent. Off because an SMS sender id can be forged (Text Message Forwarding relays it as-is); even when on, an SMS/RCS sender is never the owner and never runs commands; not settable from chat",
  },
  dmPolicy: {
    type: '"pairing" | "allowlist" | "open" | "disabled"',
    default: q(d.dmPolicy),
    description: 'who may DM the agent; "open" needs "*" in allowFrom',
  },
  allowFrom: { type: "(string | number)[]", description: 'DM allowlist: handles, chat_id:/chat_guid:/chat_identifier: targets, or "*"' },
  groupPolicy: {
    type: '"allowlist" | "open" | "disabled"',
    default: q(d.groupPolicy),
    description: "group handling (falls back to channels.defaults.groupPolicy)",
  },
  groupAllowFrom: { type: "(string | number)[]", description: "group sender allowlist; unset falls back to allowFrom, [] blocks all" },
  groups: {
    type: 'record<chat_id | "*", {requireMention?, systemPrompt?, tools?, toolsBySender?}>',
    description: "group registry and per-chat settings (`tools`/`toolsBySender` accepted with a warning, not supported)",
  },
  mediaMaxMb: { type: "integer 1–1024", default: String(d.mediaMaxMb), description: "attachment size cap in MB (at most 1 GB)" },
  textChunkLimit: { type: "integer 1–100000", default: String(d.textChunkLimit), description: "longest text sent in one message" },
  chunkMode: {
    type: '"length" | "newline"',
    default: q(d.chunkMode),
    description: "how long replies are split (older spelling of streaming.chunkMode, which wins when both are set)",
  },
  streaming: {
    type: "{chunkMode?, block?}",
    description: 'OpenClaw 2026.9: `chunkMode` ("length" | "newline") is honoured; `block` is accepted with a warning (not supported)',
  },
  reactionNotifications: {
    type: '"off" | "own" | "all"',
    default: q(d.reactionNotifications),
    description: "tapbacks passed to the agent as reaction events: none, those on our own messages, or all (senders must pass the same access rules as a text)",
  },
  name: unsupported("string", "name"),
  capabilities: unsupported("string[]", "capabilities"),
  markdown: unsupported("{tables?}", "markdown"),
  contextVisibility: unsupported('"all" | "allowlist" | "allowlist_quote"', "contextVisibility"),
  heartbeatVisibility: unsupported("{showOk?, showAlerts?, useIndicator?}", "heartbeatVisibility"),
  healthMonitor: unsupported("{enabled?}", "healthMonitor"),
  reactFallback: {
    type: "boolean",
    default: String(d.reactFallback),
    description:
      "without the IMCore bridge, send a standard tapback with `imsg react` (UI scripting of Messages.app: needs Accessibility permission and reacts to the newest incoming message, so it is used only while the answered message is still the newest). Off because misfired UI scripting can type into the chat",
  },
  actions: {
    type: "{reactions?, reply?, edit?, unsend?, …}",
    default: "reactions and reply true",
    description:
      "which agent actions are honoured: `reactions` (a `REACT:` tapback on the message answered), `reply` (a `REPLY-TO:` threaded reply); the other keys are accepted for OpenClaw compatibility with one warning at load, not supported",
  },
  sendTransport: unsupported('"auto" | "bridge" | "applescript"', "sendTransport"),
  catchup: unsupported("{enabled?, maxAgeMinutes?, perRunLimit?, …}", "catchup"),
  configWrites: { type: "boolean", default: String(d.configWrites), description: "allow /config set|unset from chats (needs commands.config)" },
  service: { type: '"imessage" | "sms" | "auto"', default: q(d.service), description: "send service for handle targets" },
  region: { type: "string", default: q(d.region), description: "region for SMS phone number parsing" },
  historyLimit: {
    type: "integer 0–1000",
    default: String(d.historyLimit),
    description: "pending group messages kept as context (fallback messages.groupChat.historyLimit; 0 disables)",
  },
  dmHistoryLimit: {
    type: "integer 0–1000",
    default: String(d.dmHistoryLimit),
    description: "messages seeded from imsg history into a new DM session (OpenClaw's meaning; it used to mean dmSessionTurns)",
  },
  dmSessionTurns: { type: "integer 0–1000", default: String(d.dmSessionTurns), description: "DM session turns passed to the agent" },
  dms: { type: "record<handle, {historyLimit?}>", description: "per-sender DM settings; historyLimit overrides dmHistoryLimit for that sender" },
  ownerTakeoverMinutes: {
    type: "integer 0–10080",
    default: String(d.ownerTakeoverMinutes),
    description: "after the owner replies by hand in a chat, the agent stays quiet there this long (0 = never)",
  },
  probeTimeoutMs: {
    type: "integer 1–600000",
    default: String(d.probeTimeoutMs),
    description: "timeout for probe and RPC requests, in ms (at most 10 minutes)",
  },
  sendReadReceipts: {
    type: "boolean",
    default: String(d.sendReadReceipts),
    description: "mark a message read when it is accepted for a turn (never for dropped messages, strangers or tapbacks; needs the IMCore bridge)",
  },
  responsePrefix: { type: "string", description: "prefix for every reply (fallback messages.responsePrefix)" },
  defaultTo: { type: "string", description: "`send` target when --to is omitted" },
  maxAgeMinutes: { type: "integer 1–10080", default: String(d.maxAgeMinutes), description: "live rows older than this are skipped (at most 7 days)" },
  recoveryMaxAgeMinutes: {
    type: "integer 1–43200",
    default: String(d.recoveryMaxAgeMinutes),
    description: "oldest row answered when catching up after a restart (at most 30 days)",
  },
  recoveryMaxRows: { type: "integer 1–100000", default: String(d.recoveryMaxRows), description: "most rows replayed when catching up" },
  replyMaxChars: {
    type: "integer 1–100000",
    default: String(d.replyMaxChars),
    description: 'longest reply sent, in characters; a longer one is cut and ends with "[… reply truncated]"',
  },
  replyMaxParts: {
    type: "integer 1–100",
    default: String(d.replyMaxParts),
    description: "most messages one reply becomes (text chunks and files); the rest is cut the same way",
  },
  replyOnError: {
    type: "boolean",
    default: String(d.replyOnError),
    description: "when the agent fails or times out, send a short fixed notice (never the error itself)",
  },
  loopMaxExchanges: {
    type: "integer 0–1000",
    default: String(d.loopMaxExchanges),
    description: "rate guard: this many consecutive exchanges whose next message follows our reply within loopFollowMs pause the conversation (0 disables)",
  },
  loopFollowMs: {
    type: "integer 1–60000",
    default: String(d.loopFollowMs),
    description: "rate guard: a message this soon after our reply counts as answering it",
  },
  loopEchoRows: {
    type: "integer 0–1000",
    default: String(d.loopEchoRows),
    description: "rate guard: this many rows of reflected assistant markup in a minute from an admitted sender pause the conversation (0 disables)",
  },
  accounts: { type: "record<id, account>", description: "per-account overrides of any key above (shallow)" },
  defaultAccount: { type: "string", default: '"default" or the first account', description: "account used when --account is omitted" },
  retentionDays: { type: "integer 1–3650", default: String(d.retentionDays), description: "days the journal and session history are kept (at most 10 years)" },
};

/** One documented `channels.imessage` key. */
export interface SchemaKeyDoc extends KeyDoc {
  key: string;
  /** Also accepted inside `accounts.<id>`. */
  perAccount: boolean;
}

/** Every `channels.imessage` key with type, default and description, in schema order (for the config reference). */
export function describeSchemaKeys(): SchemaKeyDoc[] {
  return Object.keys(imessageEntries).map((key) => ({
    key,
    perAccount: key in accountEntries,
    ...KEY_DOCS[key as keyof typeof imessageEntries],
  }));
}
