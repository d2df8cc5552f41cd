#!/usr/bin/env bun
// imsg-sim: a stand-in for the `imsg` CLI on machines without macOS (tests, demo, benchmarks).
// It speaks `imsg rpc` as ../shared/reference/imsg-rpc.md describes (quirks included) over a chat.db-shaped
// SQLite file (scripts/sim-db.ts), and adds companion commands: `inject`, `sent`, `chats`.
//
// Environment:
//   IMSG_VERSION=x.y.z        version reported by --version / root help (default 0.9.0). Below 0.3.0 there is no
//                             `rpc` command (`rpc` → "Unknown subcommand 'rpc' for command 'imsg'", exit 1;
//                             `rpc --help` → root help, exit 0). send results follow the version (§6 Result).
//   IMSG_SIM_DB=PATH          default for --db (so a wrapper script can point at a database)
//   IMSG_SIM_SELF=HANDLE      the simulator's own handle: destination_caller_id of rows, self-chat detection
//                             (default +15550009999)
//   IMSG_SIM_POLL_MS=N        watch fallback poll interval (default 5000, like the real tool)
//   IMSG_SIM_FDA=1            startup-error mode (§1.8): every request gets -32603 with the Full Disk Access
//                             banner; exit 1 at stdin EOF. A --db path that does not exist behaves the same.
//   IMSG_SIM_FDA=legacy       pre-0.8.2 startup error: banner on stdout, exit 1 without reading stdin
//   IMSG_SIM_CRASH_AFTER=N    exit 1 abruptly when request N+1 arrives (no response to it)
//   IMSG_SIM_HANG_AFTER=N     request N+1 never completes: nothing more is answered, stdin EOF goes unnoticed
//                             (watch notifications keep flowing, as with a stuck real request)
//   IMSG_SIM_SEND_DELAY_MS=N  each `send` takes N ms (requests are serial, so everything queues behind it)
//   IMSG_SIM_NOISE=1          a non-JSON osascript line on stdout before every response
//   IMSG_SIM_ECHO_DUP=1       after each text send also write the spurious is_from_me=0 copy (same text, own handle)
//   IMSG_SIM_STDERR=1         human chatter on stderr (the real rpc path writes none)
//   IMSG_SIM_WATCH_STALL_AFTER=N  after N message notifications every subscription goes silent (requests are still
//                             answered): a watch whose file events died, as in the field
//   IMSG_SIM_TRACE=FILE       append a JSON line per emitted message notification and per send request, with
//                             a sub-millisecond epoch timestamp (benchmarks measure notification → send with it)
// Always on: a send to IMSG_SIM_SELF writes an is_from_me=1 and an is_from_me=0 row with the same date
// (self-chat), and output escapes "/" as "\/" like Foundation's JSONSerialization.
import { appendFileSync, existsSync, statSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { DEFAULT_SELF, SimDb, expandTilde, isGroupChat, isoFromMs, type ChatRow, type InjectOptions } from "./sim-db.ts";

const VERSION = process.env.IMSG_VERSION || "0.9.0";
const SELF = process.env.IMSG_SIM_SELF || DEFAULT_SELF;
const POLL_MS = envInt("IMSG_SIM_POLL_MS") ?? 5000;
const BATCH_LIMIT = 100;
const STALL_AFTER = envInt("IMSG_SIM_WATCH_STALL_AFTER");
let notified = 0;

function envInt(name: string): number | undefined {
  const v = process.env[name];
  return v && /^\d+$/.test(v) ? Number(v) : undefined;
}

/** Numeric compare of dotted versions; unparsable parts count as 0. */
function versionAtLeast(v: string, min: string): boolean {
  const a = v.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const b = min.split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== b[i]) return (a[i] ?? 0) > b[i]!;
  return true;
}
const HAS_RPC = versionAtLeast(VERSION, "0.3.0");

// ---------------------------------------------------------------------------------------------- output

const TRACE = process.env.IMSG_SIM_TRACE;
/** Benchmark timing: epoch ms with sub-ms precision (timeOrigin + now), comparable across processes. */
function trace(entry: Record<string, unknown>): void {
  if (TRACE) appendFileSync(TRACE, JSON.stringify({ ...entry, t: performance.timeOrigin + performance.now() }) + "\n");
}

