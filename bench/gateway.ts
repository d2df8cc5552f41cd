#!/usr/bin/env bun
// Gateway speed and memory against the imsg simulator with an instant agent (the openai backend against a
// loopback server that answers at once). Prints figures; it is a benchmark, not a test.
//   bun bench/gateway.ts [--messages 10000] [--binary dist/openclaw-imsg-linux-x64]
// Peer figures (OpenClaw gateway + iMessage plugin, same setup, from the issue): ~30 s start → subscribed,
// ~900 MB RSS, 774 ms median notification → send, 100 messages from 100 senders in ~100 s, 5 s to replace a
// dead watch child.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SimDb, writeSimWrapper } from "../scripts/sim-db.ts";

const ROOT = resolve(import.meta.dir, "..");
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const SOAK = Number(arg("messages", "10000"));
const BINARY = arg("binary", "");

const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  async fetch(req) {
    if (req.method === "GET") return Response.json({ data: [{ id: "instant" }] });
    const body = (await req.json()) as { messages: { role: string; content: string }[] };
    const last = body.messages.at(-1)!.content.replace(/^> /gm, ""); // the body quotes user text
    return Response.json({ choices: [{ message: { role: "assistant", content: `ok ${last}` } }] });
  },
});

interface Run {
  dir: string;
  db: SimDb;
  trace: string;
  gw: ChildProcess;
  logs: string[];
  stop(): Promise<void>;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));

