// Attachment handling: root patterns, path validation, remoteHost validation and detection, SCP fetch,
// the per-session media cache. normalizeRemoteHost and isValidRootPattern are shared with config validation.
import { spawn } from "node:child_process";
import { randomBytes, createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { chmod, copyFile, lstat, mkdir, readdir, realpath, rename, rm, rmdir } from "node:fs/promises";
import { homedir } from "node:os";
import { posix } from "node:path";
import type { ImessageAccount } from "./config.ts";
import type { ImsgAttachment } from "./imsg.ts";
import { errorMessage } from "./errors.ts";
import { getLog } from "./log.ts";

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

/** An absolute POSIX root pattern whose segments are either exactly `*` or contain no `*`. */
export function isValidRootPattern(pattern: string): boolean {
  if (!pattern.startsWith("/") || pattern.includes("\u0000")) return false;
  const segs = pattern.split("/").filter(Boolean);
  if (segs.length === 0) return false;
  return segs.every((s) => s === "*" || !s.includes("*")) && !segs.includes("..") && !segs.includes(".");
}

// ---------------------------------------------------------------------------------------------
// Path policy (pure)

/** Segments of a normalized absolute candidate path, or undefined when it can never be allowed. */
function candidateSegments(path: string): string[] | undefined {
  if (!path || path.includes("\u0000")) return undefined;
  // Normalize first so `..` is collapsed before matching: traversal only lands inside a root if the
  // normalized path really is inside it.
  const norm = posix.normalize(path);
  if (!norm.startsWith("/")) return undefined;
  const segs = norm.split("/").filter(Boolean);
  return segs.length === 0 ? undefined : segs;
}

/** True when `path` (normalized) is the root or below it; a `*` in the root matches exactly one segment. */
export function matchesRoot(path: string, rootPattern: string): boolean {
  const segs = candidateSegments(path);
  if (!segs || !isValidRootPattern(rootPattern)) return false;
  const root = rootPattern.split("/").filter(Boolean);
  if (segs.length < root.length) return false;
  return root.every((r, i) => r === "*" || r === segs[i]);
}

/** True when `path` matches at least one root pattern; no roots means nothing is allowed. */
export function isPathAllowed(path: string, roots: readonly string[]): boolean {
  return roots.some((r) => matchesRoot(path, r));
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

/** Outcome of `detectRemoteHost`: a host that passed normalizeRemoteHost, or why there is none. */
export interface DetectedHost {
  host?: string;
  reason: string;
}

// ssh(1) options that take a value, and those that are plain flags.
const SSH_VALUE_OPTS = new Set("BbcDEeFIiJLlmOopQRSWw");
const SSH_FLAG_OPTS = new Set("46AaCfGgKkMNnqsTtVvXxYy");
// -o keys that change where or how ssh connects, so a bare `host` for scp would mean something else.
const SSH_UNSAFE_O_KEYS = new Set(["proxycommand", "proxyjump", "hostname", "localcommand", "permitlocalcommand"]);
// Tokens up to and including the host must be plain words: no quotes, variables or substitutions.
const PLAIN_TOKEN = /^[A-Za-z0-9._@%:=,+/~[\]-]+$/;

const isSshWord = (t: string) => t === "ssh" || /^\/\S*\/ssh$/.test(t);
const stripQuotes = (t: string) => t.replace(/^['"]+|['"]+$/g, "");

/** Parses one `[exec] ssh [options] [user@]host … imsg …` token list into a host or a failure reason. */
function parseSshLine(toks: string[]): DetectedHost {
  let user: string | undefined;
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
      if (SSH_FLAG_OPTS.has(c)) continue;
      if (!SSH_VALUE_OPTS.has(c)) return { reason: `unknown ssh option -${c}` };
      let value = t.slice(j + 1);
      if (!value) {
        const next = toks[++i];
        if (next === undefined) return { reason: `ssh option -${c} has no value` };
        if (!PLAIN_TOKEN.test(next)) return { reason: `ssh option -${c} uses shell syntax (${next})` };
        value = next;
      }
      if (c === "F") return { reason: "ssh uses -F <config>: the host alias may mean something else to scp" };
      if (c === "J" || c === "W") return { reason: `ssh uses -${c} (proxy/jump): scp would not reach the same host` };
      if (c === "l") user = value;
      if (c === "o") {
        const [key = "", ...rest] = value.split("=");
        const k = key.toLowerCase();
        if (SSH_UNSAFE_O_KEYS.has(k)) return { reason: `ssh sets -o ${key}: scp would not reach the same host` };
        if (k === "user") user = rest.join("=");
      }
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
  return host ? { host, reason: "detected from the ssh line of the cliPath wrapper" } : { reason: `unsafe host "${dest}"` };
}

/**
 * remoteHost from an SSH wrapper script. Only plain `[exec] ssh [options] [user@]host … imsg …` lines are
 * recognised; any other line mentioning ssh, or ssh lines that disagree, fail closed with a loggable reason.
 */
export function detectRemoteHost(wrapperText: string): DetectedHost {
  if (wrapperText.includes("\u0000")) return { reason: "cliPath is a binary, not a wrapper script" };
  const lines = wrapperText.replace(/\\\r?\n/g, " ").split(/\r?\n/);
  const hosts = new Set<string>();
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
    } else if (/(^|[\s;&|(`'"=/])ssh($|[\s;&|)`'"])/.test(toks.join(" "))) {
      return { reason: `line ${n + 1} mentions ssh but is not a plain \`ssh [options] host imsg\` command` };
    }
  }
  if (hosts.size === 0) return { reason: "no ssh command in the cliPath wrapper" };
  if (hosts.size > 1) return { reason: `ssh lines disagree on the host (${[...hosts].join(", ")})` };
  return { host: [...hosts][0]!, reason: "detected from the ssh line of the cliPath wrapper" };
}

/** Where the remote host for SCP comes from. */
export interface ResolvedRemoteHost {
  host?: string;
  source: "config" | "wrapper" | "none";
  reason?: string;
}

/**
 * The account's remote host: the configured `remoteHost`, else detected from the cliPath wrapper (read only
 * when cliPath is a path, not a bare command name). A bad configured value is never replaced by detection.
 */
export function resolveRemoteHost(
  account: Pick<ImessageAccount, "remoteHost" | "cliPath">,
  readFile: (path: string) => string = (p) => readFileSync(p, "utf8"),
): ResolvedRemoteHost {
  if (account.remoteHost !== undefined && account.remoteHost.trim() !== "") {
    const host = normalizeRemoteHost(account.remoteHost);
    return host ? { host, source: "config" } : { source: "none", reason: "configured remoteHost is unsafe (expected host or user@host)" };
  }
  if (!account.cliPath.includes("/")) return { source: "none", reason: "cliPath is a command name, not a wrapper script" };
  let text: string;
  try {
    text = readFile(account.cliPath);
  } catch (err) {
    return { source: "none", reason: `cannot read cliPath ${account.cliPath}: ${errorMessage(err)}` };
  }
  const d = detectRemoteHost(text);
  return d.host ? { host: d.host, source: "wrapper", reason: d.reason } : { source: "none", reason: d.reason };
}

// ---------------------------------------------------------------------------------------------
// Media kinds (pure)

/** Coarse kind of an attachment, used for `<media:…>` placeholders. */
export type MediaKind = "image" | "video" | "audio" | "document" | "attachment";

/** The media kind for a MIME type; unknown or empty types are `attachment`. */
export function mediaKind(mime: string | undefined): MediaKind {
  const m = (mime ?? "").trim().toLowerCase();
  if (m.startsWith("image/")) return "image";
  if (m.startsWith("video/")) return "video";
  if (m.startsWith("audio/")) return "audio";
  if (m.startsWith("text/") || m.startsWith("application/")) return m === "application/octet-stream" ? "attachment" : "document";
  return "attachment";
}

/** `<media:kind>` from the first attachment's kind (what the model sees for a media-only message); "" for none. */
export function mediaPlaceholder(kinds: readonly MediaKind[]): string {
  return kinds.length > 0 ? `<media:${kinds[0]}>` : "";
}

// ---------------------------------------------------------------------------------------------
// Safe names (pure)

const utf8 = new TextEncoder();

/** Cuts `s` (by code points) so that it fits in `maxBytes` of UTF-8. */
function truncateUtf8(s: string, maxBytes: number): string {
  let out = "";
  for (const ch of s) {
    if (utf8.encode(out + ch).length > maxBytes) break;
    out += ch;
  }
  return out;
}

/**
 * A sender-chosen transfer name made safe as a file name: basename only, no control characters, no leading
 * dots or dashes, only letters/digits/`._ -`, stem ≤ 100 UTF-8 bytes, extension ≤ 10 alphanumerics.
 */
export function sanitizeFileName(name: string): { stem: string; ext: string } {
  const base = name.replace(/\\/g, "/").split("/").filter(Boolean).pop() ?? "";
  const clean = base.replace(/[^\p{L}\p{N}._ -]/gu, "_");
  const m = /^(.*?)(\.[A-Za-z0-9]{1,10})?$/.exec(clean)!;
  const ext = (m[2] ?? "").toLowerCase();
  const stem = truncateUtf8((m[1] ?? "").replace(/^[.\s_-]+/, "").replace(/\s+/g, " ").trim(), 100).trim();
  return { stem: stem || "attachment", ext };
}

/** A directory name for a session key: readable, filesystem-safe, and collision-free (hash suffix). */
export function safeSessionDirName(sessionKey: string): string {
  const readable = sessionKey.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._-]+/, "").slice(0, 80);
  const hash = createHash("sha256").update(sessionKey).digest("hex").slice(0, 8);
  return `${readable || "session"}-${hash}`;
}

// ---------------------------------------------------------------------------------------------
// Processes

interface ProcResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  spawnError?: string;
}

const OUTPUT_CAP = 16_384;

/** Runs a command (argument array, never a shell) with a deadline; never rejects. */
function runProcess(cmd: string, args: string[], timeoutMs: number): Promise<ProcResult> {
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let settled = false;
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    const finish = (r: Omit<ProcResult, "stdout" | "stderr" | "timedOut">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      resolve({ ...r, stdout, stderr, timedOut });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
      // scp forwards SIGTERM to its ssh child; SIGKILL only if it ignores us.
      killTimer = setTimeout(() => child.kill("SIGKILL"), 1000);
    }, timeoutMs);
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      if (stdout.length < OUTPUT_CAP) stdout += d;
    });
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < OUTPUT_CAP) stderr += d;
    });
    child.on("error", (err) => finish({ code: null, spawnError: err.message }));
    child.on("close", (code) => finish({ code }));
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The last non-empty stderr lines, one line, bounded (for reasons and logs). */
function stderrSummary(stderr: string): string {
  const lines = stderr.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const s = lines.slice(-2).join(" | ");
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
}