let lastWrite: Promise<void> = Promise.resolve();
/** Writes one stdout line; the promise lets exit wait for the pipe (Bun truncates on exit otherwise). */
function writeLine(line: string): void {
  lastWrite = new Promise((res) => process.stdout.write(line + "\n", () => res()));
}
async function exit(code: number): Promise<never> {
  await lastWrite;
  process.exit(code);
}
function chatter(msg: string): void {
  if (process.env.IMSG_SIM_STDERR === "1") process.stderr.write(`imsg-sim: ${msg}\n`);
}
/** RPC output: Foundation escapes forward slashes (§1.1); inside JSON text "/" only occurs in strings. */
function emit(obj: unknown): void {
  writeLine(JSON.stringify(obj).replaceAll("/", "\\/"));
}

// ------------------------------------------------------------------------------------------- help / CLI

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
type ParsedOptions = { values: Map<string, string[]>; flags: Set<string> };

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
    ? { rpc: { abstract: "Run JSON-RPC over stdin/stdout", usage: "", values: ["--db", ...RUNTIME_VALUES], flags: RUNTIME_FLAGS, run: cmdRpc } }
    : {}),
  inject: {
    abstract: "(simulator) Write an incoming message into the database",
    usage:
      "imsg inject --db PATH --from HANDLE --text TEXT [--chat-id N | --group IDENT [--name NAME] [--participant H]...]\n" +
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

async function main(argv: string[]): Promise<number> {
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
    // Errors of every command go to stdout, exit 1 (§7).
    writeLine(parsed);
    return 1;
  }
  return command.run(parsed);
}

function one(o: ParsedOptions, name: string): string | undefined {
  return o.values.get(name)?.at(-1);
}

function dbPathOf(o: ParsedOptions): string {
  return resolve(expandTilde(one(o, "--db") ?? process.env.IMSG_SIM_DB ?? "~/Library/Messages/chat.db"));
}

/** The permission banner of §1.8 (two spaces after the warning sign). */
function fdaBanner(path: string): string {
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
  if (process.env.IMSG_SIM_FDA || !existsSync(path)) {
    writeLine(fdaBanner(path));
    return 1;
  }
  const raw = one(o, "--limit");
  const n = raw !== undefined && /^-?\d+$/.test(raw) ? Number(raw) : 20;
  const db = new SimDb(path, { selfHandle: SELF });
  // SQLite treats a negative LIMIT as "no limit"; 0 prints nothing (§7).
  const chats = n === 0 ? [] : db.listChats(n < 0 ? -1 : n);
  db.close();
  for (const c of chats) {
    if (!o.flags.has("--json") && !o.flags.has("-j")) {
      writeLine(`[${c.id}] ${c.name} (${c.identifier}) last=${c.last_message_at}`);
      continue;
    }
    // CLI JSON: guid omitted when empty, display_name added, slashes not escaped (§4.1).
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

// --------------------------------------------------------------------------------------------- RPC core

/** A JSON-RPC error as imsg builds it: data is always a string (§1.4). */
class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data: string,
  ) {
    super(message);
  }
}
const invalidParams = (data: string) => new RpcError(-32602, "Invalid params", data);
const internalError = (data: string) => new RpcError(-32603, "Internal error", data);
const FOUNDATION_PARSE_ERROR = "The data couldn’t be read because it isn’t in the correct format.";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Params = Record<string, Json>;
interface Request {
  hasId: boolean;
  id: Json;
  method: string;
  params: Params;
}

/** Parser rules of §1.2, in order. */
function parseRequest(line: string): Request | { id: Json; error: RpcError } {
  let value: Json;
  try {
    value = JSON.parse(line) as Json;
  } catch {
    return { id: null, error: new RpcError(-32700, "Parse error", FOUNDATION_PARSE_ERROR) };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { id: null, error: new RpcError(-32600, "Invalid Request", "request must be an object") };
  }
  const hasId = "id" in value;
  const id = hasId ? value.id! : null;
  if (typeof value.jsonrpc === "string" && value.jsonrpc !== "2.0") {
    return { id, error: new RpcError(-32600, "Invalid Request", "jsonrpc must be 2.0") };
  }
  if (typeof value.method !== "string" || value.method === "") {
    return { id, error: new RpcError(-32600, "Invalid Request", "method is required") };
  }
  const p = value.params;
  const params = p !== null && typeof p === "object" && !Array.isArray(p) ? p : {};
  return { hasId, id, method: value.method, params };
}

