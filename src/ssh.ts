// SSH and SCP: remoteHost rules and validation, detection from a cliPath wrapper, SCP downloads and uploads,
// fixed remote commands, known-hosts checks. The only module that runs ssh, scp or ssh-keygen (through proc.ts).
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { posix } from "node:path";
import { errorMessage } from "./errors.ts";
import { finishDownload } from "./files.ts";
import { getLog } from "./log.ts";
import { expandHome } from "./paths.ts";
import { runProcess, type RunResult } from "./proc.ts";
import { clip } from "./text.ts";

/**
 * `host` or `user@host`, nothing else (no spaces, options, paths). Returns the normalized value,
 * or undefined when the value is unsafe to hand to scp/ssh.
 */
export function normalizeRemoteHost(value: string): string | undefined {
  const v = value.trim();
  if (!v || /[\s\u0000-\u001f\u007f]/.test(v) || v.startsWith("-") || /[/\\]/.test(v)) return undefined;
  const at = v.split("@");
  if (at.length > 2) return undefined;
  const [user, host] = at.length === 2 ? [at[0]!, at[1]!] : [undefined, at[0]!];
  if (user !== undefined && !/^[A-Za-z0-9._-]+$/.test(user)) return undefined;
  if (!host || host.startsWith("-")) return undefined;
  const hostOk = /^[A-Za-z0-9._-]+$/.test(host) || /^\[[0-9A-Fa-f:.%]+\]$/.test(host);
  if (!hostOk) return undefined;
  return user !== undefined ? `${user}@${host}` : host;
}

