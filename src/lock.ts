// The gateway's single-instance lock on a state dir: a file created exclusively, holding the owner's pid.
// A lock whose pid is gone (kill -9, reboot) is stale and reclaimed.
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { uptime } from "node:os";
import { join } from "node:path";

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
  if (typeof info.pid !== "number" || !isAlive(info.pid)) return undefined;
  // Written before the last boot: the pid now belongs to some other process.
  if (typeof info.startedAt === "number" && info.startedAt < Date.now() - uptime() * 1000 - 5000) return undefined;
  return info;
}

export class LockedError extends Error {
  constructor(readonly holder: LockInfo) {
    super(`another gateway (pid ${holder.pid}) already holds the lock on this state dir`);
    this.name = "LockedError";
  }
}

export interface Lock {
  info: LockInfo;
  /** Rewrites the lock file (e.g. to record subscribedAt). */
  update(patch: Partial<LockInfo>): void;
  release(): void;
}

/** Takes the lock or throws LockedError naming the live holder. */
export function acquireLock(stateDir: string): Lock {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = lockPath(stateDir);
  const info: LockInfo = { pid: process.pid, startedAt: Date.now() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, JSON.stringify(info));
      closeSync(fd);
      return makeLock(path, info);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const holder = readLock(stateDir);
    if (holder) throw new LockedError(holder);
    // Stale (dead pid or unreadable): move it aside atomically. If what we moved turns out to be a live lock that
    // another reclaimer wrote in between, put it back and yield to it.
    const aside = `${path}.stale.${process.pid}`;
    try {
      renameSync(path, aside);
      let moved: LockInfo | undefined;
      try {
        moved = JSON.parse(readFileSync(aside, "utf8")) as LockInfo;
      } catch {
        moved = undefined;
      }
      if (moved && typeof moved.pid === "number" && moved.pid !== process.pid && isAlive(moved.pid)) {
        renameSync(aside, path);
        throw new LockedError(moved);
      }
      unlinkSync(aside);
    } catch (e) {
      if (e instanceof LockedError) throw e;
      /* someone else reclaimed it first; retry */
    }
  }
  const holder = readLock(stateDir);
  if (holder) throw new LockedError(holder);
  throw new Error(`could not take the lock at ${path}`);
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
