// The imsg command line as the simulator offers it: help, option parsing, `chats`, and the companion commands
// `inject` and `sent` (docs/IMSG-PROTOCOL.md "CLI"). `rpc` lives in server.ts.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { expandTilde, type InjectOptions, isoFromMs, SimDb, unreadableMarker } from "../sim-db.ts";
import { HAS_RPC, MODERN, SELF, VERSION } from "./env.ts";
import { writeLine } from "./output.ts";
import { cmdReact } from "./react.ts";
import { cmdRpc } from "./server.ts";

const RPC_HELP = `imsg rpc
Run JSON-RPC over stdin/stdout

Usage:
  imsg rpc [options]

Options:
  --db <value>\tPath to chat.db (defaults to ~/Library/Messages/chat.db)
  --log-level, --logLevel <value>\tSet log level (trace|verbose|debug|info|warning|error|critical)
  -v, --verbose\tEnable verbose logging
  --json, -j, --json-output, --jsonOutput\tEmit machine-readable JSON output

Examples:
  imsg rpc
  imsg rpc --db ~/Library/Messages/chat.db`;

interface CommandSpec {
  abstract: string;
  usage: string;
  values: string[]; // options taking a value
  flags: string[];
  run(o: ParsedOptions): Promise<number>;
}
export type ParsedOptions = { values: Map<string, string[]>; flags: Set<string> };

const RUNTIME_VALUES = ["--log-level", "--logLevel"];
const RUNTIME_FLAGS = ["-v", "--verbose", "--json", "-j", "--json-output", "--jsonOutput"];

const COMMANDS: Record<string, CommandSpec> = {
  chats: {
    abstract: "List recent conversations",
    usage: "imsg chats [--limit N] [--json] [--db PATH]",
    values: ["--db", "--limit", ...RUNTIME_VALUES],
    flags: RUNTIME_FLAGS,
    run: cmdChats,
  },
  ...(HAS_RPC
    ? {
      rpc: {
        abstract: "Run JSON-RPC over stdin/stdout",
        usage: "",
        values: ["--db", ...RUNTIME_VALUES],
        flags: RUNTIME_FLAGS,
        run: (o) => cmdRpc(dbPathOf(o), fdaBanner),
      },
    }
    : {}),
  react: {
    abstract: "Send a tapback reaction to the most recent message",
    usage: "imsg react --chat-id N --reaction|-r love|like|dislike|laugh|emphasis|question [--db PATH] [--json]",
    values: ["--db", "--chat-id", "--reaction", "-r", ...RUNTIME_VALUES],
    flags: RUNTIME_FLAGS,
    run: cmdReact,
  },
  inject: {
    abstract: "(simulator) Write an incoming message into the database",
    usage: "imsg inject --db PATH --from HANDLE --text TEXT [--chat-id N | --group IDENT [--name NAME] [--participant H]...]\n" +
      "            [--attachment PATH]... [--age-minutes N] [--from-me] [--guid GUID]",
    values: ["--db", "--from", "--text", "--chat-id", "--group", "--name", "--participant", "--attachment", "--age-minutes", "--guid"],
    flags: ["--from-me"],
    run: cmdInject,
  },
  sent: {
    abstract: "(simulator) Show messages sent through the simulator",
    usage: "imsg sent --db PATH [--since-rowid N] [--json]",
    values: ["--db", "--since-rowid"],
    flags: ["--json"],
    run: cmdSent,
  },
};

function rootHelp(): string {
  const cmds = Object.entries(COMMANDS).map(([name, c]) => `  ${name}\t${c.abstract}`);
  return [
    `imsg ${VERSION}`,
    "Send and read iMessage / SMS from the terminal",
    "",
    "Usage:",
    "  imsg <command> [options]",
    "",
    "Commands:",
    ...cmds,
    "",
    "Run 'imsg <command> --help' for details.",
  ].join("\n");
}

function commandHelp(name: string, c: CommandSpec): string {
  if (name === "rpc") return RPC_HELP;
  return `imsg ${name}\n${c.abstract}\n\nUsage:\n  ${c.usage}`;
}

function parseOptions(args: string[], c: CommandSpec): ParsedOptions | string {
  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.startsWith("--") ? a.indexOf("=") : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (c.values.includes(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined) return `Missing value for option ${name}`;
      values.set(name, [...(values.get(name) ?? []), v]);
    } else if (c.flags.includes(a)) {
      flags.add(a);
    } else if (a.startsWith("-")) {
      return `Unknown option ${name}`;
    } else {
      return `Unexpected argument ${a}`;
    }
  }
  return { values, flags };
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes("--version") || argv.includes("-V")) {
    writeLine(VERSION);
    return 0;
  }
  const [name, ...rest] = argv;
  const command = name !== undefined ? COMMANDS[name] : undefined;
  if (argv.includes("--help") || argv.includes("-h") || name === undefined) {
    writeLine(command ? commandHelp(name!, command) : rootHelp());
    return 0;
  }
  if (!command) {
    writeLine(`Unknown subcommand '${name}' for command 'imsg'`);
    return 1;
  }
  const parsed = parseOptions(rest, command);
  if (typeof parsed === "string") {
    // Errors of every command go to stdout, exit 1.
    writeLine(parsed);
    return 1;
  }
  return command.run(parsed);
}

