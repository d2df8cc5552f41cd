// Inbound attachments: media kinds, safe cache names, fetch orchestration (local copy or SCP) and the
// per-session media cache. Which paths may be read lives in files.ts; ssh/scp in ssh.ts.
import { createHash, randomBytes } from "node:crypto";
import { chmod, copyFile, lstat, mkdir, readdir, rm, rmdir } from "node:fs/promises";
import { posix } from "node:path";
import type { ImsgAttachment } from "./imsg.ts";
import { errorMessage } from "./errors.ts";
import { checkLocalAttachment, finishDownload, isPathAllowed, type MoveResult, sizeReason } from "./files.ts";
import { getLog } from "./log.ts";
import { fetchWithConverted, type TurnAttachment } from "./media.ts";
import { scpFetch, type ScpFetchOptions } from "./ssh.ts";

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
// Fetching and the media cache

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

/** A turn's attachments: originals with imsg's converted files, fetched into the cache; each failure becomes a note. */
export async function fetchTurnAttachments(
  attachments: readonly ImsgAttachment[],
  opts: FetchAttachmentsOptions,
): Promise<{ attachments: TurnAttachment[]; notes: string[] }> {
  const out: TurnAttachment[] = [];
  const notes: string[] = [];
  for (const { result: r, converted: c } of await fetchWithConverted(attachments, (list) => fetchAttachments(list, opts))) {
    if (r.ok) {
      out.push({ path: r.path, mimeType: r.mimeType, name: r.name, size: r.size, ...(c ? { convertedPath: c.path, convertedMimeType: c.mimeType } : {}) });
    } else notes.push("[attachment unavailable]"); // fetchAttachments logged why
  }
  return { attachments: out, notes };
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
async function finishCopy(src: string, dest: string, maxBytes: number): Promise<MoveResult> {
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
