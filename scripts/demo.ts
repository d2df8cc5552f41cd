#!/usr/bin/env bun
// `npm run demo`: runs the real gateway against the bundled imsg simulator with a demo agent, plays a short
// scripted conversation (pairing, an approved DM, a group with and without a mention, a long reply that is
// chunked) and prints the transcript. Everything lives in a temp dir that is removed at the end.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SimDb, writeSimWrapper } from "./sim-db.ts";

const ROOT = resolve(import.meta.dir, "..");
const MAIN = join(ROOT, "src/main.ts");
const dir = mkdtempSync(join(tmpdir(), "openclaw-imsg-demo-"));
const dbPath = join(dir, "chat.db");
const stateDir = join(dir, "state");
const configPath = join(dir, "openclaw.json");
const cliPath = join(dir, "imsg");
const db = new SimDb(dbPath);
writeSimWrapper(cliPath, { IMSG_SIM_DB: dbPath, IMSG_SIM_POLL_MS: "100" });

const STRANGER = "+15550001111";
const FRIEND = "+15550002222";
writeFileSync(
  configPath,
  JSON.stringify(
    {
      channels: {
        imessage: {
          enabled: true,
          cliPath,
          dmPolicy: "pairing",
          groupPolicy: "allowlist",
          groupAllowFrom: [STRANGER, FRIEND],
          groups: { "*": { requireMention: true } },
          textChunkLimit: 120,
          chunkMode: "newline",
        },
      },
      messages: { groupChat: { mentionPatterns: ["@claw\\b"] } },
      agents: { list: [{ id: "main", default: true, command: [process.execPath, join(ROOT, "scripts/demo-agent.ts")] }] },
    },
    null,
    2,
  ),
);

const { NODE_ENV: _drop, ...env } = process.env;
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [MAIN, ...args, "--config", configPath, "--state-dir", stateDir], { encoding: "utf8", env: { ...env, NO_COLOR: "1" } });

const out = (s: string) => process.stdout.write(s + "\n");
const gw = spawn(process.execPath, [MAIN, "gateway", "--config", configPath, "--state-dir", stateDir, "--log-format", "json", "--verbose"], {
  env: { ...env, OPENCLAW_IMSG_TUNING: JSON.stringify({ debounceMs: 50 }) },
  stdio: ["ignore", "ignore", "pipe"],
});
const logs: { msg: string }[] = [];
let buf = "";
gw.stderr.setEncoding("utf8");
gw.stderr.on("data", (c: string) => {
  buf += c;
  let i: number;
  while ((i = buf.indexOf("\n")) >= 0) {
    try {
      logs.push(JSON.parse(buf.slice(0, i)));
    } catch {
      /* not json */
    }
    buf = buf.slice(i + 1);
  }
});

async function until<T>(fn: () => T | undefined | false, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`demo: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let seen = 0;
/** Prints the gateway's replies (is_from_me rows) that appeared since the last call, once `n` new ones exist. */
async function replies(n: number): Promise<string[]> {
  const rows = await until(() => (db.sent().length >= seen + n ? db.sent() : undefined), `${n} repl${n === 1 ? "y" : "ies"}`);
  const fresh = rows.slice(seen, seen + n);
  seen += n;
  for (const r of fresh) out(`  ← bot: ${r.text.replace(/\n/g, "\n         ")}`);
  return fresh.map((r) => r.text);
}

function say(from: string, text: string, group?: { identifier: string; name: string; participants: string[] }) {
  out(`\n  → ${from}${group ? ` in "${group.name}"` : ""}: ${text}`);
  return db.inject({ from, text, group });
}

try {
  await until(() => logs.some((l) => l.msg.startsWith("subscribed")), "the gateway to subscribe");
  out("openclaw-imsg demo: gateway running against the imsg simulator\n");

  out("1. A stranger writes. dmPolicy is \"pairing\": they get a code, the agent sees nothing.");
  say(STRANGER, "hi, is this the bot?");
  const [pairing] = await replies(1);
  const code = /Pairing code: ([A-Z2-9]{8})/.exec(pairing!)?.[1];
  if (!code) throw new Error("demo: no pairing code in the reply");
  out(`\n2. The owner approves it: openclaw-imsg pairing approve imessage ${code.toLowerCase()}`);
  out(cli("pairing", "list").stdout.replace(/^/gm, "  "));
  out("  " + cli("pairing", "approve", "imessage", code.toLowerCase()).stdout.trim());

  out("\n3. Now their DMs reach the agent (DMs share the main session).");
  say(STRANGER, "hello again");
  await replies(1);
  say(STRANGER, "still there?");
  await replies(1);

  const group = { identifier: "chat424242", name: "Weekend plans", participants: [STRANGER, FRIEND] };
  out("\n4. In a group, messages without a mention are kept as context, not answered.");
  const r = say(FRIEND, "pizza or tacos?", group);
  await until(() => logs.find((l) => l.msg.startsWith(`drop row ${r.rowid} `)), "the no-mention drop");
  out("  (no reply: no mention)");
  say(STRANGER, "@claw settle this", group);
  await replies(1);

  out("\n5. A long reply is split into parts (textChunkLimit 120, chunkMode newline).");
  say(STRANGER, "tell me a story");
  await replies(5);

  out(`\n${db.sent().length} messages sent, state in a temp dir. Try it yourself: see README "Quick start".`);
} finally {
  gw.kill("SIGTERM");
  await new Promise((r) => gw.once("exit", r));
  db.close();
  rmSync(dir, { recursive: true, force: true });
}
