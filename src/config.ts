// Config loading: JSON5 → valibot schema → defaults → per-account resolution.
// TYPES BELOW ARE THE CONTRACT other modules build on; the implementation is filled in separately.
import { ConfigError } from "./errors.ts";

export type DmPolicy = "pairing" | "allowlist" | "open" | "disabled";
export type GroupPolicy = "allowlist" | "open" | "disabled";
export type ChunkMode = "length" | "newline";
export type Service = "imessage" | "sms" | "auto";
export type DmScope = "main" | "per-peer" | "per-channel-peer" | "per-account-channel-peer";

export const DEFAULT_ATTACHMENT_ROOT = "/Users/*/Library/Messages/Attachments";

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
  includeAttachments: boolean; // false
  attachmentRoots: string[]; // configured roots + DEFAULT_ATTACHMENT_ROOT, deduped, order kept
  remoteAttachmentRoots: string[]; // remote + local configured roots + default, deduped
  dmPolicy: DmPolicy; // "pairing"
  allowFrom: string[]; // entries stringified and trimmed
  groupPolicy: GroupPolicy; // "allowlist"
  groupAllowFrom?: string[]; // undefined = unset (falls back to allowFrom); [] = explicitly empty
  groups: Record<string, GroupEntry>; // keys: chat ids or "*"
  mediaMaxMb: number; // 16
  textChunkLimit: number; // 4000
  chunkMode: ChunkMode; // "length"
  configWrites: boolean; // true
  service: Service; // "auto"
  region: string; // "US"
  historyLimit: number; // group pending history: account → messages.groupChat.historyLimit → 50
  dmHistoryLimit: number; // DM session history turns kept: 20
  probeTimeoutMs: number; // 10000
  responsePrefix?: string; // account → messages.responsePrefix
  defaultTo?: string; // `send` target when --to is omitted
  /** Stale-row fences (CONTRACT §5). */
  maxAgeMinutes: number; // 15: live rows older than this are skipped
  recoveryMaxAgeMinutes: number; // 120: when catching up after a restart
  recoveryMaxRows: number; // 500
  /** true when the config has no `channels.imessage` at all (groupPolicy forced to allowlist, warn once). */
  sectionMissing: boolean;
}

export interface AgentConfig {
  id: string;
  default: boolean;
  timeoutSeconds: number; // 120
  groupChat?: { mentionPatterns?: string[] };
  /** Exactly one backend is set. */
  command?: string[];
  openai?: { baseUrl: string; model: string; apiKeyEnv?: string; systemPrompt?: string };
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
  messages: { groupChat: { mentionPatterns?: string[]; historyLimit?: number }; responsePrefix?: string };
  commands: { config: boolean; useAccessGroups: boolean };
  agents: AgentConfig[]; // when absent: one default agent "main" with no backend is NOT invented; list is []
  bindings: Binding[];
  /** Days to keep the journal and session history (`channels.imessage.retentionDays`, default 30). */
  retentionDays: number;
}

/** Reads and validates the file. Throws ConfigError (exit 2) with file:line:column or dotted paths. */
export function loadConfig(path: string): Config {
  throw new ConfigError(`config loading is not implemented yet (${path})`);
}

/** Validates config text; `path` is used in messages only. */
export function parseConfig(text: string, path: string): Config {
  throw new ConfigError(`config parsing is not implemented yet (${path}, ${text.length} chars)`);
}

/** The resolved account (`id` omitted → defaultAccount). Unknown id → ConfigError. */
export function resolveAccount(cfg: Config, id?: string): ImessageAccount {
  throw new ConfigError(`account resolution is not implemented yet (${cfg.path}, ${id})`);
}
