// Config loading: JSON5 → valibot schema (config-schema.ts) → cross-field rules → per-account resolution.
// The schema keeps values as written (no defaults filled in), because account overlay needs to know
// what an account set itself; defaults are applied only in resolveAccount and buildConfig.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import JSON5 from "json5";
import * as v from "valibot";
import {
  type AgentConfig,
  type Binding,
  type Config,
  DEFAULTS,
  type ImessageAccount,
  type ImessageAccountInput,
  type ImessageSection,
  RootSchema,
  SUPPORTED_ACTIONS,
} from "./config-schema.ts";
import { MINIMAL_CONFIG_EXAMPLE, UNSUPPORTED_KEYS } from "./config-docs.ts";
import { mergeRoots } from "./files.ts";
import { expandHome } from "./paths.ts";
import { normalizeRemoteHost } from "./ssh.ts";
import { isNationalNumber, normalizeHandle } from "./targets.ts";
import { debounceWindow } from "./debounce.ts";
import { ConfigError, errorMessage } from "./errors.ts";
import { getLog } from "./log.ts";

// The types live with the schema; re-exported because most modules only need them and already import here.
export type {
  AgentConfig,
  Binding,
  ChunkMode,
  Config,
  DmPolicy,
  DmScope,
  GroupEntry,
  GroupPolicy,
  ImessageAccount,
  ImessageAccountInput,
  ImessageSection,
  ReactionNotifications,
  Service,
} from "./config-schema.ts";

// ---------------------------------------------------------------------------------------------
// Cross-field rules: run on the raw document, with type guards, so they are reported together with
// schema problems instead of after the user fixes those.

type Problem = { path: string; message: string };

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const objAt = (x: unknown): Record<string, unknown> | undefined => (isObj(x) ? x : undefined);
const listAt = (x: unknown): unknown[] | undefined => (Array.isArray(x) ? x : undefined);
const entryStrings = (x: unknown): string[] | undefined =>
  listAt(x)?.filter((e) => typeof e === "string" || typeof e === "number").map((e) => String(e).trim());

function listAccountIds(im: Record<string, unknown> | undefined): string[] {
  const accounts = objAt(im?.accounts);
  const ids = accounts ? Object.keys(accounts).sort() : [];
  return ids.length ? ids : [DEFAULTS.accountId];
}

function dmRules(top: Record<string, unknown>, acct: Record<string, unknown> | undefined, base: string): Problem[] {
  const own = (k: string) => acct !== undefined && k in acct;
  const policy = own("dmPolicy") ? acct!.dmPolicy : top.dmPolicy;
  const allow = entryStrings(own("allowFrom") ? acct!.allowFrom : top.allowFrom) ?? [];
  const at = `${own("allowFrom") || own("dmPolicy") ? base : "channels.imessage"}.allowFrom`;
  const fallback = acct && !own("allowFrom") ? " (inherited from channels.imessage.allowFrom)" : "";
  if (policy === "open" && !allow.includes("*")) return [{ path: at, message: `dmPolicy "open" requires allowFrom to include "*"${fallback}` }];
  if (policy === "allowlist" && allow.length === 0) {
    return [{ path: at, message: `dmPolicy "allowlist" requires allowFrom to contain at least one sender${fallback}` }];
  }
  return [];
}

