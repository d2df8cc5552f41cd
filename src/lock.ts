// The gateway's single-instance lock on a state dir: a file holding the owner's pid, created complete (temp file,
// then link, which fails if the lock exists). A lock whose pid is gone (kill -9, reboot) is stale and reclaimed
// under a reclaim guard, so two reclaimers never both win.
import { randomUUID } from "node:crypto";
import { linkSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { uptime } from "node:os";
import { join } from "node:path";
import { ensureStateDir } from "./state-dir.ts";

export interface LockInfo {
  pid: number;
  startedAt: number;
  /** Set once every account is subscribed (what `--detach` and `probe --require-gateway` wait for). */
  subscribedAt?: number;
  accounts?: string[];
}

export function lockPath(stateDir: string): string {
  return join(stateDir, "gateway.lock");
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The current lock holder, if the lock file exists and its process is alive. */
export function readLock(stateDir: string): LockInfo | undefined {
  let info: LockInfo;
  try {
    info = JSON.parse(readFileSync(lockPath(stateDir), "utf8")) as LockInfo;
  } catch {
    return undefined;
  }
  return liveHolder(info);
}

function liveHolder(info: LockInfo): LockInfo | undefined {
  if (typeof info.pid !== "number" || !isAlive(info.pid)) return undefined;
  // Written before the last boot: the pid now belongs to some other process.
  if (typeof info.startedAt === "number" && info.startedAt < Date.now() - uptime() * 1000 - 5000) return undefined;
  return info;
}

export class LockedError extends Error {
  constructor(readonly holder: LockInfo) {
    super(
      holder.pid
        ? `another gateway (pid ${holder.pid}) already holds the lock on this state dir`
        : "another gateway is taking the lock on this state dir (its lock file is still being written)",
    );
    this.name = "LockedError";
  }
}

export interface Lock {
  info: LockInfo;
  /** Rewrites the lock file (e.g. to record subscribedAt). */
  update(patch: Partial<LockInfo>): void;
  release(): void;
}

/** A lock file this young that cannot be parsed may still be being written by an older version: live. */
const YOUNG_MS = 5000;
/** A reclaim guard takes microseconds to use; one older than this was left by a reclaimer that died. */
const GUARD_STALE_MS = 10_000;

/** Takes the lock or throws LockedError naming the live holder. */
export function acquireLock(stateDir: string): Lock {
  ensureStateDir(stateDir);
  const path = lockPath(stateDir);
  const info: LockInfo = { pid: process.pid, startedAt: Date.now() };
  const deadline = Date.now() + 2000;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`could not take the lock at ${path}: another process keeps reclaiming it`);
    // Created complete: a racer never sees an empty lock of ours.
    if (linkComplete(path, JSON.stringify(info))) return makeLock(path, info);
    const seen = inspect(path);
    if (seen === "gone") continue;
    if (seen.live) throw new LockedError(seen.live);
    // Stale. Only the holder of the reclaim guard may remove it, so two reclaimers can never both remove a lock
    // (one of them the other's fresh one) and then both link their own.
    const guard = `${path}.reclaim`;
    if (linkComplete(guard, JSON.stringify({ pid: process.pid, startedAt: Date.now() }))) {
      try {
        const again = inspect(path);
        if (again !== "gone" && !again.live && again.ino === seen.ino) unlinkQuiet(path);
      } finally {
        unlinkQuiet(guard);
      }
      continue;
    }
    clearStaleGuard(guard);
    pause(1);
  }
}

/** Writes a temp file in the same dir and links it to `path`; false when `path` already exists. */
function linkComplete(path: string, text: string): boolean {
  const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    return false;
  } finally {
    unlinkQuiet(tmp);
  }
}

type Seen = "gone" | { ino: number; live?: LockInfo };

function inspect(path: string): Seen {
  let text: string;
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return "gone";
    throw e;
  }
  let info: LockInfo | undefined;
  try {
    info = JSON.parse(text) as LockInfo;
  } catch {
    info = undefined;
  }
  if (!info || typeof info.pid !== "number") {
    // Empty or partial: a writer may be mid-write; only an old one is abandoned.
    const young = Date.now() - st.mtimeMs < YOUNG_MS;
    return { ino: Number(st.ino), live: young ? { pid: 0, startedAt: st.mtimeMs } : undefined };
  }
  return { ino: Number(st.ino), live: liveHolder(info) };
}

/** A guard whose reclaimer died (kill -9 mid-reclaim) is moved aside; one that is not the one we judged goes back. */
function clearStaleGuard(guard: string): void {
  let st: ReturnType<typeof statSync>;
  let holder: LockInfo | undefined;
  try {
    st = statSync(guard);
    holder = JSON.parse(readFileSync(guard, "utf8")) as LockInfo;
  } catch {
    return;
  }
  const stale = !isAlive(holder.pid) || Date.now() - st.mtimeMs > GUARD_STALE_MS;
  if (!stale) return;
  const aside = `${guard}.${process.pid}.${randomUUID()}.stale`;
  try {
    renameSync(guard, aside);
  } catch {
    return;
  }
  if (Number(statSync(aside).ino) !== Number(st.ino)) {
    try {
      linkSync(aside, guard);
    } catch {
      /* a newer guard is in place */
    }
  }
  unlinkQuiet(aside);
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function pause(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

function makeLock(path: string, info: LockInfo): Lock {
  let released = false;
  return {
    info,
    update(patch) {
      Object.assign(info, patch);
      const tmp = `${path}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(info), { mode: 0o600 });
      renameSync(tmp, path);
    },
    release() {
      if (released) return;
      released = true;
      try {
        const cur = JSON.parse(readFileSync(path, "utf8")) as LockInfo;
        if (cur.pid === process.pid) unlinkSync(path);
      } catch {
        /* already gone */
      }
    },
  };
}
