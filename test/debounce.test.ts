import { describe, expect, test } from "bun:test";
import { BURST_MAX_CHARS, burstKey, Debouncer, debounceWindow, fits, mayWait, mergeTexts, type Timers } from "../src/debounce.ts";

describe("debounceWindow", () => {
  const cases: [string, Parameters<typeof debounceWindow>[0], number | undefined][] = [
    ["not configured", undefined, undefined],
    ["global", { debounceMs: 1200 }, 1200],
    ["per channel wins", { debounceMs: 1200, byChannel: { imessage: 0 } }, 0],
    ["another channel only", { byChannel: { telegram: 900 } }, undefined],
  ];
  for (const [name, cfg, want] of cases) test(name, () => expect(debounceWindow(cfg)).toBe(want));
});

describe("mayWait", () => {
  const cases: [string, number, { text: string; attachments: number; command: boolean }, boolean][] = [
    ["plain text", 3000, { text: "hey", attachments: 0, command: false }, true],
    ["disabled (0)", 0, { text: "hey", attachments: 0, command: false }, false],
    ["media flushes", 3000, { text: "look", attachments: 1, command: false }, false],
    ["command flushes", 3000, { text: "/status", attachments: 0, command: true }, false],
    ["empty text", 3000, { text: "  ", attachments: 0, command: false }, false],
  ];
  for (const [name, w, m, want] of cases) test(name, () => expect(mayWait(w, m)).toBe(want));
});

test("mergeTexts joins oldest first, one line each; fits caps the merged text", () => {
  expect(mergeTexts(["hey", "can you", "book the table for 8"])).toBe("hey\ncan you\nbook the table for 8");
  expect(fits([], "x".repeat(BURST_MAX_CHARS + 10))).toBe(true); // a single long text is its own burst
  expect(fits(["x".repeat(BURST_MAX_CHARS - 3)], "ab")).toBe(true);
  expect(fits(["x".repeat(BURST_MAX_CHARS - 3)], "abc")).toBe(false);
  expect(burstKey("a", 1, "+15550001111")).not.toBe(burstKey("a", 2, "+15550001111"));
});

class Clock implements Timers {
  now = 0;
  #t = new Map<number, { at: number; fn: () => void }>();
  #id = 0;
  set(fn: () => void, ms: number) {
    this.#t.set(++this.#id, { at: this.now + ms, fn });
    return this.#id;
  }
  clear(h: unknown) {
    this.#t.delete(h as number);
  }
  to(t: number) {
    for (const [id, e] of [...this.#t].sort((a, b) => a[1].at - b[1].at)) {
      if (e.at > t) break;
      this.#t.delete(id);
      this.now = e.at;
      e.fn();
    }
    this.now = t;
  }
}

test("Debouncer: sliding window per key, cap flushes early, flush/flushAll hand over at once", () => {
  const c = new Clock();
  const out: [string, number[]][] = [];
  const d = new Debouncer<number>((k, items) => out.push([k, items]), c);
  d.add("a", 1, "hey", 1000);
  d.add("b", 9, "other sender", 1000);
  c.to(900);
  d.add("a", 2, "can you", 1000); // restarts a's window, not b's
  c.to(1500);
  expect(out).toEqual([["b", [9]]]);
  c.to(1900);
  expect(out).toEqual([["b", [9]], ["a", [1, 2]]]);
  d.add("a", 3, "x".repeat(BURST_MAX_CHARS - 1), 1000);
  d.add("a", 4, "yz", 1000); // would pass the cap: 3 goes alone first
  expect(out.at(-1)).toEqual(["a", [3]]);
  d.flush("a");
  expect(out.at(-1)).toEqual(["a", [4]]);
  d.add("c", 5, "t", 1000);
  d.flushAll();
  expect(out.at(-1)).toEqual(["c", [5]]);
  expect(d.size).toBe(0);
  c.to(10_000);
  expect(out).toHaveLength(5); // cleared timers never fire
});
