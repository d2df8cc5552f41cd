import { describe, expect, test } from "bun:test";
import { KeyedQueue, Semaphore, until, WindowCounter } from "../src/queues.ts";

/** A promise with its resolve/reject handed out, so a test decides when a task finishes. */
function gate<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("KeyedQueue", () => {
  test("tasks of one key run one at a time, in order; other keys are not held up", async () => {
    const q = new KeyedQueue();
    const log: string[] = [];
    const a1 = gate();
    const p1 = q.run("a", async () => {
      log.push("a1 start");
      await a1.promise;
      log.push("a1 end");
    });
    const p2 = q.run("a", async () => void log.push("a2"));
    await q.run("b", async () => void log.push("b1"));
    expect(log).toEqual(["a1 start", "b1"]);
    a1.resolve();
    await Promise.all([p1, p2]);
    expect(log).toEqual(["a1 start", "b1", "a1 end", "a2"]);
  });

  test("a failed task rejects its own caller but not the next task of the key", async () => {
    const q = new KeyedQueue();
    const failed = q.run("a", async () => {
      throw new Error("boom");
    });
    const next = q.run("a", async () => 42);
    await expect(failed).rejects.toThrow("boom");
    expect(await next).toBe(42);
  });

  test("a key is forgotten once its last task settles", async () => {
    const q = new KeyedQueue();
    const g = gate();
    const p = q.run("a", () => g.promise);
    expect(q.size).toBe(1);
    g.resolve();
    await p;
    await until(() => (q.size === 0 ? true : undefined), 1000, 1);
    expect(q.size).toBe(0);
  });
});

describe("Semaphore", () => {
  test("at most n tasks run at once; waiters start in arrival order as slots free up", async () => {
    const s = new Semaphore(2);
    const gates = [gate(), gate(), gate(), gate()];
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const all = gates.map((g, i) =>
      s.run(async () => {
        started.push(i);
        peak = Math.max(peak, ++running);
        await g.promise;
        running--;
      })
    );
    await until(() => (started.length === 2 ? true : undefined), 1000, 1);
    expect(started).toEqual([0, 1]);
    gates[1]!.resolve();
    await until(() => (started.length === 3 ? true : undefined), 1000, 1);
    expect(started).toEqual([0, 1, 2]);
    for (const g of gates) g.resolve();
    await Promise.all(all);
    expect(peak).toBe(2);
  });

  test("a task that throws frees its slot", async () => {
    const s = new Semaphore(1);
    await expect(s.run(async () => Promise.reject(new Error("x")))).rejects.toThrow("x");
    expect(await s.run(async () => "ok")).toBe("ok");
  });
});

describe("WindowCounter", () => {
  const rows: [string, number[], number, number][] = [
    // name, hit times, count at, expected count
    ["no hits", [], 0, 0],
    ["hits inside the window count", [0, 10, 20], 30, 3],
    ["hits older than the window fall out", [0, 10, 20], 115, 1],
    ["a hit exactly windowMs ago is outside", [0], 100, 0],
  ];
  test.each(rows)("%s", (_name, hits, at, want) => {
    const c = new WindowCounter(100);
    for (const t of hits) c.hit("k", t);
    expect(c.count("k", at)).toBe(want);
  });

  test("hit returns the count including itself; keys are independent", () => {
    const c = new WindowCounter(100);
    expect([c.hit("a", 0), c.hit("a", 1), c.hit("b", 2), c.hit("a", 150)]).toEqual([1, 2, 1, 1]);
  });

  test("beyond maxKeys the least recently hit key is dropped", () => {
    const c = new WindowCounter(1000, 2);
    c.hit("a", 0);
    c.hit("b", 1);
    c.hit("a", 2);
    c.hit("c", 3);
    expect([c.count("a", 4), c.count("b", 4), c.count("c", 4)]).toEqual([2, 0, 1]);
  });
});

describe("until", () => {
  test("returns the first defined value", async () => {
    let n = 0;
    expect(await until(() => (++n >= 3 ? n : undefined), 1000, 1)).toBe(3);
  });
  test("returns undefined once the deadline passes", async () => {
    const t0 = Date.now();
    expect(await until(() => undefined, 30, 5)).toBeUndefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(30);
  });
  test("a falsy but defined value counts (false, 0)", async () => {
    expect(await until(() => 0, 10)).toBe(0);
    expect(await until(() => false, 10)).toBe(false);
  });
});