// Param coercions of §2 (RPCPayloads): lenient, "absent" rather than an error.
function strParam(v: Json | undefined): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number") return String(v);
  if (typeof v === "boolean") return v ? "1" : "0";
  return undefined;
}
function intParam(v: Json | undefined): number | undefined {
  if (typeof v === "number") return Math.trunc(v);
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "string" && /^[+-]?\d+$/.test(v)) return Number(v);
  return undefined;
}
function boolParam(v: Json | undefined): boolean | undefined {
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0;
  if (v === "true") return true;
  if (v === "false") return false;
  return undefined;
}
function strArrayParam(v: Json | undefined): string[] {
  if (Array.isArray(v)) return v.map((x) => strParam(x)).filter((x): x is string => x !== undefined);
  if (typeof v === "string")
    return v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  return [];
}
/** ISO-8601 with optional fractional seconds and a required zone; bad values are -32603 (§2.2). */
function isoParam(v: Json | undefined): number | undefined {
  const s = strParam(v);
  if (s === undefined) return undefined;
  const ok = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/.test(s) && !Number.isNaN(Date.parse(s));
  if (!ok) throw internalError(`Invalid ISO8601 date: ${s}`);
  return Date.parse(s);
}
function debounceParam(p: Params): number {
  const v = p.debounce_ms ?? p.debounceMs;
  if (v === undefined || v === null) return 500;
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === "string" && /^\d+$/.test(v)) return Number(v);
  throw invalidParams("debounce_ms must be a non-negative integer");
}

/** A handler's outcome: the result object, plus work that must follow the response (the first watch poll). */
interface Handled {
  result: Record<string, Json>;
  after?: () => void;
}

// ------------------------------------------------------------------------------------------------ watch

interface Subscription {
  id: number;
  chatId?: number;
  cursor: number;
  participants: string[];
  startMs?: number;
  endMs?: number;
  attachments: boolean;
  includeReactions: boolean;
  debounceMs: number;
  timer?: ReturnType<typeof setTimeout>;
  dead: boolean;
}

/** All subscriptions of the process: change events (debounced) and a fallback poll drive their polls (§5). */
class WatchHub {
  #subs = new Map<number, Subscription>();
  #nextId = 1;
  #fsWatcher?: FSWatcher;
  #interval?: ReturnType<typeof setInterval>;

  constructor(private readonly db: SimDb) {}

  subscribe(p: Params): Handled {
    const chatId = intParam(p.chat_id);
    const since = intParam(p.since_rowid);
    const participants = strArrayParam(p.participants);
    const debounceMs = debounceParam(p);
    const startMs = isoParam(p.start);
    const endMs = isoParam(p.end);
    const sub: Subscription = {
      id: this.#nextId++,
      chatId,
      // Omitted/0 → current max (new rows only); negative → replay everything; else exclusive.
      cursor: since === undefined || since === 0 ? this.db.maxRowid() : Math.max(since, 0),
      participants: participants.map((x) => x.toLowerCase()),
      startMs,
      endMs,
      attachments: boolParam(p.attachments) ?? false,
      includeReactions: boolParam(p.include_reactions) ?? false,
      debounceMs,
      dead: false,
    };
    this.#subs.set(sub.id, sub);
    this.#start();
    return { result: { subscription: sub.id }, after: () => this.#poll(sub) };
  }

  unsubscribe(id: number): void {
    const sub = this.#subs.get(id);
    if (!sub) return;
    clearTimeout(sub.timer);
    sub.dead = true;
    this.#subs.delete(id);
  }

  close(): void {
    for (const s of this.#subs.values()) this.unsubscribe(s.id);
    this.#fsWatcher?.close();
    clearInterval(this.#interval);
  }

  #start(): void {
    if (this.#interval) return;
    this.#interval = setInterval(() => {
      for (const s of this.#subs.values()) this.#poll(s);
    }, POLL_MS);
    const base = basename(this.db.path);
    try {
      // The directory, not the file: writers touch chat.db-wal / -shm (kqueue watches all three in imsg).
      this.#fsWatcher = watch(dirname(this.db.path), (_event, file) => {
        if (file && !String(file).startsWith(base)) return;
        for (const s of this.#subs.values()) {
          if (s.dead || s.timer) continue;
          s.timer = setTimeout(() => {
            s.timer = undefined;
            this.#poll(s);
          }, s.debounceMs);
        }
      });
    } catch (err) {
      chatter(`fs.watch unavailable (${err instanceof Error ? err.message : err}); fallback poll only`);
    }
  }

