#!/usr/bin/env bun
// Inbound debounce trade-off: for each window, how many agent turns a person's texts cost and how often the agent
// answers before the person has finished, against the latency the window adds to every reply. Drives the real
// Debouncer (src/debounce.ts) over a synthetic, seeded chat workload on a virtual clock (deterministic, so the
// figures do not depend on the machine's load).
import { Debouncer, type Timers } from "../src/debounce.ts";

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=") as [string, string]));
const thoughts = Number(args.get("thoughts") ?? 5000);
const windows = (args.get("windows") ?? "0,500,1000,1500,2000,3000,4000,5000,8000").split(",").map(Number);

// Seeded PRNG, so every run replays the same chat.
let seed = 42;
const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
const gauss = () => Math.sqrt(-2 * Math.log(rnd() || 1e-9)) * Math.cos(2 * Math.PI * rnd());

// The workload model: a "thought" is 1–5 texts (54/24/12/6/4 %); texts inside a thought are a phone-typing gap
// apart (log-normal, median 2.5 s, σ 0.6: a short line typed at ~35 wpm plus the send; ≥ 0.3 s); thoughts are
// 10–60 s apart (more than any window tried, so a window never joins two thoughts).
function workload(): { at: number; thought: number }[] {
  const out: { at: number; thought: number }[] = [];
  let t = 0;
  for (let i = 0; i < thoughts; i++) {
    const r = rnd();
    const n = r < 0.54 ? 1 : r < 0.78 ? 2 : r < 0.9 ? 3 : r < 0.96 ? 4 : 5;
    for (let k = 0; k < n; k++) {
      if (k) t += Math.max(300, 2500 * Math.exp(0.6 * gauss()));
      out.push({ at: t, thought: i });
    }
    t += 10_000 + 50_000 * rnd();
  }
  return out;
}

/** A virtual clock: timers fire in time order as `advance` moves it. */
class Clock implements Timers {
  now = 0;
  #seq = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  set(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.now + ms, fn });
    return id;
  }
  clear(h: unknown): void {
    this.#timers.delete(h as number);
  }
  advance(to: number): void {
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= to && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
    }
    this.now = to;
  }
}

function run(windowMs: number, msgs: { at: number; thought: number }[]) {
  const clock = new Clock();
  const turns: { items: number[]; at: number }[] = [];
  const d = new Debouncer<number>((_k, items) => turns.push({ items, at: clock.now }), clock);
  for (const [i, m] of msgs.entries()) {
    clock.advance(m.at);
    if (windowMs === 0) turns.push({ items: [i], at: m.at });
    else d.add("k", i, "a short text", windowMs);
  }
  clock.advance(Number.MAX_SAFE_INTEGER);
  // A turn is "early" when the person had more to say in the same thought after it went to the agent.
  const early = new Set(turns.filter((t) => msgs[t.items.at(-1)! + 1]?.thought === msgs[t.items.at(-1)!]!.thought).map((t) => msgs[t.items[0]!]!.thought)).size;
  // Complete-answer latency: from a thought's last text to the turn that holds it (what the person waits for).
  const added = turns.reduce((s, t) => s + (t.at - msgs[t.items.at(-1)!]!.at), 0) / turns.length;
  return { turns: turns.length, earlyPerThought: early / thoughts, added };
}

const msgs = workload();
console.log(`${msgs.length} texts in ${thoughts} thoughts (${(msgs.length / thoughts).toFixed(2)} texts per thought)`);
console.log("| window | turns | turns per thought | turns saved | thoughts answered before they were finished | added latency per reply |");
console.log("|---|---|---|---|---|---|");
for (const w of windows) {
  const r = run(w, msgs);
  const saved = 1 - r.turns / msgs.length;
  console.log(
    `| ${w} ms | ${r.turns} | ${(r.turns / thoughts).toFixed(2)} | ${(saved * 100).toFixed(0)} % | ${(r.earlyPerThought * 100).toFixed(0)} % | ${
      Math.round(r.added)
    } ms |`,
  );
}

// With the window at 0 a turn still does the burst bookkeeping: dispatch through mergeBurst (one transaction, the
// same one row write as before) plus two indexed reads (mergedInto, the takeover lookup). Measured against the
// single setInbound it replaced, on a journal of 10,000 rows.
{
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { Store } = await import("../src/store.ts");
  const dir = mkdtempSync(join(tmpdir(), "bench-debounce-"));
  const store = Store.open(join(dir, "state"));
  const N = 10_000;
  for (let i = 1; i <= N; i++) {
    store.journalInbound("a", { guid: `g${i}`, rowid: i, chatId: 1 + (i % 50), sender: "+15550001111", isFromMe: false, createdAt: i, message: { text: "x" } });
  }
  const time = (fn: (i: number) => void) => {
    const t: number[] = [];
    for (let i = 1; i <= 2000; i++) {
      const s = performance.now();
      fn(i);
      t.push(performance.now() - s);
    }
    t.sort((a, b) => a - b);
    return `p50 ${(t[1000]! * 1000).toFixed(0)} µs, p99 ${(t[1980]! * 1000).toFixed(0)} µs`;
  };
  const before = time((i) => store.setInbound("a", `g${i}`, { state: "dispatched", agentId: "main", sessionKey: "s" }));
  const after = time((i) => {
    store.mergeBurst("a", `g${i + 2000}`, [], { agentId: "main", sessionKey: "s" });
    store.mergedInto("a", `g${i + 2000}`);
    store.getMeta(`takeover:a:dm:+15550001111`);
  });
  console.log(`\nper-turn journal work, window 0: before (setInbound) ${before}; now (mergeBurst + mergedInto + takeover lookup) ${after}`);
  store.close();
  rmSync(dir, { recursive: true, force: true });
}
