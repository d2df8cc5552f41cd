import { afterEach, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
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

test("an unreadable lock file left long ago is treated as stale", () => {
  const d = dir();
  writeFileSync(lockPath(d), "garbage");
  const old = (Date.now() - 60_000) / 1000;
  utimesSync(lockPath(d), old, old);
  const lock = acquireLock(d);
  expect(readLock(d)?.pid).toBe(process.pid);
  lock.release();
});

test("a young empty lock (a writer mid-write) is live; an old one is stale", () => {
  const d = dir();
  writeFileSync(lockPath(d), "");
  expect(() => acquireLock(d)).toThrow(LockedError);
  const old = (Date.now() - 60_000) / 1000;
  utimesSync(lockPath(d), old, old);
  const lock = acquireLock(d);
  expect(readLock(d)?.pid).toBe(process.pid);
  lock.release();
});

test("1,000 aligned races for a stale lock across processes: never two holders", async () => {
  const ROUNDS = 1000;
  const WORKERS = 3;
  const base = dir();
  const dead = spawnSync("true").pid!;
  const dirs = Array.from({ length: ROUNDS }, (_, i) => {
    const d = join(base, String(i));
    mkdirSync(d);
    writeFileSync(lockPath(d), JSON.stringify({ pid: dead, startedAt: Date.now() - 1000 }));
    return d;
  });
  const workers = Array.from({ length: WORKERS }, () => {
    const child = spawn(process.execPath, [join(import.meta.dir, "fixtures/lock-racer.ts")], { stdio: ["pipe", "pipe", "inherit"] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    return { child, next: async () => (await lines.next()).value as string };
  });
  const outcomes: string[][] = [];
  try {
    for (const d of dirs) {
      const at = performance.timeOrigin + performance.now() + 3;
      for (const w of workers) w.child.stdin.write(`${d} ${at}\n`);
      outcomes.push(await Promise.all(workers.map((w) => w.next())));
    }
  } finally {
    for (const w of workers) w.child.kill();
  }
  const winners = outcomes.map((o) => o.filter((r) => r === "won").length);
  const doubles = winners.filter((n) => n > 1).length;
  expect(doubles).toBe(0);
  expect(outcomes.flat().filter((r) => r !== "won" && r !== "lost")).toEqual([]);
  expect(winners.every((n) => n === 1)).toBe(true);
}, 60_000);
