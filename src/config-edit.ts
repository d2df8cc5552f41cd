// `/config set|unset` from chat: edit a copy of the parsed document, validate it with the real loader, then
// replace the file atomically. Nothing is written unless the whole new config is valid.
import { randomBytes } from "node:crypto";
import { renameSync, statSync, writeFileSync } from "node:fs";
import JSON5 from "json5";
import { buildConfig, type Config, type ImessageAccount } from "./config.ts";
import { ConfigError } from "./errors.ts";

export type ConfigEdit = { op: "set"; path: string[]; value: unknown } | { op: "unset"; path: string[] };

const ROOTS = new Set(["channels", "agents", "bindings", "messages", "session", "commands"]);
/** Keys whose change needs a gateway restart. */
const RESTART_KEYS = new Set(["enabled", "includeAttachments"]);
/**
 * Never editable from chat: what runs programs or where data goes (agents, paths, hosts, roots), and the switches
 * that guard /config itself. A stolen or confused owner session must not turn into code execution.
 */
const PROTECTED = new Set(["agents", "bindings", "commands", "cliPath", "dbPath", "remoteHost", "sshConfig", "attachmentRoots", "remoteAttachmentRoots", "accounts", "configWrites", "defaultAccount", "retentionDays"]);

/**
 * Parses `set <path> <value>` / `unset <path>`. A path not starting with a known top-level key is taken as
 * relative to `channels.imessage`. The value is JSON5 when it parses, else the raw text.
 */
export function parseConfigEdit(args: string): ConfigEdit | { error: string } {
  const m = /^\s*(set|unset)\s+(\S+)\s*([\s\S]*)$/.exec(args);
  if (!m) return { error: "Usage: /config show | /config set <path> <value> | /config unset <path>" };
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

export interface EditResult {
  reply: string;
  config?: Config;
}

/** Validates the edited document with the loader and, when valid, writes it atomically. */
export function commitConfigEdit(cfg: Config, edit: ConfigEdit): EditResult {
  const dotted = edit.path.join(".");
  const next = applyConfigEdit(cfg.raw, edit);
  let config: Config;
  try {
    config = buildConfig(next, cfg.path);
  } catch (e) {
    const msg = e instanceof ConfigError ? e.message.split("\n").slice(1).join("\n").trim() || e.message : (e as Error).message;
    return { reply: `Not saved: the config would be invalid.\n${msg}` };
  }
  const tmp = `${cfg.path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  let mode = 0o600;
  try {
    mode = statSync(cfg.path).mode & 0o600; // never wider than owner read/write: it names who may talk to the agent
  } catch {
    /* new file */
  }
  // "wx": never follow a planted symlink or reuse an existing file at the temp name.
  writeFileSync(tmp, JSON.stringify(next, null, 2) + "\n", { mode, flag: "wx" });
  renameSync(tmp, cfg.path);
  const what = edit.op === "set" ? `${dotted} = ${JSON.stringify(edit.value)}` : `removed ${dotted}`;
  const restart = edit.path.some((p) => RESTART_KEYS.has(p)) ? " Restart the gateway for it to take effect." : " Applied now.";
  return { reply: `Saved ${cfg.path}: ${what}.${restart} (Comments in the file are not kept.)`, config };
}

/** `/config show|set|unset`: only with commands.config, and writes only when configWrites is not false. */
export function configCommand(cfg: Config, account: ImessageAccount, args: string): { reply: string; config?: Config } {
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
    return commitConfigEdit(cfg, edit);
  }
  return { reply: "Usage: /config show | /config set <path> <value> | /config unset <path>" };
}