function crossFieldProblems(raw: Record<string, unknown>): Problem[] {
  const out: Problem[] = [];
  const im = objAt(objAt(raw.channels)?.imessage);
  const accountIds = listAccountIds(im);
  if (im) {
    const accounts = objAt(im.accounts);
    const ids = accounts ? Object.keys(accounts) : [];
    // With accounts, the top level is only a base to inherit from: check what each account ends up with.
    if (ids.length === 0) out.push(...dmRules(im, undefined, "channels.imessage"));
    for (const id of ids) {
      const acct = objAt(accounts![id]);
      if (acct) out.push(...dmRules(im, acct, `channels.imessage.accounts.${id}`));
    }
    for (
      const [section, base] of [
        [im, "channels.imessage"] as const,
        ...ids.map((id) => [objAt(accounts![id]), `channels.imessage.accounts.${id}`] as const),
      ]
    ) {
      for (const key of ["allowFrom", "groupAllowFrom"]) {
        (entryStrings(section?.[key]) ?? []).forEach((e, i) => {
          // Senders arrive in E.164; "(555) 000-1111" would never match one, and guessing the country is unsafe.
          if (isNationalNumber(e)) {
            out.push({
              path: `${base}.${key}.${i}`,
              message: `"${e}" has no country code; write it in E.164 form (e.g. "+1${e.replace(/\D/g, "")}" in the US)`,
            });
          }
        });
      }
    }
    if (typeof im.defaultAccount === "string" && im.defaultAccount.trim() && !accountIds.includes(im.defaultAccount)) {
      out.push({ path: "channels.imessage.defaultAccount", message: `unknown account "${im.defaultAccount}" (accounts: ${accountIds.join(", ")})` });
    }
  }

  const agents = listAt(objAt(raw.agents)?.list) ?? [];
  const firstIndexOf = new Map<string, number>();
  const defaults: number[] = [];
  agents.forEach((a, i) => {
    const agent = objAt(a);
    if (!agent) return;
    const backends = ["command", "openai"].filter((k) => agent[k] !== undefined);
    if (backends.length === 0) {
      out.push({ path: `agents.list.${i}`, message: 'needs one backend: "command" (a program run per turn) or "openai" (an OpenAI-compatible endpoint)' });
    }
    if (backends.length === 2) out.push({ path: `agents.list.${i}`, message: 'has both "command" and "openai"; an agent has exactly one backend' });
    if (typeof agent.id === "string") {
      const prev = firstIndexOf.get(agent.id);
      if (prev !== undefined) out.push({ path: `agents.list.${i}.id`, message: `duplicate agent id "${agent.id}" (also agents.list.${prev})` });
      else firstIndexOf.set(agent.id, i);
    }
    if (agent.default === true) defaults.push(i);
  });
  if (defaults.length > 1) {
    for (const i of defaults.slice(1)) {
      out.push({ path: `agents.list.${i}.default`, message: `only one agent may be the default (agents.list.${defaults[0]} already is)` });
    }
  }

  const known = [...firstIndexOf.keys()];
  (listAt(raw.bindings) ?? []).forEach((b, i) => {
    const binding = objAt(b);
    if (!binding) return;
    if (typeof binding.agentId === "string" && binding.agentId.trim() && !firstIndexOf.has(binding.agentId)) {
      const list = known.length ? `agents: ${known.join(", ")}` : "agents.list is empty";
      out.push({ path: `bindings.${i}.agentId`, message: `unknown agent "${binding.agentId}" (${list})` });
    }
    const match = objAt(binding.match);
    if (!match || !appliesToImessage(match.channel)) return;
    if (typeof match.accountId === "string" && !accountIds.includes(match.accountId)) {
      out.push({ path: `bindings.${i}.match.accountId`, message: `unknown account "${match.accountId}" (accounts: ${accountIds.join(", ")})` });
    }
    const peer = objAt(match.peer);
    if (peer && peer.kind !== "direct" && peer.kind !== "group") {
      out.push({ path: `bindings.${i}.match.peer.kind`, message: `expected "direct" or "group", got ${JSON.stringify(peer.kind)}` });
    }
  });
  return out;
}

/**
 * One warning per OpenClaw key that is accepted but not acted on, naming every place it is set, so a config
 * written for OpenClaw loads and says plainly what it will not do. Pure.
 */
export function unsupportedWarnings(raw: Record<string, unknown>): string[] {
  const im = objAt(objAt(raw.channels)?.imessage);
  if (!im) return [];
  const accounts = objAt(im.accounts) ?? {};
  const sections: [string, Record<string, unknown>][] = [["channels.imessage", im]];
  for (const [id, a] of Object.entries(accounts)) if (objAt(a)) sections.push([`channels.imessage.accounts.${id}`, a as Record<string, unknown>]);
  const out: string[] = [];
  for (const [key, why] of Object.entries(UNSUPPORTED_KEYS)) {
    const where: string[] = [];
    for (const [base, sec] of sections) {
      if (key === "streaming.block") {
        if (objAt(sec.streaming)?.block !== undefined) where.push(`${base}.streaming.block`);
      } else if (key === "actions") {
        // Turning an unsupported action off asks for what happens anyway: only the ones switched on are named.
        const on = Object.entries(objAt(sec.actions) ?? {}).filter(([k, v]) => v !== false && !(SUPPORTED_ACTIONS as readonly string[]).includes(k));
        if (on.length) where.push(`${base}.actions (${on.map(([k]) => k).join(", ")})`);
      } else if (key.startsWith("groups.*.")) {
        const sub = key.slice("groups.*.".length);
        for (const [chat, g] of Object.entries(objAt(sec.groups) ?? {})) if (objAt(g)?.[sub] !== undefined) where.push(`${base}.groups.${chat}.${sub}`);
      } else if (sec[key] !== undefined) where.push(`${base}.${key}`);
    }
    if (where.length) out.push(`${where.join(", ")}: accepted but not supported (ignored): ${why}`);
  }
  return out;
}