  #poll(s: Subscription): void {
    if (s.dead) return;
    if (STALL_AFTER !== undefined && notified >= STALL_AFTER) return;
    try {
      const { messages, lastRowid } = this.db.messagesAfter(s.cursor, {
        chatId: s.chatId,
        limit: BATCH_LIMIT,
        includeReactions: s.includeReactions,
        attachments: s.attachments,
      });
      s.cursor = lastRowid;
      for (const m of messages) {
        // Filters apply after the fetch; the cursor has already moved past rows they drop (§5).
        if (s.participants.length && !s.participants.includes(m.sender.toLowerCase())) continue;
        const t = Date.parse(m.created_at);
        if (s.startMs !== undefined && t < s.startMs) continue;
        if (s.endMs !== undefined && t >= s.endMs) continue;
        emit({ jsonrpc: "2.0", method: "message", params: { subscription: s.id, message: m } });
        notified++;
        trace({ k: "n", id: m.id, text: m.text });
      }
    } catch (err) {
      // The subscription dies but stays in the table, so unsubscribe still answers ok (§3.2).
      s.dead = true;
      clearTimeout(s.timer);
      emit({ jsonrpc: "2.0", method: "error", params: { subscription: s.id, error: { message: err instanceof Error ? err.message : String(err) } } });
    }
  }
}

// ------------------------------------------------------------------------------------------------- send

const OSASCRIPT_NOISE =
  'osascript[4242:1337] OpenScripting.framework - scripting addition "/Library/ScriptingAdditions/Adobe Unit Types.osax" cannot be used with the current OS because it has no OSAXHandlers entry in its Info.plist.';

/** Handle normalisation of AppleScript direct sends: service prefixes dropped, phones to E.164 for `region`. */
function normalizeHandle(raw: string, region: string): string {
  const h = raw.trim().replace(/^(imessage|sms|auto):/i, "");
  if (h.includes("@") || !/^\+?[\d\s().-]+$/.test(h)) return h;
  const digits = h.replace(/\D/g, "");
  if (h.startsWith("+")) return `+${digits}`;
  if (region.toUpperCase() === "US" && digits.length === 10) return `+1${digits}`;
  if (region.toUpperCase() === "US" && digits.length === 11 && digits.startsWith("1")) return `+${digits}`;
  return digits;
}
const looksLikeHandle = (s: string) => /^(imessage|sms|auto):/i.test(s) || s.includes("@") || /^\+?[\d\s().-]{3,}$/.test(s);

class Sender {
  constructor(private readonly db: SimDb) {}

