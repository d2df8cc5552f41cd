#!/usr/bin/env bun
// `npm run try`: the real gateway on the bundled imsg simulator with YOUR agent, and a prompt where you type as a
// contact (DM or group, photos, tapbacks, pairing approvals) and see what the gateway sends back. The fastest loop
// for developing an agent for this channel, no Mac needed. With stdin not a TTY, lines are played in order (each
// one settles before the next) and it exits when stdin ends: scriptable, and how the e2e test drives it.
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { loadConfig } from "../src/config.ts";
import { expandHome } from "../src/paths.ts";
import { errorMessage } from "../src/errors.ts";
import type { Injected, ReactionType } from "./sim-db.ts";
import { DEMO_AGENT, type LogLine, SimSession } from "./sim-session.ts";

const HELP = `Type a message to send it as the current contact. Commands (":" so the gateway's own /status, /reset work):
  :as <handle>                       become another contact (e.g. :as +15550002222)
  :group "<name>" <handle> <handle>… switch to a group chat with those members (you are added)
  :dm                                back to a direct chat
  :photo <path> [caption]            send an image or file as an attachment
  :tapback <kind> [remove]           react to the agent's last reply here (love like dislike laugh emphasis question)
  :approve [code]                    approve the pending pairing request (runs the real \`pairing approve\`)
  :logs                              show/hide the gateway's log lines (warnings are always shown)
  :help  :quit`;

const USAGE = `Usage: npm run try -- [--config PATH] [--agent "<command…>"] [--as <handle>] [--timeout SECONDS]
  --config   config whose agents, bindings and channels.imessage policy are used (default $OPENCLAW_CONFIG_PATH,
             else ~/.openclaw/openclaw.json; without one the demo agent answers). cliPath/dbPath always point at
             the simulator; remoteHost is removed.
  --agent    agent command to use instead of the config's agents (split on spaces; quote with "…")
  --as       the contact you start as (default: the config's first allowFrom handle, else +15550001111)
  --timeout  non-interactive: how long one line may take to settle (default 120)`;

const TAPBACKS: ReactionType[] = ["love", "like", "dislike", "laugh", "emphasis", "question"];
const DEFAULT_ME = "+15550001111";

/** Splits a line into words; "double quotes" keep spaces. */
export function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2]!);
  return out;
}

type Doc = Record<string, unknown>;
const isObj = (v: unknown): v is Doc => typeof v === "object" && v !== null && !Array.isArray(v);

/** Where the account's simulator-bound settings come from, and what the try session changes in them. */
interface Plan {
  doc: Doc;
  accountId: string;
  me: string;
  agentNote: string;
}

/**
 * The gateway config for the session: the user's agents, bindings, session/messages/commands and the chosen
 * account's channels.imessage keys, with cliPath/dbPath on the simulator, no remote host, attachments on (under a
 * root in the temp dir) and, when allowFrom names nobody, the typing contact as the owner.
 */
function plan(s: SimSession, o: { config?: string; agent?: string; as?: string }): Plan {
  const explicit = o.config ?? (process.env.OPENCLAW_CONFIG_PATH || undefined);
  const path = resolve(expandHome(explicit ?? "~/.openclaw/openclaw.json"));
  const cfg = explicit !== undefined || existsSync(path) ? loadConfig(path) : undefined;
  const raw: Doc = cfg?.raw ?? {};
  const im: Doc = isObj(raw.channels) && isObj(raw.channels.imessage) ? raw.channels.imessage : {};
  const accountId = cfg?.defaultAccount ?? "default";
  const { accounts, defaultAccount: _d, ...top } = im;
  const own = isObj(accounts) && isObj(accounts[accountId]) ? accounts[accountId] : {};
  // Shallow, as the gateway overlays an account on the top level.
  const acct: Doc = { ...top, ...own };
  for (const k of ["cliPath", "dbPath", "remoteHost", "sshConfig", "remoteAttachmentRoots"]) delete acct[k];
  acct.enabled = true;
  acct.cliPath = s.cliPath;
  acct.dbPath = s.dbPath;
  acct.includeAttachments ??= true;
  acct.attachmentRoots = [...(Array.isArray(acct.attachmentRoots) ? acct.attachmentRoots : []), join(s.dir, "Attachments")];
  const allow = (Array.isArray(acct.allowFrom) ? acct.allowFrom : []).map(String).filter((h) => h.trim() && h !== "*");
  const me = o.as ?? allow[0]?.replace(/^(imessage|sms|auto):/i, "") ?? DEFAULT_ME;
  if (!allow.length) acct.allowFrom = [...(Array.isArray(acct.allowFrom) ? acct.allowFrom : []), me];
  acct.groups ??= { "*": { requireMention: true } };

  const doc: Doc = {};
  for (const k of ["session", "messages", "commands", "bindings"]) if (raw[k] !== undefined) doc[k] = raw[k];
  let agentNote: string;
  if (o.agent) {
    const argv = words(o.agent);
    doc.agents = { list: [{ id: "main", default: true, command: argv }] };
    delete doc.bindings;
    agentNote = `agent "main": ${argv.join(" ")} (--agent)`;
  } else if (cfg?.agents.length) {
    doc.agents = raw.agents;
    const d = cfg.agents.find((a) => a.default)!;
    agentNote = `agents from ${cfg.path} (default "${d.id}": ${d.command ? d.command.join(" ") : `openai ${d.openai!.model} at ${d.openai!.baseUrl}`})`;
  } else {
    doc.agents = { list: [{ id: "main", default: true, command: [process.execPath, DEMO_AGENT] }] };
    delete doc.bindings;
    // The demo agent is nameless; give groups a mention to gate on, as the demo does.
    if (!cfg) doc.messages = { groupChat: { mentionPatterns: ["@claw\\b"] } };
    agentNote = cfg
      ? `${cfg.path} has no agents: using the demo agent (scripts/demo-agent.ts)`
      : `no config at ${path}: using the demo agent (scripts/demo-agent.ts; mention it in groups with @claw). Pass --config or --agent for yours`;
  }
  const imessage = accountId === "default" && !isObj(accounts) ? acct : { defaultAccount: accountId, accounts: { [accountId]: acct } };
  if (im.retentionDays !== undefined) (imessage as Doc).retentionDays = im.retentionDays;
  doc.channels = { imessage };
  return { doc, accountId, me, agentNote };
}

