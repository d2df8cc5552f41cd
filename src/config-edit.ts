// `/config set|unset` from chat: edit a copy of the document the gateway loaded, validate it with the real loader,
// check that nothing protected (and, for a one-account owner, no other account) changed in the RESOLVED config,
// then replace the file atomically. Nothing is written unless every check passes.
import { randomBytes } from "node:crypto";
import { chmodSync, readFileSync, realpathSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import JSON5 from "json5";
import { buildConfig, type Config, type ImessageAccount, resolveAccount } from "./config.ts";
import { ConfigError, errorMessage } from "./errors.ts";

export type ConfigEdit = { op: "set"; path: string[]; value: unknown } | { op: "unset"; path: string[] };

const ROOTS = new Set(["channels", "agents", "bindings", "messages", "session", "commands"]);
/** Keys whose change needs a gateway restart. */
const RESTART_KEYS = new Set(["enabled", "includeAttachments"]);
/**
 * Never editable from chat: what runs programs or where data goes (agents, paths, hosts, roots), and the switches
 * that guard /config itself. A stolen or confused owner session must not turn into code execution.
 * This path check only gives a clear early refusal; the real guard is `protectedChanges` on the resolved config.
 */
const PROTECTED = new Set([
  "agents",
  "bindings",
  "commands",
  "cliPath",
  "dbPath",
  "remoteHost",
  "sshConfig",
  "attachmentRoots",
  "remoteAttachmentRoots",
  "mediaLocalRoots",
  "allowSms",
  "accounts",
  "configWrites",
  "defaultAccount",
  "retentionDays",
]);
/** Resolved per-account values that must come out of an edit unchanged, however the edit was spelt. */
// allowSms: a forged SMS must not be able to open the door for forged SMS; mediaLocalRoots: what files may leave.
const GUARDED_ACCOUNT_KEYS = [
  "cliPath",
  "dbPath",
  "remoteHost",
  "sshConfig",
  "attachmentRoots",
  "remoteAttachmentRoots",
  "mediaLocalRoots",
  "allowSms",
  "configWrites",
] as const;

const USAGE = "Usage: /config show | /config set <path> <value> | /config unset <path>";
const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/**
 * Parses `set <path> <value>` / `unset <path>`. A path not starting with a known top-level key is taken as
 * relative to `channels.imessage`. The value is JSON5 when it parses, else the raw text.
 */
export function parseConfigEdit(args: string): ConfigEdit | { error: string } {
  const m = /^\s*(set|unset)\s+(\S+)\s*([\s\S]*)$/.exec(args);
  if (!m) return { error: USAGE };
  const [, op, rawPath, rest] = m as unknown as [string, "set" | "unset", string, string];
  const parts = rawPath.split(".").filter(Boolean);
  if (!parts.length || parts.some((p) => p === "__proto__" || p === "constructor" || p === "prototype")) return { error: `invalid path "${rawPath}"` };
  const path = ROOTS.has(parts[0]!) ? parts : ["channels", "imessage", ...parts];
  const editable = (path[0] === "channels" && path[1] === "imessage") || path[0] === "messages" || path[0] === "session";
  if (!editable || path.some((p) => PROTECTED.has(p))) return { error: `${path.join(".")} cannot be changed from chat; edit the config file` };
  if (op === "unset") return rest.trim() ? { error: "unset takes no value" } : { op, path };
  if (!rest.trim()) return { error: `set ${rawPath} needs a value` };
  let value: unknown;
  try {
    value = JSON5.parse(rest.trim());
  } catch {
    value = rest.trim();
  }
  return { op, path, value };
}

/** Applies an edit to a deep copy of the document. Pure. */
export function applyConfigEdit(doc: Record<string, unknown>, edit: ConfigEdit): Record<string, unknown> {
  const out = structuredClone(doc);
  let node: Record<string, unknown> = out;
  for (const key of edit.path.slice(0, -1)) {
    const next = node[key];
    if (next === undefined && edit.op === "unset") return out;
    if (next === null || typeof next !== "object" || Array.isArray(next)) {
      if (edit.op === "unset") return out;
      node[key] = {};
    }
    node = node[key] as Record<string, unknown>;
  }
  const last = edit.path.at(-1)!;
  if (edit.op === "set") node[last] = edit.value;
  else delete node[last];
  return out;
}

/**
 * Moves a `channels.imessage.<key>…` edit into `channels.imessage.accounts.<id>.<key>…`, so it changes one account
 * only. Pure. Returns the document to edit too: when the edit reaches inside a key the account inherits (e.g.
 * `groups.42.requireMention`), the account first gets its own copy of the inherited value, because overrides are
 * shallow and a bare `{ "42": … }` would drop the other groups for this account.
 */
export function scopeToAccount(
  doc: Record<string, unknown>,
  edit: ConfigEdit,
  accountId: string,
): { doc: Record<string, unknown>; edit: ConfigEdit } | { error: string } {
  const [root, channel, key] = edit.path;
  if (root !== "channels" || channel !== "imessage" || key === undefined) {
    return { error: `${edit.path.join(".")} applies to every account; only an owner of every account may change it` };
  }
  const path = ["channels", "imessage", "accounts", accountId, ...edit.path.slice(2)];
  const im = isObj(doc.channels) && isObj(doc.channels.imessage) ? doc.channels.imessage : {};
  const own = isObj(im.accounts) && isObj(im.accounts[accountId]) ? im.accounts[accountId] : {};
  let out = doc;
  if (edit.path.length > 3 && !(key in own) && typeof im[key] === "object" && im[key] !== null) {
    out = applyConfigEdit(doc, { op: "set", path: path.slice(0, 5), value: structuredClone(im[key]) });
  }
  return { doc: out, edit: { ...edit, path } };
}

/** What an edit must leave alone, by name: the protected part of the resolved config. */
function guardedValues(cfg: Config): Map<string, unknown> {
  const out = new Map<string, unknown>();
  // Outside channels.imessage, messages and session nothing is editable: other channels' secrets, agents, bindings.
  const { channels, messages: _m, session: _s, ...rest } = cfg.raw;
  for (const [k, val] of Object.entries(rest)) out.set(k, val);
  if (isObj(channels)) { for (const [k, val] of Object.entries(channels)) if (k !== "imessage") out.set(`channels.${k}`, val); }
  out.set("agents", cfg.agents);
  out.set("bindings", cfg.bindings);
  out.set("commands", cfg.commands);
  out.set("channels.imessage.accounts (the account list)", cfg.accountIds);
  out.set("channels.imessage.defaultAccount", cfg.defaultAccount);
  out.set("channels.imessage.retentionDays", cfg.retentionDays);
  for (const id of cfg.accountIds) {
    const a = resolveAccount(cfg, id);
    for (const k of GUARDED_ACCOUNT_KEYS) out.set(`${k} (account ${id})`, a[k]);
  }
  return out;
}

/** Names of protected values that differ between two configs. Pure. */
export function protectedChanges(before: Config, after: Config): string[] {
  const a = guardedValues(before);
  const b = guardedValues(after);
  return [...new Set([...a.keys(), ...b.keys()])].filter((k) => !isDeepStrictEqual(a.get(k), b.get(k)));
}

/** Whether anything but `accountId`'s resolved account changed (other accounts, session, messages). Pure. */
export function changesOtherAccounts(before: Config, after: Config, accountId: string): boolean {
  if (!isDeepStrictEqual(before.session, after.session) || !isDeepStrictEqual(before.messages, after.messages)) return true;
  if (!isDeepStrictEqual(before.accountIds, after.accountIds)) return true;
  return before.accountIds.some((id) => id !== accountId && !isDeepStrictEqual(resolveAccount(before, id), resolveAccount(after, id)));
}

export interface EditResult {
  reply: string;
  config?: Config;
}

export interface CommitOptions {
  /** Confine the edit to this account's override (the sender is not an owner of every account). */
  accountId?: string;
}

/**
 * Re-reads the file, checks it is still what the running config came from, applies and validates the edit,
 * refuses any change to protected values (or, with `accountId`, to other accounts), and writes atomically.
 * Never throws for a refused or failed edit: the reply says why (the caller records it as the command's answer).
 */
export function commitConfigEdit(cfg: Config, edit: ConfigEdit, opts: CommitOptions = {}): EditResult {
  let target: string;
  let disk: unknown;
  try {
    target = realpathSync(cfg.path); // write through a symlink (dotfiles) to its target, keeping the link
    disk = JSON5.parse(readFileSync(target, "utf8").replace(/^\uFEFF/, ""));
  } catch (e) {
    return { reply: `Not saved: cannot read ${cfg.path}: ${errorMessage(e)}` };
  }
  // Editing the copy loaded at startup would silently revert whatever the operator wrote since.
  if (!isDeepStrictEqual(disk, cfg.raw)) {
    return { reply: "Not saved: the config file changed on disk since the gateway loaded it; restart or edit the file." };
  }
  let doc = cfg.raw;
  if (opts.accountId !== undefined) {
    const scoped = scopeToAccount(doc, edit, opts.accountId);
    if ("error" in scoped) return { reply: `Not saved: ${scoped.error}.` };
    ({ doc, edit } = scoped);
  }
  const dotted = edit.path.join(".");
  const next = applyConfigEdit(doc, edit);
  if (isDeepStrictEqual(next, cfg.raw)) return { reply: `Nothing changed: ${dotted} is not set in the file.` };
  let config: Config;
  try {
    config = buildConfig(next, cfg.path);
  } catch (e) {
    const msg = e instanceof ConfigError ? e.message.split("\n").slice(1).join("\n").trim() || e.message : errorMessage(e);
    return { reply: `Not saved: the config would be invalid.\n${msg}` };
  }
  const touched = protectedChanges(cfg, config);
  if (touched.length) return { reply: `Not saved: ${touched.join(", ")} cannot be changed from chat; edit the config file.` };
  if (opts.accountId !== undefined && changesOtherAccounts(cfg, config, opts.accountId)) {
    return { reply: `Not saved: the edit would change more than account ${opts.accountId}; only an owner of every account may do that.` };
  }
  try {
    writeAtomic(target, JSON.stringify(next, null, 2) + "\n");
  } catch (e) {
    return { reply: `Not saved: ${errorMessage(e)}` };
  }
  const what = edit.op === "set" ? `${dotted} = ${JSON.stringify(edit.value)}` : `removed ${dotted}`;
  const only = opts.accountId !== undefined ? ` (account ${opts.accountId} only)` : "";
  const restart = edit.path.some((p) => RESTART_KEYS.has(p)) ? " Restart the gateway for it to take effect." : " Applied now.";
  return { reply: `Saved ${cfg.path}: ${what}${only}.${restart} (Comments in the file are not kept.)`, config };
}

/** Replaces `file` by a temp file in its own directory + rename; keeps its mode, but never wider than 0600. */
function writeAtomic(file: string, text: string): void {
  // Never wider than owner read/write: the file names who may talk to the agent.
  const mode = statSync(file).mode & 0o600;
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    // "wx": never follow a planted symlink or reuse an existing file at the temp name.
    writeFileSync(tmp, text, { mode, flag: "wx" });
    chmodSync(tmp, mode); // the umask may have narrowed it; keep the file's own mode
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never created */
    }
    throw e;
  }
}