function appliesToImessage(channel: unknown): boolean {
  return channel === undefined || (typeof channel === "string" && channel.trim().toLowerCase() === "imessage");
}

// ---------------------------------------------------------------------------------------------
// Loading

function issuePath(issue: v.BaseIssue<unknown>): string {
  return (issue.path ?? []).map((p) => String(p.key)).join(".") || "(top level)";
}

// valibot's default wording ("Invalid type: Expected boolean but received "x"") reads as an internal error.
function issueMessage(issue: v.BaseIssue<unknown>): string {
  const m = /^Invalid type: Expected (.*) but received (.*)$/s.exec(issue.message);
  return m ? `expected ${m[1]}, got ${m[2]}` : issue.message;
}

/** Reads and validates the file. Throws ConfigError (exit 2) with file:line:column or dotted paths. */
export function loadConfig(path: string): Config {
  const cfg = readConfig(path);
  for (const w of cfg.warnings) getLog("config").warn(w);
  return cfg;
}

function readConfig(path: string): Config {
  const file = resolve(expandHome(path));
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ENOENT") {
      throw new ConfigError(
        `config file not found: ${file}`,
        `create it (JSON5), or pass --config / set OPENCLAW_CONFIG_PATH. A minimal config:\n    ${MINIMAL_CONFIG_EXAMPLE}`,
      );
    }
    throw new ConfigError(`cannot read config file ${file}: ${errorMessage(err)}`);
  }
  return parseConfig(text, file);
}

/** Validates config text; `path` is used in messages only. */
export function parseConfig(text: string, path: string): Config {
  let raw: unknown;
  try {
    raw = JSON5.parse(text.replace(/^\uFEFF/, ""));
  } catch (err) {
    const e = err as { lineNumber?: number; columnNumber?: number };
    const msg = errorMessage(err).replace(/^JSON5: /, "").replace(/ at \d+:\d+$/, "");
    throw new ConfigError(`${path}:${e.lineNumber ?? 1}:${e.columnNumber ?? 1}: ${msg}`);
  }
  return buildConfig(raw, path);
}

