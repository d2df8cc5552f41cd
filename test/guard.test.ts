// The rate guard: timing evidence per conversation (pure, table-driven) and pauses persisted in a real Store.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeConv, type Exchange, nextExchange, RateGuard, readPauses, verdict } from "../src/guard.ts";
import { Store } from "../src/store.ts";

const LIMITS = { loopMaxExchanges: 10, loopFollowMs: 3000, loopEchoRows: 5 };

describe("nextExchange: a message counts when it is the first after our reply and comes within followMs", () => {
  const rows: [string, Exchange, number, number][] = [
    ["no reply yet", { rowsSinceReply: 0, streak: 0 }, 100, 0],
    ["first row 500 ms after the reply", { lastReplyAt: 0, rowsSinceReply: 0, streak: 4 }, 500, 5],
    ["first row, but 4 s after the reply (a person reading)", { lastReplyAt: 0, rowsSinceReply: 0, streak: 4 }, 4000, 0],
    ["a second row before our reply (a burst does not wait)", { lastReplyAt: 0, rowsSinceReply: 1, streak: 4 }, 200, 0],
  ];
  test.each(rows)("%s", (_n, c, now, streak) => expect(nextExchange(c, now, 3000).streak).toBe(streak));
});

describe("verdict: the last PROBE_EXCHANGES before the trip are delayed", () => {
  const rows: [number, number, string][] = [
    [0, 10, "ok"],
    [7, 10, "ok"],
    [8, 10, "slow"],
    [9, 10, "slow"],
    [10, 10, "trip"],
    [50, 0, "ok"],
  ];
  test.each(rows)("streak %d of %d → %s", (streak, max, want) => expect(verdict(streak, max) as string).toBe(want));
});

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function store(): Store {
  const dir = mkdtempSync(join(tmpdir(), "guard-"));
  dirs.push(dir);
  const s = Store.open(dir);
  stores.push(s);
  return s;
}

describe("RateGuard", () => {
  test("a bot answering every reply within a second trips on the 10th exchange; a burst never does", () => {
    const g = new RateGuard(store(), "default");
    const seen: string[] = [];
    let t = 0;
    for (let i = 0; i < 12; i++) {
      seen.push(g.inbound("dm:bot", LIMITS, t += 800));
      g.replied("dm:bot", t += 200);
    }
    expect(seen.indexOf("trip")).toBe(10);
    expect(seen.slice(8, 10)).toEqual(["slow", "slow"]);
    // 25 messages 320 ms apart, replies trailing behind: never two exchanges in a row.
    t = 0;
    const burst: string[] = [];
    for (let i = 0; i < 25; i++) {
      burst.push(g.inbound("dm:person", LIMITS, t += 320));
      if (i % 2) g.replied("dm:person", t + 100);
    }
    expect(burst.every((v) => v === "ok")).toBe(true);
  });

  test("echo rows trip at loopEchoRows a minute, per conversation", () => {
    const g = new RateGuard(store(), "default");
    expect([1, 2, 3, 4, 5].map((i) => g.echo("chat:1", LIMITS, i))).toEqual([false, false, false, false, true]);
    expect(g.echo("chat:2", LIMITS, 6)).toBe(false);
    expect(g.echo("chat:1", { ...LIMITS, loopEchoRows: 0 }, 7)).toBe(false);
  });

  test("pauses are kept in the journal per account, survive a new guard, and resume forgets the evidence", () => {
    const s = store();
    const g = new RateGuard(s, "a");
    expect(g.pause("dm:+15550002222", "why", 1000)).toBe(true);
    expect(g.pause("dm:+15550002222", "again", 2000)).toBe(false);
    expect(new RateGuard(s, "a").paused("dm:+15550002222")).toEqual({ since: 1000, reason: "why" });
    expect(new RateGuard(s, "b").list()).toEqual([]);
    expect(readPauses(s, "a")).toHaveProperty(["dm:+15550002222"]);
    expect(g.resume("dm:+15550002222")).toBe(true);
    expect(g.resume("dm:+15550002222")).toBe(false);
    expect(readPauses(s, "a")).toEqual({});
  });

  test("describeConv redacts handles", () => {
    expect(describeConv("dm:+15550002222")).toBe("DM ***2222");
    expect(describeConv("chat:42")).toBe("chat 42");
  });
});