  async send(p: Params): Promise<Handled> {
    const text = strParam(p.text) ?? "";
    const file = strParam(p.file) ?? "";
    const service = strParam(p.service) ?? "auto";
    if (!["auto", "imessage", "sms"].includes(service)) throw invalidParams("invalid service");
    const transport = (strParam(p.transport) ?? "auto").toLowerCase();
    if (versionAtLeast(VERSION, "0.8.1") && !["auto", "bridge", "applescript"].includes(transport)) throw invalidParams("invalid transport");
    const region = strParam(p.region) ?? "US";
    const to = strParam(p.to) ?? "";
    const chatIdParam = intParam(p.chat_id);
    const chatIdentifier = strParam(p.chat_identifier) ?? "";
    const chatGuid = strParam(p.chat_guid) ?? "";
    const hasChatTarget = chatIdParam !== undefined || chatIdentifier !== "" || chatGuid !== "";
    if (to !== "" && hasChatTarget) throw invalidParams("use to or chat_*; not both");
    if (to === "" && !hasChatTarget) throw invalidParams("to is required for direct sends");
    if (text === "" && file === "") throw invalidParams("text or file is required");
    let target = { identifier: chatIdentifier, guid: chatGuid };
    if (chatIdParam !== undefined) {
      const info = this.db.chatInfo(chatIdParam);
      if (!info) throw invalidParams(`unknown chat_id ${chatIdParam}`);
      target = { identifier: info.identifier, guid: info.guid };
    }
    if (hasChatTarget && !target.identifier && !target.guid) throw invalidParams("missing chat identifier or guid");

    if (transport === "bridge") {
      // The simulator has no IMCore helper, so an explicit bridge send fails the way an unready bridge does.
      const known = hasChatTarget ? target.guid : this.#existingDirect(normalizeHandle(to, region), service)?.guid;
      if (!known) throw invalidParams("bridge transport requires an existing chat target");
      if (text && file) throw invalidParams("bridge transport does not support text and file together");
      throw internalError("imsg bridge not ready: helper not injected into Messages.app (run `imsg launch`)");
    }

    const abs = file ? resolve(expandTilde(file)) : "";
    if (abs && (!existsSync(abs) || statSync(abs).isDirectory())) throw internalError(`AppleScript failed: Attachment not found at ${abs}`);
    const chat = this.#resolveChat(to, target, service, region);
    const delay = envInt("IMSG_SIM_SEND_DELAY_MS");
    if (delay) await new Promise((r) => setTimeout(r, delay));

    const direct = !isGroupChat(chat.identifier, chat.guid);
    const from = direct ? chat.identifier : "";
    const selfChat = direct && normalizeHandle(chat.identifier, region) === normalizeHandle(SELF, region);
    const write = (o: Omit<InjectOptions, "from" | "chatId">) => {
      const createdAt = new Date();
      const row = this.db.inject({ ...o, from, chatId: chat.id, isFromMe: true, createdAt, service: chat.service === "SMS" ? "SMS" : "iMessage" });
      // Self-chat: Messages writes the incoming twin with the identical date.
      if (selfChat) this.db.inject({ ...o, from: SELF, chatId: chat.id, createdAt });
      return row;
    };
    // Text first, then the file: two AppleScript sends, two rows (§6).
    const textRow = text ? write({ text }) : undefined;
    if (abs) write({ attachments: [{ path: abs }] });
    if (textRow && process.env.IMSG_SIM_ECHO_DUP === "1") this.db.inject({ from: SELF, chatId: chat.id, text });

    // Result shape by version (§6 Result); file-only sends never carry id/guid.
    const result: Record<string, Json> = { ok: true };
    if (versionAtLeast(VERSION, "0.8.1")) result.transport = "applescript";
    if (textRow && versionAtLeast(VERSION, "0.6.0")) {
      result.id = textRow.rowid;
      result.guid = textRow.guid;
    }
    return { result };
  }

  #existingDirect(handle: string, service: string): ChatRow | undefined {
    const prefixes = service === "sms" ? ["SMS", "any"] : ["iMessage", "any", "SMS"];
    for (const pre of prefixes) {
      const c = this.db.chatByGuid(`${pre};-;${handle}`);
      if (c) return c;
    }
    return this.db.chatByGuid(handle) ?? this.db.chatByIdentifier(handle);
  }

  // Where AppleScript would deliver: a handle-like identifier is a buddy send, else the chat by guid/identifier.
  #resolveChat(to: string, target: { identifier: string; guid: string }, service: string, region: string): ChatRow {
    const svc = service === "sms" ? "SMS" : "iMessage";
    if (to) {
      const h = normalizeHandle(to, region);
      return this.db.chatByGuid(`${svc};-;${h}`) ?? this.db.chatByGuid(`any;-;${h}`) ?? this.db.ensureDirectChat(h, svc);
    }
    if (target.identifier && looksLikeHandle(target.identifier)) {
      const h = normalizeHandle(target.identifier, region);
      return this.db.chatByGuid(target.guid) ?? this.db.chatByGuid(`${svc};-;${h}`) ?? this.db.ensureDirectChat(h, svc);
    }
    const chat = (target.guid && this.db.chatByGuid(target.guid)) || (target.identifier && this.db.chatByIdentifier(target.identifier)) || undefined;
    if (!chat) throw internalError(`AppleScript failed: Messages got an error: Can’t get chat id "${target.guid || target.identifier}". (-1728)`);
    return chat;
  }
}

// ------------------------------------------------------------------------------------------- RPC server