export interface ConfigCommandContext {
  /** Whether the sender is an owner of this account (the caller's owner rule, applied to any account). */
  ownerOf: (account: ImessageAccount) => boolean;
}

/**
 * `/config show|set|unset`: only with commands.config, and writes only when configWrites is not false. `account` is
 * the account the command came in on; the sender must already be its owner. Unless the sender owns every account,
 * edits go to that account's override only.
 */
export function configCommand(cfg: Config, account: ImessageAccount, args: string, ctx: ConfigCommandContext): EditResult {
  if (!cfg.commands.config) return { reply: "Config commands are disabled (set commands.config: true to enable /config)." };
  const [sub] = args.trim().split(/\s+/);
  if (!sub || sub === "show") {
    const section = (cfg.raw.channels as Record<string, unknown> | undefined)?.imessage ?? {};
    return { reply: JSON.stringify(section, null, 2).slice(0, 3500) };
  }
  if (sub === "set" || sub === "unset") {
    if (!account.configWrites) return { reply: "Config writes are disabled for imessage (channels.imessage.configWrites is false)." };
    const edit = parseConfigEdit(args);
    if ("error" in edit) return { reply: edit.error };
    const ownsAll = cfg.accountIds.every((id) => ctx.ownerOf(resolveAccount(cfg, id)));
    return commitConfigEdit(cfg, edit, ownsAll ? {} : { accountId: account.accountId });
  }
  return { reply: USAGE };
}