async function until<T>(fn: () => T | undefined | false, what: string, ms = 120_000, every = 2): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function startRun(dmScope: string): Promise<{ run: Run; startMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), "oc-imsg-bench-"));
  const dbPath = join(dir, "chat.db");
  const trace = join(dir, "trace.jsonl");
  const db = new SimDb(dbPath);
  const cliPath = join(dir, "imsg");
  writeSimWrapper(cliPath, { IMSG_SIM_DB: dbPath, IMSG_SIM_POLL_MS: "20", IMSG_SIM_TRACE: trace });
  const configPath = join(dir, "config.json");
  writeFileSync(
    configPath,
    JSON.stringify({
      channels: { imessage: { enabled: true, cliPath, dmPolicy: "open", allowFrom: ["*"], dmSessionTurns: 4 } },
      session: { dmScope },
      agents: { list: [{ id: "main", default: true, openai: { baseUrl: `http://127.0.0.1:${server.port}/v1`, model: "instant" } }] },
    }),
  );
  const { NODE_ENV: _drop, ...env } = process.env;
  const cmd = BINARY ? [resolve(BINARY)] : [process.execPath, join(ROOT, "src/main.ts")];
  const t0 = performance.now();
  const gw = spawn(cmd[0]!, [...cmd.slice(1), "gateway", "--config", configPath, "--state-dir", join(dir, "state"), "--log-format", "json"], {
    env: { ...env, OPENCLAW_IMSG_TUNING: JSON.stringify({ debounceMs: 0, inboundDebounceMs: 0, maxConcurrentTurns: 32 }) },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const logs: string[] = [];
  let buf = "";
  gw.stderr!.setEncoding("utf8");
  gw.stderr!.on("data", (c: string) => {
    buf += c;
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      logs.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  await until(() => logs.some((l) => l.includes('"msg":"subscribed')), "subscribed", 30_000, 1);
  const startMs = performance.now() - t0;
  const run: Run = {
    dir,
    db,
    trace,
    gw,
    logs,
    async stop() {
      gw.kill("SIGTERM");
      await new Promise((r) => gw.once("exit", r));
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return { run, startMs };
}

function traceLines(run: Run): { k: string; id?: number; text: string; t: number }[] {
  if (!existsSync(run.trace)) return [];
  return readFileSync(run.trace, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** Replies so far, counted cheaply: the bench must not steal the CPU it measures. */
const sentCount = (db: SimDb) => (db.sql.query("SELECT count(*) AS n FROM message WHERE is_from_me = 1").get() as { n: number }).n;
const sender = (i: number) => `+1555${String(1_000_000 + i).slice(1)}`;
const results: string[] = [];
const report = (line: string) => {
  results.push(line);
  console.log(line);
};

// 1. Start → subscribed (median of 5).
const starts: number[] = [];
for (let i = 0; i < 5; i++) {
  const { run, startMs } = await startRun("main");
  starts.push(startMs);
  await run.stop();
}
report(
  `start → subscribed: median ${fmt(pct(starts, 50))} ms (runs: ${starts.map(fmt).join(", ")}; target ≤ 150 ms; peer ~30000 ms → ${
    fmt(30000 / pct(starts, 50))
  }× faster)`,
);

// 2. Notification → send latency, one message at a time.
{
  const { run } = await startRun("per-peer");
  const N = 300;
  for (let i = 0; i < N; i++) {
    const { rowid } = run.db.inject({ from: sender(i), text: `lat-${i}` });
    // A cheap check (max ROWID) at a gentle pace: the bench must not steal the CPU it is measuring.
    await until(() => run.db.maxRowid() > rowid, `reply ${i}`, 10_000, 2);
  }
  const tr = traceLines(run);
  const notified = new Map(tr.filter((x) => x.k === "n").map((x) => [x.text, x.t]));
  const lat = tr.filter((x) => x.k === "s" && x.text.startsWith("ok lat-")).map((x) => x.t - notified.get(x.text.slice(3))!);
  const idleRss = rssMb(run.gw.pid!);
  report(
    `notification → send (${lat.length} msgs, sequential): p50 ${fmt(pct(lat, 50))} ms, p99 ${
      fmt(pct(lat, 99))
    } ms (target p50 ≤ 3, p99 ≤ 15; peer 774 ms median → ${fmt(774 / pct(lat, 50))}×)`,
  );
  report(`RSS after start and ${N} messages: ${fmt(idleRss)} MB (target idle ≤ 60 MB; peer ~900 MB)`);

  // 3. Dead watch child replaced.
  const subs = () => run.logs.filter((l) => l.includes('"msg":"subscribed')).length;
  const before = subs();
  const kids = spawnSync("pgrep", ["-P", String(run.gw.pid)], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
  // The watch child is the one that has subscribed: the oldest imsg child.
  const watch = kids.find((p) => readFileSync(`/proc/${p}/cmdline`, "utf8").includes("imsg-sim.ts"));
  const t0 = performance.now();
  process.kill(Number(watch), "SIGKILL");
  await until(() => subs() > before, "resubscribe", 10_000, 1);
  report(`dead watch child → resubscribed: ${fmt(performance.now() - t0)} ms (target ≤ 1000 ms; peer ~5000 ms)`);
  await run.stop();
}

// 4. 1,000 messages from 1,000 senders at once.
for (const scope of ["per-peer", "main"]) {
  const { run } = await startRun(scope);
  const N = 1000;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) run.db.inject({ from: sender(i), text: `burst-${i}` });
  await until(() => sentCount(run.db) >= N, `${N} replies`, 120_000, 5);
  const ms = performance.now() - t0;
  report(`1,000 messages from 1,000 senders (dmScope ${scope}): all answered in ${fmt(ms)} ms (target ≤ 5000 ms; peer: 100 messages took ~100 s)`);
  await run.stop();
}

// 5. Memory after a soak.
{
  const { run } = await startRun("per-peer");
  const rss0 = rssMb(run.gw.pid!);
  const batch = 500;
  let done = 0;
  const t0 = performance.now();
  const samples: string[] = [];
  while (done < SOAK) {
    for (let i = 0; i < batch && done + i < SOAK; i++) run.db.inject({ from: sender((done + i) % 2000), text: `soak-${done + i}` });
    done = Math.min(SOAK, done + batch);
    await until(() => sentCount(run.db) >= done, `${done} replies`, 120_000, 10);
    if (done % Math.max(batch, Math.floor(SOAK / 5 / batch) * batch) === 0) samples.push(`${done}: ${fmt(rssMb(run.gw.pid!))}`);
  }
  const secs = (performance.now() - t0) / 1000;
  const rss1 = rssMb(run.gw.pid!);
  report(`soak ${SOAK} messages in ${fmt(secs)} s: RSS ${fmt(rss0)} MB at start → ${fmt(rss1)} MB after; along the way (messages: MB) ${samples.join(", ")}`);
  await run.stop();
}

server.stop(true);
console.log(`\n${results.length} figures (${BINARY ? `binary ${BINARY}` : "bun run src/main.ts"}, ${new Date().toISOString()})`);
