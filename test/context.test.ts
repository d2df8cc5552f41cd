// Conversation context: owner takeover, the owner's turns, and seeding a new DM session from imsg history.
import { describe, expect, test } from "bun:test";
import { ownerView, quietUntil, recordOwnerReply, seedEntries, seedLimit, startTakeover } from "../src/context.ts";
import type { ImsgMessage } from "../src/imsg.ts";

const m = (id: number, text: string, isFromMe = false, guid = `G${id}`) => ({ id, text, isFromMe, guid }) as ImsgMessage;

describe("seedEntries", () => {
  // imsg returns newest first.
  const rows = [m(9, "current"), m(8, "sure", true, "OURS"), m(7, "can you help?"), m(6, "I'll ask it", true), m(5, ""), m(4, "hi")];
  const ours = (g: string) => g === "OURS";
  const cases: [string, number, number, { role: string; text: string }[]][] = [
    ["everything before the current row, oldest first; ours plain, the owner's marked", 9, 10, [
      { role: "user", text: "> hi" },
      { role: "assistant", text: "[The owner replied by hand] I'll ask it" },
      { role: "user", text: "> can you help?" },
      { role: "assistant", text: "sure" },
    ]],
    ["the newest `limit` only", 9, 2, [{ role: "user", text: "> can you help?" }, { role: "assistant", text: "sure" }]],
    ["before a burst's first row", 7, 5, [{ role: "user", text: "> hi" }, { role: "assistant", text: "[The owner replied by hand] I'll ask it" }]],
    ["limit 0 seeds nothing", 9, 0, []],
  ];
  for (const [name, before, limit, want] of cases) test(name, () => expect(seedEntries(rows, before, limit, ours)).toEqual(want as never));
});

test("seedLimit: dms.<handle>.historyLimit overrides dmHistoryLimit", () => {
  const a = { dmHistoryLimit: 10, dms: { "+15550001111": { historyLimit: 3 }, "+15550002222": {} } };
  expect(seedLimit(a, "+15550001111")).toBe(3);
  expect(seedLimit(a, "+15550002222")).toBe(10);
  expect(seedLimit(a, "+15550003333")).toBe(10);
});

test("takeover lasts its minutes; owner turns only join a session that has history", () => {
  const meta = new Map<string, string>();
  const store = { getMeta: (k: string) => meta.get(k), setMeta: (k: string, v: string) => void meta.set(k, v) };
  expect(quietUntil(store, "a", "dm:+15550001111", 0)).toBeUndefined();
  const until = startTakeover(store, "a", "dm:+15550001111", 30, 1000);
  expect(until).toBe(1000 + 30 * 60_000);
  expect(quietUntil(store, "a", "dm:+15550001111", until - 1)).toBe(until);
  expect(quietUntil(store, "a", "dm:+15550001111", until)).toBeUndefined();
  expect(quietUntil(store, "b", "dm:+15550001111", 2000)).toBeUndefined();
  const hist: Record<string, { role: string; text: string }[]> = { s1: [{ role: "user", text: "hi" }] };
  const h = {
    getHistory: (k: string, n: number) => (hist[k] ?? []).slice(-n) as never,
    appendHistory: (k: string, role: "user" | "assistant", text: string) => void (hist[k] ??= []).push({ role, text }),
  };
  expect(recordOwnerReply(h, "s1", "on my way")).toBe(true);
  expect(recordOwnerReply(h, "s2", "elsewhere")).toBe(false);
  expect(hist).toEqual({ s1: [{ role: "user", text: "hi" }, { role: "assistant", text: "[The owner replied by hand] on my way" }] });
});

test("ownerView: a from-me DM row without a sender belongs to the chat's other party", () => {
  const row = { sender: "", isGroup: false, chatIdentifier: "+15550001111" } as ImsgMessage;
  expect(ownerView(row).sender).toBe("+15550001111");
  expect(ownerView({ ...row, sender: "+15550002222" }).sender).toBe("+15550002222");
  expect(ownerView({ ...row, isGroup: true }).sender).toBe("");
});