export function one(o: ParsedOptions, name: string): string | undefined {
  return o.values.get(name)?.at(-1);
}

export function dbPathOf(o: ParsedOptions): string {
  return resolve(expandTilde(one(o, "--db") ?? process.env.IMSG_SIM_DB ?? "~/Library/Messages/chat.db"));
}

/** The 0.9 permission banner (docs/IMSG-PROTOCOL.md "Start") (two spaces after the warning sign). */
export function fdaBanner(path: string): string {
  return [
    "unable to open database file (code: 14)",
    "",
    "⚠️  Permission Error: Cannot access Messages database",
    "",
    `The Messages database at ${path} requires Full Disk Access permission.`,
    "",
    "To fix:",
    "1. Open System Settings → Privacy & Security → Full Disk Access",
    "2. Add your terminal application and any parent launcher (VS Code, Node, gateway, etc.)",
    "3. Also add the built-in Terminal.app if you normally use another terminal",
    "4. Toggle stale entries off and on after terminal/Homebrew/app updates",
    "5. Restart the terminal or parent app, then try again",
    "",
    "Note: This is required because macOS protects the Messages database.",
    "For more details, see: https://github.com/steipete/imsg#permissions-troubleshooting",
  ].join("\n");
}

async function cmdChats(o: ParsedOptions): Promise<number> {
  const path = dbPathOf(o);
  if (process.env.IMSG_SIM_FDA || !existsSync(path) || existsSync(unreadableMarker(path))) {
    writeLine(fdaBanner(path));
    return 1;
  }
  const raw = one(o, "--limit");
  const n = raw !== undefined && /^-?\d+$/.test(raw) ? Number(raw) : 20;
  const db = new SimDb(path, { selfHandle: SELF, modern: MODERN });
  // SQLite treats a negative LIMIT as "no limit"; 0 prints nothing.
  const chats = n === 0 ? [] : db.listChats(n < 0 ? -1 : n);
  db.close();
  for (const c of chats) {
    if (!o.flags.has("--json") && !o.flags.has("-j")) {
      writeLine(`[${c.id}] ${c.name} (${c.identifier}) last=${c.last_message_at}`);
      continue;
    }
    // CLI JSON: guid omitted when empty, display_name added, slashes not escaped.
    const { guid, ...rest } = c;
    writeLine(JSON.stringify({ ...rest, ...(guid ? { guid } : {}), display_name: c.name }));
  }
  return 0;
}

async function cmdInject(o: ParsedOptions): Promise<number> {
  const from = one(o, "--from");
  if (!from) {
    writeLine("Missing required option --from");
    return 1;
  }
  const chatId = one(o, "--chat-id");
  const group = one(o, "--group");
  const age = one(o, "--age-minutes");
  const opts: InjectOptions = {
    from,
    text: one(o, "--text"),
    isFromMe: o.flags.has("--from-me"),
    guid: one(o, "--guid"),
    attachments: (o.values.get("--attachment") ?? []).map((p) => ({ path: resolve(p) })),
  };
  if (chatId !== undefined) opts.chatId = Number(chatId);
  if (group !== undefined) opts.group = { identifier: group, name: one(o, "--name"), participants: o.values.get("--participant") ?? [] };
  if (age !== undefined) opts.createdAt = new Date(Date.now() - Number(age) * 60_000);
  const db = new SimDb(dbPathOf(o), { selfHandle: SELF });
  try {
    const r = db.inject(opts);
    writeLine(JSON.stringify({ rowid: r.rowid, guid: r.guid, chat_id: r.chatId }));
    return 0;
  } catch (err) {
    writeLine(err instanceof Error ? err.message : String(err));
    return 1;
  } finally {
    db.close();
  }
}

async function cmdSent(o: ParsedOptions): Promise<number> {
  const path = dbPathOf(o);
  if (!existsSync(path)) {
    writeLine(`No database at ${path}`);
    return 1;
  }
  const db = new SimDb(path, { selfHandle: SELF });
  const rows = db.sent({ sinceRowid: Number(one(o, "--since-rowid") ?? 0) });
  db.close();
  for (const r of rows) {
    if (o.flags.has("--json")) {
      writeLine(JSON.stringify({ ...r, createdAt: isoFromMs(r.createdAt.getTime()) }));
    } else {
      writeLine(`[${r.rowid}] -> ${r.recipient} (${r.chatGuid || "no chat"}): ${r.text}${r.file ? ` +file ${r.file}` : ""}`);
    }
  }
  return 0;
}
