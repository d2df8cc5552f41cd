// The file policy in one place: what may enter (attachment root patterns, local attachment checks, moving a
// fetched file into the cache) and what may leave (agent MEDIA paths that hold secrets).
import { realpathSync } from "node:fs";
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

/** The places whose files never leave, as the caller sees them (one spelling each; see outboundRefusal). */
export interface SecretPlaces {
  stateDir: string;
  home: string;
  /** The config file (it names hosts, programs and keys' env vars). */
  configPath?: string;
}

// Compared ignoring case: macOS file systems are case-insensitive by default, so ~/.SSH is ~/.ssh there. Folding
// everywhere can only refuse more, never less.
const fold = (p: string) => posix.normalize(p).toLowerCase();

/**
 * Why an agent's MEDIA path must not be sent, if it must not: agents relay model text, so a prompt-injected
 * `MEDIA:~/.ssh/id_ed25519` or `MEDIA:<state dir>/state.db` must not leak a secret into the chat. Pure; both
 * sides must already be spelt the same way (outboundRefusal resolves symlinks on both).
 */
export function sensitivePath(path: string, places: SecretPlaces): string | undefined {
  const p = fold(path);
  const home = fold(places.home);
  const under = (dir: string) => {
    const d = fold(dir).replace(/\/+$/, "");
    return p === d || p.startsWith(`${d}/`);
  };
  if (under(places.stateDir)) return "inside the gateway's state dir";
  if (places.configPath !== undefined && p === fold(places.configPath)) return "the gateway's config file";
  if (p.startsWith(`${home}/.`)) return "inside a hidden directory of the home folder";
  for (const d of [`${places.home}/Library/Keychains`, "/etc", "/private/etc", "/proc", "/sys", "/dev", "/var/db", "/private/var/db", "/Library/Keychains"]) {
    if (under(d)) return `inside ${d}`;
  }
  if (under(`${places.home}/Library/Messages`) && !under(`${places.home}/Library/Messages/Attachments`)) return "the Messages database folder";
  return undefined;
}

/** What may leave: the secret places (the floor, always) and, when set, the only roots files may come from. */
export interface OutboundPolicy {
  stateDir: string;
  configPath?: string;
  /** `mediaLocalRoots`; undefined = no allowlist. */
  roots?: readonly string[];
  home?: string;
}

function realOr(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

// A path as written and as resolved: a secret is refused whichever spelling reaches it (a symlinked HOME, macOS's
// /tmp → /private/tmp).
function spellings(p: string): string[] {
  const r = realOr(p);
  return r !== undefined && r !== p ? [p, r] : [p];
}

// A root pattern with its fixed prefix (before the first `*`) resolved, so a root given through a symlink matches.
function rootSpellings(root: string): string[] {
  const segs = root.split("/").filter(Boolean);
  const star = segs.indexOf("*");
  const prefix = `/${(star < 0 ? segs : segs.slice(0, star)).join("/")}`;
  const rest = star < 0 ? [] : segs.slice(star);
  const real = realOr(prefix);
  return real === undefined || real === prefix ? [root] : [root, [real.replace(/\/+$/, ""), ...rest].join("/")];
}

/**
 * Why the agent file at `path` (absolute) must not be sent, if it must not: the file and every secret place are
 * compared with symlinks resolved on both sides (and as written), ignoring case; with `roots` the resolved file
 * must also lie under one of them (compared exactly). Reads the file system (realpath) but nothing else.
 */
export function outboundRefusal(path: string, policy: OutboundPolicy): string | undefined {
  const real = realOr(path);
  if (real === undefined) return "file not found";
  const candidates = [...new Set([posix.normalize(path), real])];
  for (const home of spellings(policy.home ?? homedir())) {
    for (const stateDir of spellings(policy.stateDir)) {
      for (const configPath of policy.configPath !== undefined ? spellings(policy.configPath) : [undefined]) {
        for (const c of candidates) {
          const why = sensitivePath(c, { home, stateDir, ...(configPath !== undefined ? { configPath } : {}) });
          if (why) return why;
        }
      }
    }
  }
  if (policy.roots !== undefined && !isPathAllowed(real, policy.roots.flatMap(rootSpellings))) return "outside mediaLocalRoots";
  return undefined;
}