// ---------------------------------------------------------------------------------------------
// SCP

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

/** Classifies a failed scp run from its stderr (regexes: Deno prints `/usr/bin/scp:` where Bun prints `scp:`). */
function classifyScpFailure(host: string, r: ProcResult, timeoutMs: number): AttemptVerdict {
  if (r.spawnError) return { retry: false, reason: `cannot run scp: ${r.spawnError}` };
  if (r.timedOut) return { retry: false, reason: `scp timed out after ${timeoutMs} ms` };
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
      reason: `host key for ${host} is not in known_hosts; add it once with \`ssh-keyscan ${hostname} >> ~/.ssh/known_hosts\` or by running \`ssh ${host}\` interactively`,
    };
  }
  if (/No such file or directory/i.test(err)) return { retry: true, reason: `remote file not found: ${detail}` };
  if (/Permission denied/i.test(err)) return { retry: false, reason: `permission denied (ssh key not authorized or file unreadable): ${detail}` };
  return { retry: false, reason: `scp failed (exit ${r.code}): ${detail || "no error output"}` };
}

/**
 * Downloads `host:remotePath` to `localPath` with strict host-key checking and no prompts. Host and path are
 * validated before anything is spawned; the file lands under a temp name and is renamed (no half files), 0600.
 */
export async function scpFetch(opts: ScpFetchOptions): Promise<ScpFetchResult> {
  const log = getLog("attachments");
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
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=yes",
    "-o", `ConnectTimeout=${Math.max(1, Math.ceil(opts.timeoutMs / 1000))}`,
    ...(opts.sshOptions ?? []),
    "--", `${host}:${remotePath}`, tmp,
  ];
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0) await sleep(opts.backoffMs * 2 ** (attempt - 1));
    const r = await runProcess(opts.scpPath ?? "scp", args, opts.timeoutMs);
    if (r.code === 0 && !r.timedOut) return await finishDownload(tmp, opts.localPath, opts.maxBytes);
    await rm(tmp, { force: true, recursive: true });
    const v = classifyScpFailure(host, r, opts.timeoutMs);
    if (!v.retry || attempt >= retries) {
      return v.hostKeyUnknown ? { ok: false, reason: v.reason, hostKeyUnknown: true } : { ok: false, reason: v.reason };
    }
    log.debug(`scp attempt ${attempt + 1} failed, retrying: ${v.reason}`);
  }
}