// Quote/shell metacharacters would be reinterpreted by legacy scp's remote shell; glob characters
// because scp (SFTP mode) expands remote globs and could fetch a file other than the one validated.
const UNSAFE_REMOTE_CHARS = /[\\'"`$;|&<>*?[\]\u0000-\u001f\u007f]/;

/** The normalized remote path when it is safe to put after `host:` for scp, else undefined. */
export function validateRemotePath(p: string): string | undefined {
  if (!p.startsWith("/") || UNSAFE_REMOTE_CHARS.test(p)) return undefined;
  // The remote side resolves `..` physically (through symlinks), not lexically as we would: refuse it.
  if (p.split("/").includes("..")) return undefined;
  const norm = posix.normalize(p).replace(/\/+$/, "");
  return norm && norm !== "/" ? norm : undefined;
}

// ---------------------------------------------------------------------------------------------
// remoteHost detection from the SSH wrapper (pure)

const MENTIONS_SSH = /(^|[\s;&|(`'"=/])ssh($|[\s;&|)`'"])/m;

/** True when some line of `text` names `ssh` as a word (a command, a path ending in /ssh, a quoted word). */
export function mentionsSsh(text: string): boolean {
  return MENTIONS_SSH.test(text);
}

/** Outcome of `detectRemoteHost`: a host that passed normalizeRemoteHost, or why there is none. */
export interface DetectedHost {
  host?: string;
  reason: string;
  /** The wrapper's connection options, rewritten so ssh and scp both take them (`-p 2222` → `-o Port=2222`). */
  sshOptions?: string[];
}

// ssh(1) options that take a value, and those that are plain flags.
const SSH_VALUE_OPTS = new Set("BbcDEeFIiJLlmOopQRSWw");
const SSH_FLAG_OPTS = new Set("46AaCfGgKkMNnqsTtVvXxYy");
// -o keys that change where or how ssh connects, so a bare `host` for scp would mean something else.
const SSH_UNSAFE_O_KEYS = new Set(["proxycommand", "proxyjump", "hostname", "localcommand", "permitlocalcommand"]);
// Tokens up to and including the host must be plain words: no quotes, variables or substitutions.
const PLAIN_TOKEN = /^[A-Za-z0-9._@%:=,+/~[\]-]+$/;

// Flags scp takes with the same meaning; the other flags only shape the interactive session.
const SSH_FLAGS_CARRIED = new Set("46C");

const isSshWord = (t: string) => t === "ssh" || /^\/\S*\/ssh$/.test(t);

/**
 * A wrapper option as arguments valid for both ssh and scp (scp spells some differently: `-P` port, `-l` limit),
 * [] for options that do not change where or as whom ssh connects, or a refusal reason.
 */
function carryOption(c: string, value: string): string[] | string {
  switch (c) {
    case "p":
      return /^\d{1,5}$/.test(value) ? ["-o", `Port=${value}`] : `ssh option -p has a bad port (${value})`;
    case "i":
    case "F":
      return [`-${c}`, expandHome(value)];
    case "o":
      return ["-o", value];
    case "c":
      return ["-c", value];
    case "m":
      return ["-o", `MACs=${value}`];
    case "b":
      return ["-o", `BindAddress=${value}`];
    case "B":
      return ["-o", `BindInterface=${value}`];
    case "I":
      return ["-o", `PKCS11Provider=${value}`];
    default:
      return [];
  }
}
const stripQuotes = (t: string) => t.replace(/^['"]+|['"]+$/g, "");

/** Parses one `[exec] ssh [options] [user@]host … imsg …` token list into a host or a failure reason. */
function parseSshLine(toks: string[]): DetectedHost {
  let user: string | undefined;
  const sshOptions: string[] = [];
  let i = 1;
  for (; i < toks.length; i++) {
    const t = toks[i]!;
    if (!PLAIN_TOKEN.test(t)) return { reason: `ssh arguments use shell syntax (${t}); cannot tell the host` };
    if (t === "--") {
      i++;
      break;
    }
    if (!t.startsWith("-") || t === "-") break;
    for (let j = 1; j < t.length; j++) {
      const c = t[j]!;
      if (SSH_FLAG_OPTS.has(c)) {
        if (SSH_FLAGS_CARRIED.has(c)) sshOptions.push(`-${c}`);
        continue;
      }
      if (!SSH_VALUE_OPTS.has(c)) return { reason: `unknown ssh option -${c}` };
      let value = t.slice(j + 1);
      if (!value) {
        const next = toks[++i];
        if (next === undefined) return { reason: `ssh option -${c} has no value` };
        if (!PLAIN_TOKEN.test(next)) return { reason: `ssh option -${c} uses shell syntax (${next})` };
        value = next;
      }
      if (c === "J" || c === "W") return { reason: `ssh uses -${c} (proxy/jump): scp would not reach the same host` };
      if (c === "l") user = value;
      if (c === "o") {
        const [key = "", ...rest] = value.split("=");
        const k = key.toLowerCase();
        if (SSH_UNSAFE_O_KEYS.has(k)) return { reason: `ssh sets -o ${key}: scp would not reach the same host` };
        if (k === "user") user = rest.join("=");
      }
      const carried = carryOption(c, value);
      if (typeof carried === "string") return { reason: carried };
      if (!(c === "o" && value.toLowerCase().startsWith("user="))) sshOptions.push(...carried);
      break;
    }
  }
  const dest = toks[i];
  if (dest === undefined) return { reason: "ssh line has no host" };
  if (!PLAIN_TOKEN.test(dest)) return { reason: `ssh host uses shell syntax (${dest})` };
  if (!toks.slice(i + 1).some((t) => posix.basename(stripQuotes(t)) === "imsg")) {
    return { reason: "ssh line does not run imsg after the host" };
  }
  if (user !== undefined && dest.includes("@")) return { reason: "ssh gives the user twice (-l/User and user@host)" };
  const host = normalizeRemoteHost(user !== undefined ? `${user}@${dest}` : dest);
  return host ? { host, reason: "detected from the ssh line of the cliPath wrapper", sshOptions } : { reason: `unsafe host "${dest}"` };
}

/**
 * remoteHost from an SSH wrapper script. Only plain `[exec] ssh [options] [user@]host … imsg …` lines are
 * recognised; any other line mentioning ssh, or ssh lines that disagree, fail closed with a loggable reason.
 */
export function detectRemoteHost(wrapperText: string): DetectedHost {
  if (wrapperText.includes("\u0000")) return { reason: "cliPath is a binary, not a wrapper script" };
  const lines = wrapperText.replace(/\\\r?\n/g, " ").split(/\r?\n/);
  const hosts = new Set<string>();
  const options = new Set<string>();
  for (const [n, raw] of lines.entries()) {
    const all = raw.trim().split(/\s+/).filter(Boolean);
    const hash = all.findIndex((t) => t.startsWith("#"));
    const toks = hash === -1 ? all : all.slice(0, hash);
    if (toks[0] === "exec") toks.shift();
    if (toks.length === 0) continue;
    if (isSshWord(toks[0]!)) {
      const r = parseSshLine(toks);
      if (!r.host) return { reason: `line ${n + 1}: ${r.reason}` };
      hosts.add(r.host);
      options.add(JSON.stringify(r.sshOptions ?? []));
    } else if (mentionsSsh(toks.join(" "))) {
      return { reason: `line ${n + 1} mentions ssh but is not a plain \`ssh [options] host imsg\` command` };
    }
  }
  if (hosts.size === 0) return { reason: "no ssh command in the cliPath wrapper" };
  if (hosts.size > 1) return { reason: `ssh lines disagree on the host (${[...hosts].join(", ")})` };
  if (options.size > 1) return { reason: "ssh lines disagree on their connection options (-p, -i, -F, -o)" };
  return { host: [...hosts][0]!, reason: "detected from the ssh line of the cliPath wrapper", sshOptions: JSON.parse([...options][0]!) };
}

/** Where the remote host for SCP comes from, and the ssh/scp options that reach it. */
export interface ResolvedRemoteHost {
  host?: string;
  source: "config" | "wrapper" | "none";
  reason?: string;
  /** For every ssh/scp to `host`: the wrapper's options (port, key, config), else `-F sshConfig` when set. */
  sshOptions: string[];
}

/**
 * The account's remote host: the configured `remoteHost`, else detected from the cliPath wrapper (read only
 * when cliPath is a path, not a bare command name). A bad configured value is never replaced by detection.
 */
export function resolveRemoteHost(
  account: { remoteHost?: string; cliPath: string; sshConfig?: string },
  readFile: (path: string) => string = (p) => readFileSync(p, "utf8"),
): ResolvedRemoteHost {
  const configOpts = account.sshConfig ? ["-F", account.sshConfig] : [];
  if (account.remoteHost !== undefined && account.remoteHost.trim() !== "") {
    const host = normalizeRemoteHost(account.remoteHost);
    return host
      ? { host, source: "config", sshOptions: configOpts }
      : { source: "none", reason: "configured remoteHost is unsafe (expected host or user@host)", sshOptions: [] };
  }
  if (!account.cliPath.includes("/")) return { source: "none", reason: "cliPath is a command name, not a wrapper script", sshOptions: [] };
  let text: string;
  try {
    text = readFile(account.cliPath);
  } catch (err) {
    return { source: "none", reason: `cannot read cliPath ${account.cliPath}: ${errorMessage(err)}`, sshOptions: [] };
  }
  const d = detectRemoteHost(text);
  if (!d.host) return { source: "none", reason: d.reason, sshOptions: [] };
  // The wrapper's own -F is what imsg's connection uses; sshConfig only fills in when the wrapper has none.
  const wrapperOpts = d.sshOptions ?? [];
  return { host: d.host, source: "wrapper", reason: d.reason, sshOptions: wrapperOpts.includes("-F") ? wrapperOpts : [...configOpts, ...wrapperOpts] };
}

// ---------------------------------------------------------------------------------------------
// SCP

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The last non-empty stderr lines, one line, bounded (for reasons and logs). */
function stderrSummary(stderr: string): string {
  const lines = stderr.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  return clip(lines.slice(-2).join(" | "));
}

/** Options for one SCP download. */
export interface ScpFetchOptions {
  host: string;
  remotePath: string;
  localPath: string;
  /** Per attempt; also sets ssh ConnectTimeout. */
  timeoutMs: number;
  /** Extra attempts after the first, only while the remote file does not exist yet (still materializing). */
  retries?: number;
  /** Wait before retry n is backoffMs·2^(n-1). */
  backoffMs: number;
  /** Extra ssh options (e.g. `-F <config>`, `-o UserKnownHostsFile=…`); placed after ours, so ours win. */
  sshOptions?: string[];
  scpPath?: string;
  /** A download larger than this is deleted and reported as a failure. */
  maxBytes?: number;
}

/** Outcome of `scpFetch`. */
export type ScpFetchResult = { ok: true; size: number } | { ok: false; reason: string; hostKeyUnknown?: boolean };

type AttemptVerdict = { retry: boolean; reason: string; hostKeyUnknown?: boolean };

/** Classifies a failed scp/ssh run from its stderr (regexes: Deno prints `/usr/bin/scp:` where Bun prints `scp:`). */
function classifyScpFailure(host: string, r: RunResult, timeoutMs: number, tool = "scp"): AttemptVerdict {
  if (r.spawnError) return { retry: false, reason: `cannot run ${tool}: ${r.spawnError}` };
  if (r.timedOut) return { retry: false, reason: `${tool} timed out after ${timeoutMs} ms` };
  const err = r.stderr;
  const detail = stderrSummary(err);
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED/i.test(err)) {
    return { retry: false, reason: `host key for ${host} has CHANGED; refusing (verify the Mac's key, then fix known_hosts): ${detail}` };
  }
  if (/Host key verification failed/i.test(err)) {
    const hostname = host.replace(/^.*@/, "");
    return {
      retry: false,
      hostKeyUnknown: true,
      reason:
        `host key for ${host} is not in known_hosts; add it once with \`ssh-keyscan ${hostname} >> ~/.ssh/known_hosts\` or by running \`ssh ${host}\` interactively`,
    };
  }
  if (/No such file or directory/i.test(err)) return { retry: true, reason: `remote file not found: ${detail}` };
  if (/Permission denied/i.test(err)) return { retry: false, reason: `permission denied (ssh key not authorized or file unreadable): ${detail}` };
  return { retry: false, reason: `${tool} failed (exit ${r.code}): ${detail || "no error output"}` };
}

/**
 * Downloads `host:remotePath` to `localPath` with strict host-key checking and no prompts. Host and path are
 * validated before anything is spawned; the file lands under a temp name and is renamed (no half files), 0600.
 */
export async function scpFetch(opts: ScpFetchOptions): Promise<ScpFetchResult> {
  const log = getLog("ssh");
  const host = normalizeRemoteHost(opts.host);
  if (!host) return { ok: false, reason: "invalid remote host for SCP" };
  const remotePath = validateRemotePath(opts.remotePath);
  if (!remotePath) return { ok: false, reason: "invalid remote path for SCP" };
  const retries = Math.max(0, opts.retries ?? 3);
  const dir = posix.dirname(opts.localPath);
  const tmp = posix.join(dir, `.${posix.basename(opts.localPath)}.${randomBytes(4).toString("hex")}.part`);
  const args = [
    // SFTP mode: the remote path is never handed to a remote shell (the legacy scp protocol splits it on spaces).
    "-s",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `ConnectTimeout=${Math.max(1, Math.ceil(opts.timeoutMs / 1000))}`,
    ...(opts.sshOptions ?? []),
    "--",
    `${host}:${remotePath}`,
    tmp,
  ];
  for (let attempt = 0;; attempt++) {
    if (attempt > 0) await sleep(opts.backoffMs * 2 ** (attempt - 1));
    const r = await runProcess(opts.scpPath ?? "scp", args, { timeoutMs: opts.timeoutMs });
    if (r.code === 0 && !r.timedOut) return await finishDownload(tmp, opts.localPath, opts.maxBytes);
    await rm(tmp, { force: true, recursive: true });
    const v = classifyScpFailure(host, r, opts.timeoutMs);
    if (!v.retry || attempt >= retries) {
      return v.hostKeyUnknown ? { ok: false, reason: v.reason, hostKeyUnknown: true } : { ok: false, reason: v.reason };
    }
    log.debug(`scp attempt ${attempt + 1} failed, retrying: ${v.reason}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Uploads and fixed remote commands (staging outbound files on the Mac)

/** Where one ssh/scp goes: a host from resolveRemoteHost with its options, and a per-run deadline. */
export interface SshTarget {
  host: string;
  sshOptions: string[];
  timeoutMs: number;
}

/** Outcome of `sshRun` / `scpPut`. */
export type SshResult = { ok: true; stdout: string } | { ok: false; reason: string };

/** Ours first: ssh takes the first value it sees for an option, so a wrapper's StrictHostKeyChecking=no loses. */
const strictOptions = (t: SshTarget) => [
  "-o",
  "BatchMode=yes",
  "-o",
  "StrictHostKeyChecking=yes",
  "-o",
  `ConnectTimeout=${Math.max(1, Math.ceil(t.timeoutMs / 1000))}`,
  ...t.sshOptions,
];

/** A remote path validated and single-quoted for the remote shell (validation excludes quotes), or undefined. */
export function quoteRemotePath(p: string): string | undefined {
  const v = validateRemotePath(p);
  return v === undefined ? undefined : `'${v}'`;
}

/**
 * Runs `command` on the host. The remote login shell parses it, so callers pass only constant text and
 * `quoteRemotePath` output: nothing from a message or model ever reaches it.
 */
export async function sshRun(t: SshTarget, command: string): Promise<SshResult> {
  const host = normalizeRemoteHost(t.host);
  if (!host) return { ok: false, reason: "invalid remote host for ssh" };
  const r = await runProcess("ssh", ["-T", ...strictOptions(t), "--", host, command], { timeoutMs: t.timeoutMs });
  if (r.code === 0 && !r.timedOut) return { ok: true, stdout: r.stdout };
  return { ok: false, reason: classifyScpFailure(host, r, t.timeoutMs, "ssh").reason };
}

/** Uploads `localPath` (absolute) to `host:remotePath` in SFTP mode with strict host keys and no prompts. */
export async function scpPut(t: SshTarget, localPath: string, remotePath: string): Promise<SshResult> {
  const host = normalizeRemoteHost(t.host);
  if (!host) return { ok: false, reason: "invalid remote host for SCP" };
  const dest = validateRemotePath(remotePath);
  if (!dest) return { ok: false, reason: "invalid remote path for SCP" };
  // An absolute local path: scp cannot mistake a colon in it for `host:`.
  if (!localPath.startsWith("/")) return { ok: false, reason: "local path for SCP is not absolute" };
  const r = await runProcess("scp", ["-s", ...strictOptions(t), "--", localPath, `${host}:${dest}`], { timeoutMs: t.timeoutMs });
  if (r.code === 0 && !r.timedOut) return { ok: true, stdout: r.stdout };
  return { ok: false, reason: classifyScpFailure(host, r, t.timeoutMs).reason };
}

// ---------------------------------------------------------------------------------------------
// Known hosts

/** Host-key lookup name and known_hosts files for a host, as ssh itself resolves them (`ssh -G`). */
async function resolveKnownHostsQuery(host: string, sshOptions: string[]): Promise<{ name: string; files: string[] }> {
  const bare = host.replace(/^.*@/, "").replace(/^\[(.*)\]$/, "$1");
  const r = await runProcess("ssh", [...sshOptions, "-G", "--", bare], { timeoutMs: 5000 });
  if (r.code !== 0) return { name: bare, files: [] };
  const cfg = new Map<string, string>();
  for (const line of r.stdout.split("\n")) {
    const sp = line.indexOf(" ");
    if (sp > 0) cfg.set(line.slice(0, sp).toLowerCase(), line.slice(sp + 1).trim());
  }
  const hostname = cfg.get("hostkeyalias") ?? cfg.get("hostname") ?? bare;
  const port = cfg.get("port") ?? "22";
  const files = [cfg.get("userknownhostsfile"), cfg.get("globalknownhostsfile")]
    .flatMap((v) => (v ? v.split(/\s+/) : []))
    .filter((f) => f && f !== "none")
    .map(expandHome);
  return { name: port === "22" || cfg.has("hostkeyalias") ? hostname : `[${hostname}]:${port}`, files };
}

/**
 * True when the host's key is already known (what strict host-key checking needs), via `ssh-keygen -F`.
 * Without `knownHostsPath` the files ssh would use are checked; `sshOptions` (e.g. `-F cfg`) resolve aliases.
 */
export async function checkKnownHost(host: string, knownHostsPath?: string, sshOptions: string[] = []): Promise<boolean> {
  const h = normalizeRemoteHost(host);
  if (!h) return false;
  const q = await resolveKnownHostsQuery(h, sshOptions);
  const files = knownHostsPath ? [knownHostsPath] : q.files;
  if (files.length === 0) return (await runProcess("ssh-keygen", ["-F", q.name], { timeoutMs: 5000 })).code === 0;
  for (const f of files) {
    const r = await runProcess("ssh-keygen", ["-F", q.name, "-f", f], { timeoutMs: 5000 });
    if (r.code === 0 && r.stdout.trim() !== "") return true;
  }
  return false;
}