/** Validates an already parsed document (e.g. after a `/config set`) and builds the Config. */
export function buildConfig(raw: unknown, path: string): Config {
  if (!isObj(raw)) {
    const got = raw === null ? "null" : Array.isArray(raw) ? "an array" : typeof raw;
    throw new ConfigError(`${path}: the top level must be an object ({ channels: …, agents: … }), got ${got}`);
  }
  const res = v.safeParse(RootSchema, raw);
  const problems: Problem[] = res.success ? [] : res.issues.map((i) => ({ path: issuePath(i), message: issueMessage(i) }));
  problems.push(...crossFieldProblems(raw));
  if (problems.length > 0 || !res.success) {
    const lines = [...new Set(problems.map((p) => `  - ${p.path}: ${p.message}`))];
    const n = lines.length === 1 ? "1 problem" : `${lines.length} problems`;
    throw new ConfigError(`${path}: invalid configuration (${n}):\n${lines.join("\n")}`);
  }
  const doc = res.output;
  const im = doc.channels?.imessage;
  const accountIds = listAccountIds(im);
  const defaultAccount = im?.defaultAccount ?? (accountIds.includes(DEFAULTS.accountId) ? DEFAULTS.accountId : accountIds[0]!);

  const list = doc.agents?.list ?? [];
  const defaultIndex = Math.max(0, list.findIndex((a) => a.default === true));
  const agents: AgentConfig[] = list.map((a, i) => ({
    id: a.id,
    default: i === defaultIndex,
    timeoutSeconds: a.timeoutSeconds ?? DEFAULTS.agent.timeoutSeconds,
    ...(a.groupChat ? { groupChat: a.groupChat } : {}),
    ...(a.command ? { command: a.command } : {}),
    ...(a.openai ? { openai: a.openai } : {}),
  }));

  const bindings: Binding[] = (doc.bindings ?? [])
    .filter((b) => appliesToImessage(b.match?.channel))
    .map((b) => {
      const m = b.match ?? {};
      const match: Binding["match"] = {};
      if (m.channel !== undefined) match.channel = m.channel;
      if (m.accountId !== undefined) match.accountId = m.accountId;
      if (m.peer) match.peer = { kind: m.peer.kind as "direct" | "group", id: String(m.peer.id).trim() };
      return { agentId: b.agentId, match };
    });

  const gc = doc.messages?.groupChat;
  return {
    path: resolve(path),
    raw,
    accountIds,
    defaultAccount,
    session: {
      dmScope: doc.session?.dmScope ?? DEFAULTS.session.dmScope,
      mainKey: doc.session?.mainKey ?? DEFAULTS.session.mainKey,
    },
    messages: {
      groupChat: {
        ...(gc?.mentionPatterns ? { mentionPatterns: gc.mentionPatterns } : {}),
        ...(gc?.historyLimit !== undefined ? { historyLimit: gc.historyLimit } : {}),
      },
      ...(doc.messages?.responsePrefix !== undefined ? { responsePrefix: doc.messages.responsePrefix } : {}),
      ...(doc.messages?.inbound ? { inbound: doc.messages.inbound } : {}),
    },
    commands: {
      config: doc.commands?.config ?? DEFAULTS.commands.config,
      useAccessGroups: doc.commands?.useAccessGroups ?? DEFAULTS.commands.useAccessGroups,
    },
    agents,
    bindings,
    retentionDays: im?.retentionDays ?? DEFAULTS.imessage.retentionDays,
    warnings: [...unsupportedWarnings(raw), ...legacyWarnings(im)],
    ...(im ? { imessage: im } : {}),
    channelDefaults: doc.channels?.defaults?.groupPolicy ? { groupPolicy: doc.channels.defaults.groupPolicy } : {},
  };
}

// ---------------------------------------------------------------------------------------------
// Resolution

const cleanList = (list: readonly (string | number)[] | undefined) => list?.map((e) => String(e).trim()).filter((e) => e !== "");

/** Settings that load but changed meaning; one line each, logged at load with the other warnings. Pure. */
export function legacyWarnings(im: ImessageSection | undefined): string[] {
  const where = [["channels.imessage", im] as const, ...Object.entries(im?.accounts ?? {}).map(([id, a]) => [`channels.imessage.accounts.${id}`, a] as const)];
  return where
    .filter(([, s]) => s?.dmHistoryLimit !== undefined && s.dmSessionTurns === undefined)
    .map(([p]) =>
      `${p}.dmHistoryLimit now means OpenClaw's "seed a new DM session with this many messages"; it also still sets the session turns kept until you set ${p}.dmSessionTurns`
    );
}

/** Per-sender DM settings keyed by normalized handle, so "+1 555…" and "+1555…" meet. */
function normalizeDms(dms: ImessageAccountInput["dms"]): ImessageAccount["dms"] {
  const out: ImessageAccount["dms"] = {};
  for (const [h, e] of Object.entries(dms ?? {})) out[normalizeHandle(h.trim())] = e;
  return out;
}