async function main(): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      options: {
        config: { type: "string" },
        agent: { type: "string" },
        as: { type: "string" },
        timeout: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`${errorMessage(e)}\n${USAGE}\n`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(`${USAGE}\n\n${HELP}\n`);
    return 0;
  }
  const timeoutMs = Number(flags.timeout ?? 120) * 1000;
  const tty = process.stdin.isTTY === true;
  const out = (t: string) => process.stdout.write(t + "\n");

  const s = new SimSession("openclaw-imsg-try-");
  let quitting: Promise<void> | undefined;
  const quit = (code: number) => {
    quitting ??= s.close().finally(() => process.exit(code));
    return quitting;
  };
  process.once("SIGINT", () => void quit(130));
  process.once("SIGTERM", () => void quit(143));

  let p: Plan;
  try {
    p = plan(s, flags);
    s.writeConfig(p.doc);
  } catch (e) {
    process.stderr.write(`${errorMessage(e)}\n`);
    await s.close();
    return 2;
  }
  let showLogs = false;
  // Created once the gateway runs: piped lines read before the loop below starts iterating would be lost.
  let rl: ReturnType<typeof createInterface> | undefined;
  // Async output must not tear the prompt line the person is typing on.
  const print = (t: string) => {
    if (!tty) return out(t);
    process.stdout.write("\r\x1b[K" + t + "\n");
    rl?.prompt(true);
  };
  s.onLog = (l: LogLine) => {
    if (showLogs || l.level === "warn" || l.level === "error" || l.level === "fatal" || l.level === "raw") print(`  [gateway ${l.level}] ${l.msg}`);
  };
  s.onExit = (code) => {
    print(`the gateway exited (code ${code}); stopping`);
    void quit(1);
  };
  out(`openclaw-imsg try: the real gateway on the imsg simulator (temp dir ${s.dir})`);
  out(`  ${p.agentNote}`);
  try {
    await s.start();
  } catch (e) {
    process.stderr.write(`${errorMessage(e)}\n`);
    await s.close();
    return 1;
  }

  let me = p.me;
  let group: { identifier: string; name: string; participants: string[] } | undefined;
  const where = () => (group ? `"${group.name}"` : "DM");
  out(`  you are ${me} in a DM; type a message, or :help`);

  // Pending rows: each settles when the journal says the gateway is done with it; replies print as imsg sends them.
  const pending = new Map<number, { row: Injected; done: () => void; settled: Promise<void>; quiet?: boolean }>();
  const flush = () => {
    for (const r of s.takeSent()) print(`  ← ${s.chatLabel(r)}: ${(r.file ? `[file ${basename(r.file)}] ` : "") + r.text.replace(/\n/g, "\n    ")}`);
  };
  const poll = setInterval(() => {
    const settled = [...pending.values()].map((x) => ({ x, st: s.settled(x.row, p.accountId) })).filter((y) => y.st);
    flush(); // after the states: a "done" row's replies are already in chat.db
    for (const { x, st } of settled) {
      pending.delete(x.row.rowid);
      if (st!.state !== "done" && st!.state !== "merged" && !x.quiet) print(`  · not answered (${st!.state}${st!.reason ? `: ${st!.reason}` : ""})`);
      x.done();
    }
  }, 50);

  const inject = (o: Parameters<typeof s.db.inject>[0], quiet = false): { row: Injected; settled: Promise<void> } => {
    const row = s.db.inject(o);
    let done!: () => void;
    const settled = new Promise<void>((r) => (done = r));
    pending.set(row.rowid, { row, done, settled, quiet });
    return { row, settled };
  };
  const chatOpts = () => (group ? { group } : {});
  /** Waits for a row to settle, or (interactive) not at all; a row that never settles ends a script with an error. */
  const settle = async (p: Promise<void>, what: string, ms = timeoutMs) => {
    if (tty) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((
      _,
      rej,
    ) => (timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for the gateway to settle ${what}`)), ms)));
    try {
      await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
    }
  };

  async function command(line: string): Promise<boolean> {
    const [cmd, ...args] = words(line.slice(1));
    switch (cmd) {
      case "as":
        if (!args[0]) return print("  usage: :as <handle>"), true;
        me = args[0];
        print(`  you are ${me} in ${where()}`);
        return true;
      case "group": {
        const [name, ...members] = args;
        if (!name) return print('  usage: :group "<name>" <handle>…'), true;
        const participants = [...new Set([me, ...members])];
        group = { identifier: `chat${[...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7)}`, name, participants };
        print(`  you are ${me} in group "${name}" (${participants.join(", ")})`);
        return true;
      }
      case "dm":
        group = undefined;
        print(`  you are ${me} in a DM`);
        return true;
      case "photo": {
        const [file, ...caption] = args;
        if (!file || !existsSync(file)) return print(`  usage: :photo <existing path> [caption]${file ? ` (${file} not found)` : ""}`), true;
        // Under the session's attachment root, as Messages keeps them under ~/Library/Messages/Attachments.
        const dest = join(s.dir, "Attachments", String(Date.now()), basename(file));
        mkdirSync(join(dest, ".."), { recursive: true });
        copyFileSync(file, dest);
        const text = caption.length ? `\ufffc${caption.join(" ")}` : undefined;
        await settle(inject({ from: me, ...chatOpts(), attachments: [{ path: dest }], ...(text ? { text } : {}) }).settled, "the photo");
        return true;
      }
      case "tapback": {
        const type = args[0] as ReactionType;
        if (!TAPBACKS.includes(type)) return print(`  usage: :tapback <${TAPBACKS.join("|")}> [remove]`), true;
        const chatId = group ? s.db.chatByIdentifier(group.identifier)?.id : s.db.chatByIdentifier(me)?.id;
        const last = s.db.sent().filter((r) => r.chatId === chatId).at(-1);
        if (!last || chatId === undefined) return print("  no reply from the agent in this chat yet"), true;
        const t = inject({ from: me, chatId, reaction: { to: last.guid, type, remove: args[1] === "remove" } }, true);
        // A gateway that does not subscribe to reactions never journals the row; that is an answer too.
        await settle(t.settled, "the tapback", 5000).catch(() => {
          pending.delete(t.row.rowid);
          print("  · the gateway did not take the tapback (it does not receive reactions)");
        });
        return true;
      }
      case "approve": {
        let code = args[0];
        if (!code) {
          const list = s.cli("pairing", "list", "--json");
          const reqs = (JSON.parse(list.stdout || "{}").requests ?? []) as { code: string; id: string }[];
          code = (reqs.find((r) => r.id === me) ?? reqs.at(-1))?.code;
          if (!code) return print("  no pending pairing request"), true;
        }
        const r = s.cli("pairing", "approve", "imessage", code);
        print(`  $ openclaw-imsg pairing approve imessage ${code}\n  ${(r.stdout + r.stderr).trim().replace(/\n/g, "\n  ")}`);
        return true;
      }
      case "logs":
        showLogs = !showLogs;
        print(`  gateway logs ${showLogs ? "shown" : "hidden (warnings still shown)"}`);
        return true;
      case "help":
        print(HELP);
        return true;
      case "quit":
      case "q":
        return false;
      default:
        print(`  unknown command :${cmd ?? ""} (:help lists them)`);
        return true;
    }
  }

  let code = 0;
  rl = createInterface({ input: process.stdin, output: process.stdout, terminal: tty });
  // In a terminal readline takes Ctrl-C itself (raw mode), so the process never sees SIGINT.
  rl.on("SIGINT", () => void quit(130));
  try {
    if (tty) {
      rl.setPrompt("> ");
      rl.prompt();
    }
    for await (const raw of rl) {
      const line = raw.trim();
      if (line) {
        if (!tty) out(`→ ${me} (${where()}): ${line}`);
        if (line.startsWith(":")) {
          if (!(await command(line))) break;
        } else {
          await settle(inject({ from: me, text: line, ...chatOpts() }).settled, `"${line}"`);
        }
      }
      if (tty) rl.prompt();
    }
    // End of input: let what is still in flight finish (bounded), then report it.
    await settle(Promise.all([...pending.values()].map((x) => x.settled)).then(() => {}), "the last lines");
  } catch (e) {
    print(`try: ${errorMessage(e)}`);
    code = 1;
  } finally {
    clearInterval(poll);
    flush();
    rl.close();
  }
  await quit(code);
  return code;
}

if (import.meta.main) process.exitCode = await main();
