// The file policy in one place: what may enter (attachment root patterns, local attachment checks, moving a
// fetched file into the cache) and what may leave (agent MEDIA paths that hold secrets).
import { chmod, lstat, realpath, rename, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { posix } from "node:path";
import { errorMessage } from "./errors.ts";

// ---------------------------------------------------------------------------------------------
// Attachment roots (pure)

/** Where Messages keeps attachments on every Mac account; always part of the resolved roots. */
export const DEFAULT_ATTACHMENT_ROOT = "/Users/*/Library/Messages/Attachments";

/** An absolute POSIX root pattern whose segments are either exactly `*` or contain no `*`. */
export function isValidRootPattern(pattern: string): boolean {
  if (!pattern.startsWith("/") || pattern.includes("\u0000")) return false;
  const segs = pattern.split("/").filter(Boolean);
  if (segs.length === 0) return false;
  return segs.every((s) => s === "*" || !s.includes("*")) && !segs.includes("..") && !segs.includes(".");
}

// Trailing and doubled slashes would defeat dedupe without changing meaning.
function normalizeRoot(r: string): string {
  return `/${r.split("/").filter(Boolean).join("/")}`;
}

/** Order-keeping union of root patterns (normalized, invalid ones dropped), always ending with the default root. */
export function mergeRoots(...lists: (readonly string[] | undefined)[]): string[] {
  const out: string[] = [];
  for (const r of [...lists.flatMap((l) => l ?? []), DEFAULT_ATTACHMENT_ROOT]) {
    if (!isValidRootPattern(r)) continue;
    const n = normalizeRoot(r);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

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

// ---------------------------------------------------------------------------------------------
// What may enter: local attachments and fetched files

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

/** Outcome of moving a fetched or copied file into place. */
export type MoveResult = { ok: true; size: number } | { ok: false; reason: string };

/** Checks the downloaded temp file, then moves it into place with owner-only permissions. */
export async function finishDownload(tmp: string, dest: string, maxBytes?: number): Promise<MoveResult> {
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

export function sizeReason(size: number, maxBytes: number): string {
  return `attachment is ${size} bytes, above the ${maxBytes}-byte limit`;
}

// ---------------------------------------------------------------------------------------------
// What may leave: agent MEDIA paths

/**
 * Why an agent's MEDIA path must not be sent, if it must not: agents relay model text, so a prompt-injected
 * `MEDIA:~/.ssh/id_ed25519` or `MEDIA:<state dir>/state.db` must not leak a secret into the chat. Pure.
 */
export function sensitivePath(real: string, stateDir: string, home = homedir()): string | undefined {
  const under = (dir: string) => real === dir || real.startsWith(dir.endsWith("/") ? dir : `${dir}/`);
  if (under(stateDir)) return "inside the gateway's state dir";
  if (real.startsWith(`${home}/.`)) return "inside a hidden directory of the home folder";
  for (const d of [`${home}/Library/Keychains`, "/etc", "/private/etc", "/proc", "/sys", "/dev", "/var/db", "/Library/Keychains"]) {
    if (under(d)) return `inside ${d}`;
  }
  if (under(`${home}/Library/Messages`) && !under(`${home}/Library/Messages/Attachments`)) return "the Messages database folder";
  return undefined;
}
