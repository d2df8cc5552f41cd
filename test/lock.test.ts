import { afterEach, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acquireLock, LockedError, lockPath, readLock } from "../src/lock.ts";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
const dir = () => {
  const d = mkdtempSync(join(tmpdir(), "lock-"));
  dirs.push(d);
  return d;
};

test("the lock is exclusive, 0600, names its holder, and is released", () => {
  const d = dir();
  const lock = acquireLock(d);
  expect(statSync(lockPath(d)).mode & 0o777).toBe(0o600);
  expect(readLock(d)?.pid).toBe(process.pid);
  expect(() => acquireLock(d)).toThrow(LockedError);
  lock.update({ subscribedAt: 123 });
  expect(readLock(d)?.subscribedAt).toBe(123);
  lock.release();
  expect(existsSync(lockPath(d))).toBe(false);
});

test("a stale lock from a dead process is reclaimed", () => {
  const d = dir();
  // A pid that existed and is gone: a child that already exited.
  const dead = spawnSync("true").pid!;
  writeFileSync(lockPath(d), JSON.stringify({ pid: dead, startedAt: 1 }));
  expect(readLock(d)).toBeUndefined();
  const lock = acquireLock(d);
  expect(JSON.parse(readFileSync(lockPath(d), "utf8")).pid).toBe(process.pid);
  lock.release();
});

test("an unreadable lock file is treated as stale", () => {
  const d = dir();
  writeFileSync(lockPath(d), "garbage");
  const lock = acquireLock(d);
  expect(readLock(d)?.pid).toBe(process.pid);
  lock.release();
});