/** stdin as trimmed, non-blank lines, split on "\n" only (Swift readLine also drops a trailing "\r"). */
async function* stdinLines(): AsyncGenerator<string> {
  process.stdin.setEncoding("utf8");
  let buf = "";
  for await (const chunk of process.stdin as AsyncIterable<string>) {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield line;
    }
  }
  if (buf.trim()) yield buf.trim();
}

async function cmdRpc(o: ParsedOptions): Promise<number> {
  const path = dbPathOf(o);
  const fda = process.env.IMSG_SIM_FDA;
  const startupError = fda === "1" || fda === "legacy" || !existsSync(path) ? fdaBanner(path) : undefined;
  if (startupError && fda === "legacy") {
    // Before 0.8.2 the open error reached the router: human banner on stdout, exit 1, stdin never read.
    writeLine(startupError);
    return 1;
  }
  const db = startupError ? undefined : new SimDb(path, { cacheChatInfo: true, selfHandle: SELF });
  const hub = db && new WatchHub(db);
  const sender = db && new Sender(db);
  chatter(startupError ? `cannot open ${path}` : `serving ${path} as ${SELF}`);

  const crashAfter = envInt("IMSG_SIM_CRASH_AFTER");
  const hangAfter = envInt("IMSG_SIM_HANG_AFTER");
  let count = 0;
  for await (const line of stdinLines()) {
    count++;
    if (crashAfter !== undefined && count > crashAfter) {
      chatter(`crashing on request ${count}`);
      return exit(1);
    }
    // A stuck request blocks the serial loop for good: later lines and EOF go unread (§1.5, §1.7).
    if (hangAfter !== undefined && count > hangAfter) await new Promise<never>(() => {});
    const req = parseRequest(line);
    let outcome: Handled | RpcError;
    if ("error" in req) {
      outcome = req.error;
    } else if (startupError) {
      outcome = internalError(startupError);
    } else {
      chatter(`request ${count}: ${req.method}`);
      try {
        outcome = await dispatch(req, db!, hub!, sender!);
      } catch (err) {
        outcome = err instanceof RpcError ? err : internalError(err instanceof Error ? err.message : String(err));
      }
    }
    const hasId = !("error" in req) && req.hasId;
    if (outcome instanceof RpcError || hasId) {
      if (process.env.IMSG_SIM_NOISE === "1") writeLine(OSASCRIPT_NOISE);
    }
    if (outcome instanceof RpcError) {
      // Errors are sent even for id-less requests, with id null (§1.3).
      emit({ jsonrpc: "2.0", id: req.id ?? null, error: { code: outcome.code, message: outcome.message, data: outcome.data } });
    } else {
      if (hasId) emit({ jsonrpc: "2.0", id: (req as Request).id, result: outcome.result });
      outcome.after?.();
    }
  }
  hub?.close();
  db?.close();
  return startupError ? 1 : 0;
}

async function dispatch(req: Request, db: SimDb, hub: WatchHub, sender: Sender): Promise<Handled> {
  const p = req.params;
  switch (req.method) {
    case "chats.list":
      return { result: { chats: db.listChats(Math.max(intParam(p.limit) ?? 20, 1)) as unknown as Json } };
    case "messages.history": {
      const chatId = intParam(p.chat_id);
      if (chatId === undefined) throw invalidParams("chat_id is required");
      const limit = Math.max(intParam(p.limit) ?? 50, 1);
      const participants = strArrayParam(p.participants);
      const startMs = isoParam(p.start);
      const endMs = isoParam(p.end);
      const messages = db.history({ chatId, limit, participants, startMs, endMs, attachments: boolParam(p.attachments) ?? false });
      return { result: { messages: messages as unknown as Json } };
    }
    case "watch.subscribe":
      return hub.subscribe(p);
    case "watch.unsubscribe": {
      const id = intParam(p.subscription);
      if (id === undefined) throw invalidParams("subscription is required");
      hub.unsubscribe(id);
      return { result: { ok: true } };
    }
    case "send":
      trace({ k: "s", text: typeof p.text === "string" ? p.text : "" });
      return sender.send(p);
    case "typing":
    case "read":
      if (versionAtLeast(VERSION, "0.7.3")) return { result: { ok: true } };
  }
  throw new RpcError(-32601, "Method not found", req.method);
}

const code = await main(process.argv.slice(2)).catch((err: unknown) => {
  writeLine(err instanceof Error ? err.message : String(err));
  return 1;
});
await exit(code);
