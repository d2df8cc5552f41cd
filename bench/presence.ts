#!/usr/bin/env bun
// Typing start latency: from the watch child's `message` notification to the presence child reading the `typing`
// request, against the imsg simulator in 0.15.6 mode with the bridge on and an instant agent. A benchmark, not a test.
//   bun bench/presence.ts [--messages 200] [--binary dist/openclaw-imsg-linux-x64]
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SimDb, writeSimWrapper } from "../scripts/sim-db.ts";

const ROOT = resolve(import.meta.dir, "..");
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const N = Number(arg("messages", "200"));
const BINARY = arg("binary", "");

const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  async fetch(req) {
    if (req.method === "GET") return Response.json({ data: [{ id: "instant" }] });
    const body = (await req.json()) as { messages: { content: string }[] };
    return Response.json({
      choices: [{ message: { role: "assistant", content: `ok ${body.messages.at(-1)!.content.replace(/^> /gm, "")}` /* the body quotes user text */ } }],
    });
  },
});
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(2));
async function until(fn: () => boolean, what: string, ms = 30_000, every = 2): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

const dir = mkdtempSync(join(tmpdir(), "oc-imsg-bench-presence-"));
const dbPath = join(dir, "chat.db");
const trace = join(dir, "trace.jsonl");
const db = new SimDb(dbPath, { modern: true });
db.setControl("bridge", true);
const cliPath = join(dir, "imsg");
writeSimWrapper(cliPath, { IMSG_SIM_DB: dbPath, IMSG_SIM_POLL_MS: "20", IMSG_SIM_TRACE: trace, IMSG_SIM_VERSION: "0.15.6" }, { version: "0.15.6" });
const configPath = join(dir, "config.json");
writeFileSync(
  configPath,
  JSON.stringify({
    channels: { imessage: { enabled: true, cliPath, dmPolicy: "open", allowFrom: ["*"], dmHistoryLimit: 2 } },
    session: { dmScope: "per-peer" },
    agents: { list: [{ id: "main", default: true, openai: { baseUrl: `http://127.0.0.1:${server.port}/v1`, model: "instant" } }] },
  }),
);
const { NODE_ENV: _drop, ...env } = process.env;
const cmd = BINARY ? [resolve(BINARY)] : [process.execPath, join(ROOT, "src/main.ts")];
const gw = spawn(cmd[0]!, [...cmd.slice(1), "gateway", "--config", configPath, "--state-dir", join(dir, "state"), "--log-format", "json", "--verbose"], {
  env: { ...env, OPENCLAW_IMSG_TUNING: JSON.stringify({ debounceMs: 0, inboundDebounceMs: 0 }) },
  stdio: ["ignore", "ignore", "pipe"],
});
let logs = "";
gw.stderr!.setEncoding("utf8");
gw.stderr!.on("data", (c: string) => (logs += c));
await until(() => logs.includes('"msg":"capabilities: '), "the presence child's capabilities", 120_000);

type Line = { k: string; id?: number; text?: string; on?: boolean; t: number };
const lines = (): Line[] => (existsSync(trace) ? readFileSync(trace, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
const typingOn = () => lines().filter((x) => x.k === "t" && x.on).length;
const lat: number[] = [];
const sendLat: number[] = [];
for (let i = 0; i < N; i++) {
  const before = typingOn();
  const { rowid } = db.inject({ from: `+1555${String(1_000_000 + i).slice(1)}`, text: `t-${i}` });
  await until(() => db.maxRowid() > rowid && typingOn() > before, `reply and typing ${i}`, 10_000);
  const tr = lines();
  const n = tr.find((x) => x.k === "n" && x.id === rowid)!;
  const t = tr.filter((x) => x.k === "t" && x.on && x.t >= n.t)[0]!;
  lat.push(t.t - n.t);
  const sent = tr.find((x) => x.k === "s" && x.text === `ok t-${i}`);
  if (sent) sendLat.push(sent.t - n.t);
}
console.log(
  `typing start after the inbound notification (${lat.length} msgs, sequential, 0.15.6 + bridge): p50 ${fmt(pct(lat, 50))} ms, p99 ${
    fmt(pct(lat, 99))
  } ms (target ≤ 50 ms)`,
);
console.log(`same run, notification → reply \`send\` for comparison: p50 ${fmt(pct(sendLat, 50))} ms, p99 ${fmt(pct(sendLat, 99))} ms`);
gw.kill("SIGTERM");
await new Promise((r) => gw.once("exit", r));
db.close();
rmSync(dir, { recursive: true, force: true });
server.stop(true);