/** The resolved account (`id` omitted → defaultAccount). Unknown id → ConfigError. */
export function resolveAccount(cfg: Config, id?: string): ImessageAccount {
  const accountId = (id ?? cfg.defaultAccount).trim().toLowerCase() || DEFAULTS.accountId;
  if (!cfg.accountIds.includes(accountId)) {
    throw new ConfigError(`unknown account "${accountId}" (accounts: ${cfg.accountIds.join(", ")})`);
  }
  const section = cfg.imessage;
  const { accounts, defaultAccount: _d, retentionDays: _r, ...top } = section ?? {};
  const acct: ImessageAccountInput = accounts?.[accountId] ?? {};
  // Shallow on purpose (OpenClaw semantics): an account's arrays and maps replace the top level's.
  const m: ImessageAccountInput = { ...top, ...acct };
  const D = DEFAULTS.imessage;
  const cliPath = m.cliPath?.trim() || D.cliPath;
  const remoteHost = m.remoteHost !== undefined ? normalizeRemoteHost(m.remoteHost) : undefined;
  const groupAllowFrom = cleanList(m.groupAllowFrom);
  const responsePrefix = m.responsePrefix ?? cfg.messages.responsePrefix;
  return {
    accountId,
    enabled: top.enabled !== false && acct.enabled !== false,
    cliPath: expandHome(cliPath),
    ...(m.dbPath !== undefined ? { dbPath: expandHome(m.dbPath.trim()) } : {}),
    ...(remoteHost !== undefined ? { remoteHost } : {}),
    ...(m.sshConfig !== undefined ? { sshConfig: expandHome(m.sshConfig.trim()) } : {}),
    includeAttachments: m.includeAttachments ?? D.includeAttachments,
    attachmentRoots: mergeRoots(acct.attachmentRoots, top.attachmentRoots),
    remoteAttachmentRoots: mergeRoots(acct.remoteAttachmentRoots, top.remoteAttachmentRoots, acct.attachmentRoots, top.attachmentRoots),
    ...(m.mediaLocalRoots !== undefined ? { mediaLocalRoots: m.mediaLocalRoots.map((r) => expandHome(r.trim())) } : {}),
    allowSms: m.allowSms ?? D.allowSms,
    dmPolicy: m.dmPolicy ?? D.dmPolicy,
    allowFrom: cleanList(m.allowFrom) ?? [],
    // A missing section forces allowlist even over channels.defaults (OpenClaw runtime behaviour).
    groupPolicy: section === undefined ? "allowlist" : (m.groupPolicy ?? cfg.channelDefaults?.groupPolicy ?? D.groupPolicy),
    ...(groupAllowFrom !== undefined ? { groupAllowFrom } : {}),
    groups: m.groups ?? {},
    mediaMaxMb: m.mediaMaxMb ?? D.mediaMaxMb,
    textChunkLimit: m.textChunkLimit ?? D.textChunkLimit,
    // OpenClaw 2026.9 moved chunkMode under streaming; either spelling works, the account's own first.
    chunkMode: acct.streaming?.chunkMode ?? acct.chunkMode ?? top.streaming?.chunkMode ?? top.chunkMode ?? D.chunkMode,
    reactionNotifications: m.reactionNotifications ?? D.reactionNotifications,
    actions: { reactions: m.actions?.reactions ?? D.actions.reactions, reply: m.actions?.reply ?? D.actions.reply },
    reactFallback: m.reactFallback ?? D.reactFallback,
    configWrites: m.configWrites ?? D.configWrites,
    service: m.service ?? D.service,
    region: m.region ?? D.region,
    historyLimit: m.historyLimit ?? cfg.messages.groupChat.historyLimit ?? D.historyLimit,
    dmHistoryLimit: m.dmHistoryLimit ?? D.dmHistoryLimit,
    // An old config's dmHistoryLimit meant turns kept: it keeps that meaning until dmSessionTurns is set.
    dmSessionTurns: m.dmSessionTurns ?? m.dmHistoryLimit ?? D.dmSessionTurns,
    dms: normalizeDms(m.dms),
    ownerTakeoverMinutes: m.ownerTakeoverMinutes ?? D.ownerTakeoverMinutes,
    ...(debounceWindow(cfg.messages.inbound) !== undefined ? { debounceMs: debounceWindow(cfg.messages.inbound) } : {}),
    probeTimeoutMs: m.probeTimeoutMs ?? D.probeTimeoutMs,
    sendReadReceipts: m.sendReadReceipts ?? D.sendReadReceipts,
    ...(responsePrefix !== undefined ? { responsePrefix } : {}),
    ...(m.defaultTo !== undefined ? { defaultTo: m.defaultTo.trim() } : {}),
    maxAgeMinutes: m.maxAgeMinutes ?? D.maxAgeMinutes,
    recoveryMaxAgeMinutes: m.recoveryMaxAgeMinutes ?? D.recoveryMaxAgeMinutes,
    recoveryMaxRows: m.recoveryMaxRows ?? D.recoveryMaxRows,
    replyMaxChars: m.replyMaxChars ?? D.replyMaxChars,
    replyMaxParts: m.replyMaxParts ?? D.replyMaxParts,
    replyOnError: m.replyOnError ?? D.replyOnError,
    loopMaxExchanges: m.loopMaxExchanges ?? D.loopMaxExchanges,
    loopFollowMs: m.loopFollowMs ?? D.loopFollowMs,
    loopEchoRows: m.loopEchoRows ?? D.loopEchoRows,
    sectionMissing: section === undefined,
  };
}