/** Checks the downloaded temp file, then moves it into place with owner-only permissions. */
async function finishDownload(tmp: string, dest: string, maxBytes?: number): Promise<ScpFetchResult> {
  try {
    const st = await lstat(tmp);
    if (!st.isFile()) throw new Error("download is not a regular file");
    if (maxBytes !== undefined && st.size > maxBytes) throw new Error(sizeReason(st.size, maxBytes));
    await chmod(tmp, 0o600);
    await rename(tmp, dest);
    return { ok: true, size: st.size };
  } catch (err) {
    await rm(tmp, { force: true, recursive: true });
    return { ok: false, reason: errorMessage(err) };
  }
}

function sizeReason(size: number, maxBytes: number): string {
  return `attachment is ${size} bytes, above the ${maxBytes}-byte limit`;
}

/** Host-key lookup name and known_hosts files for a host, as ssh itself resolves them (`ssh -G`). */
async function resolveKnownHostsQuery(host: string, sshOptions: string[]): Promise<{ name: string; files: string[] }> {
  const bare = host.replace(/^.*@/, "").replace(/^\[(.*)\]$/, "$1");
  const r = await runProcess("ssh", [...sshOptions, "-G", "--", bare], 5000);
  if (r.code !== 0) return { name: bare, files: [] };
  const cfg = new Map<string, string>();
  for (const line of r.stdout.split("\n")) {
    const sp = line.indexOf(" ");
    if (sp > 0) cfg.set(line.slice(0, sp).toLowerCase(), line.slice(sp + 1).trim());
  }
  const hostname = cfg.get("hostkeyalias") ?? cfg.get("hostname") ?? bare;
  const port = cfg.get("port") ?? "22";
  const expand = (f: string) => (f.startsWith("~/") ? posix.join(homedir(), f.slice(2)) : f);
  const files = [cfg.get("userknownhostsfile"), cfg.get("globalknownhostsfile")]
    .flatMap((v) => (v ? v.split(/\s+/) : []))
    .filter((f) => f && f !== "none")
    .map(expand);
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
  if (files.length === 0) return (await runProcess("ssh-keygen", ["-F", q.name], 5000)).code === 0;
  for (const f of files) {
    const r = await runProcess("ssh-keygen", ["-F", q.name, "-f", f], 5000);
    if (r.code === 0 && r.stdout.trim() !== "") return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Local files and the media cache

/** Outcome of `checkLocalAttachment`. */
export type LocalCheck = { ok: true; path: string; size: number } | { ok: false; reason: string };

/**
 * Whether a local attachment may be read: inside the roots, a regular file (a symlink is refused even inside
 * a root, as is a path that leaves the roots through a symlinked directory), present, and ≤ maxBytes.
 */
export async function checkLocalAttachment(path: string, roots: readonly string[], maxBytes: number): Promise<LocalCheck> {
  if (!isPathAllowed(path, roots)) return { ok: false, reason: "outside allowed attachment roots" };
  const norm = posix.normalize(path).replace(/\/+$/, "");
  let st;
  try {
    st = await lstat(norm);
  } catch (err) {
    const code = (err as { code?: string }).code;
    return { ok: false, reason: code === "ENOENT" ? "attachment file is missing" : `cannot stat attachment: ${errorMessage(err)}` };
  }
  if (st.isSymbolicLink()) return { ok: false, reason: "attachment path is a symlink" };
  if (!st.isFile()) return { ok: false, reason: "attachment is not a regular file" };
  const real = await realpath(norm).catch(() => undefined);
  if (real === undefined || (real !== norm && !isPathAllowed(real, roots))) {
    return { ok: false, reason: "attachment resolves outside the roots through a symlinked directory" };
  }
  if (st.size > maxBytes) return { ok: false, reason: sizeReason(st.size, maxBytes) };
  return { ok: true, path: norm, size: st.size };
}

/** Per-attachment outcome of `fetchAttachments` (same order as the input). */
export type FetchedAttachment =
  | { ok: true; path: string; mimeType: string; name: string; size: number }
  | { ok: false; reason: string };

/** Options for `fetchAttachments`. */
export interface FetchAttachmentsOptions {
  stateDir: string;
  sessionKey: string;
  maxBytes: number;
  /** Local roots, or the remote roots when `remoteHost` is set. */
  roots: readonly string[];
  /** Set → remote mode: files are fetched from this host with scp (see resolveRemoteHost). */
  remoteHost?: string;
  scp?: Partial<Pick<ScpFetchOptions, "timeoutMs" | "retries" | "backoffMs" | "sshOptions" | "scpPath">>;
}

/** `<stateDir>/media`, the root of the per-session attachment cache. */
export function mediaCacheDir(stateDir: string): string {
  return posix.join(stateDir, "media");
}

const isRichLinkPayload = (a: ImsgAttachment) =>
  /\.pluginPayloadAttachment$/i.test(a.originalPath) || a.uti.toLowerCase() === "com.apple.messages.pluginpayloadattachment";

/**
 * Copies (local mode) or scp-fetches (remote mode) a message's attachments into
 * `<stateDir>/media/<session>/` (dir 0700, files 0600, `<stem>-<8 hex><ext>`). Every drop is logged.
 */
export async function fetchAttachments(attachments: readonly ImsgAttachment[], opts: FetchAttachmentsOptions): Promise<FetchedAttachment[]> {
  const log = getLog("attachments");
  const maxBytes = Math.floor(opts.maxBytes);
  const out: FetchedAttachment[] = [];
  let dir: string | undefined;
  for (const att of attachments) {
    const r = await fetchOne(att, { ...opts, maxBytes }, async () => (dir ??= await ensureSessionDir(opts.stateDir, opts.sessionKey)));
    if (!r.ok) log.debug(`dropping attachment ${att.originalPath || "(no path)"}: ${r.reason}`);
    out.push(r);
  }
  return out;
}

async function ensureSessionDir(stateDir: string, sessionKey: string): Promise<string> {
  const media = mediaCacheDir(stateDir);
  const dir = posix.join(media, safeSessionDirName(sessionKey));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode does not touch directories that already exist.
  await chmod(media, 0o700);
  await chmod(dir, 0o700);
  return dir;
}

async function fetchOne(att: ImsgAttachment, opts: FetchAttachmentsOptions, sessionDir: () => Promise<string>): Promise<FetchedAttachment> {
  const { roots, maxBytes } = opts;
  const remote = opts.remoteHost !== undefined;
  if (!att.originalPath) return { ok: false, reason: "attachment has no file path" };
  if (isRichLinkPayload(att)) return { ok: false, reason: "rich-link preview payload, not media" };
  if (!isPathAllowed(att.originalPath, roots)) {
    return { ok: false, reason: `outside allowed ${remote ? "remote " : ""}attachment roots` };
  }
  if (att.totalBytes > maxBytes) return { ok: false, reason: sizeReason(att.totalBytes, maxBytes) };
  const { stem, ext } = sanitizeFileName(att.transferName || posix.basename(att.originalPath));
  const name = `${stem}${ext}`;
  const mimeType = att.mimeType || "application/octet-stream";
  let size: number;
  let dest: string;
  try {
    dest = posix.join(await sessionDir(), `${stem}-${randomBytes(4).toString("hex")}${ext}`);
  } catch (err) {
    return { ok: false, reason: `cannot create media cache dir: ${errorMessage(err)}` };
  }
  if (remote) {
    // imsg's `missing` is a snapshot taken when the row arrived; the file may still be materializing, so we
    // try anyway and let scp's retry-on-missing decide.
    const r = await scpFetch({
      host: opts.remoteHost!,
      remotePath: att.originalPath,
      localPath: dest,
      timeoutMs: opts.scp?.timeoutMs ?? 30_000,
      retries: opts.scp?.retries ?? 3,
      backoffMs: opts.scp?.backoffMs ?? 1000,
      sshOptions: opts.scp?.sshOptions,
      scpPath: opts.scp?.scpPath,
      maxBytes,
    });
    if (!r.ok) return { ok: false, reason: r.reason };
    size = r.size;
  } else {
    const c = await checkLocalAttachment(att.originalPath, roots, maxBytes);
    if (!c.ok) return c;
    const r = await finishCopy(c.path, dest, maxBytes);
    if (!r.ok) return r;
    size = r.size;
  }
  return { ok: true, path: dest, mimeType, name, size };
}

/** Copies a checked local file into the cache via a temp name; re-checks the size of what was copied. */
async function finishCopy(src: string, dest: string, maxBytes: number): Promise<ScpFetchResult> {
  const tmp = posix.join(posix.dirname(dest), `.${posix.basename(dest)}.${randomBytes(4).toString("hex")}.part`);
  try {
    await copyFile(src, tmp);
  } catch (err) {
    await rm(tmp, { force: true });
    return { ok: false, reason: `cannot copy attachment: ${errorMessage(err)}` };
  }
  return finishDownload(tmp, dest, maxBytes);
}

/** What `pruneMediaCache` did. */
export interface PruneResult {
  removedFiles: number;
  removedBytes: number;
  keptBytes: number;
}

/**
 * Removes cached media older than `maxAgeMs`, then the oldest files until the cache holds ≤ maxTotalBytes;
 * empty session directories go too. Never follows symlinks.
 */
export async function pruneMediaCache(stateDir: string, maxAgeMs: number, maxTotalBytes: number, now = Date.now()): Promise<PruneResult> {
  const media = mediaCacheDir(stateDir);
  const files: { path: string; size: number; mtimeMs: number }[] = [];
  const sessionDirs: string[] = [];
  const entries = await readdir(media, { withFileTypes: true }).catch(() => []);
  for (const d of entries) {
    if (!d.isDirectory()) continue;
    const dir = posix.join(media, d.name);
    sessionDirs.push(dir);
    for (const f of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (f.isDirectory()) continue;
      const p = posix.join(dir, f.name);
      const st = await lstat(p).catch(() => undefined);
      if (st) files.push({ path: p, size: st.isFile() ? st.size : 0, mtimeMs: st.mtimeMs });
    }
  }
  files.sort((a, b) => a.mtimeMs - b.mtimeMs);
  let total = files.reduce((s, f) => s + f.size, 0);
  const result: PruneResult = { removedFiles: 0, removedBytes: 0, keptBytes: 0 };
  for (const f of files) {
    if (now - f.mtimeMs <= maxAgeMs && total <= maxTotalBytes) continue;
    await rm(f.path, { force: true });
    total -= f.size;
    result.removedFiles++;
    result.removedBytes += f.size;
  }
  result.keptBytes = total;
  // rmdir only succeeds on empty directories, which is exactly the cleanup we want.
  for (const dir of sessionDirs) await rmdir(dir).catch(() => undefined);
  return result;
}
