// `imsg rpc`: the request loop and method dispatch (docs/IMSG-PROTOCOL.md "Framing", "Methods", "Start").
// 0.9: one request at a time, errors even for id-less requests, startup-error mode without the database.
// 0.15: mutations in one FIFO lane, reads concurrent, -32000 beyond BUSY_LIMIT outstanding, id-less requests
// never answered, and a missing/unreadable database is a per-request -32002 that heals once it is readable.
import { existsSync, statSync } from "node:fs";
import { SimDb, unreadableMarker } from "../sim-db.ts";
import { BUSY_LIMIT, envInt, MODERN, SELF, VERSION, versionAtLeast } from "./env.ts";
import { chatter, emit, exit, trace, writeLine } from "./output.ts";
import {
  boolParam,
  checkKeys,
  databaseUnavailable,
  type Handled,
  internalError,
  intParam,
  invalidParams,
  isoParam,
  type Json,
  laneBlocked,
  parseRequest,
  type Request,
  RpcError,
  serverBusy,
  strArrayParam,
} from "./rpc.ts";
import { OSASCRIPT_NOISE, Sender } from "./send.ts";
import { emojiTapbacks } from "./tapback.ts";
import { WatchHub } from "./watch.ts";

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

const MUTATIONS = new Set(["send", "typing", "read", "tapback"]);
const DB_METHODS = ["chats.list", "messages.history", "messages.after", "watch.subscribe"];
const SUPPORTED = ["initialize", "status", "watch.unsubscribe", ...DB_METHODS, "send", "typing", "read", "tapback"];

/** One database generation: the connection, its watch hub and sender, bound to the file's inode. */
interface Generation {
  db: SimDb;
  hub: WatchHub;
  sender: Sender;
  ino: number;
}

/** Opens the database on demand (0.15: retried on every request, rotated when the file is replaced). */
class DbResource {
  #gen?: Generation;
  #old: Generation[] = [];
  poisoned = false;
  constructor(readonly path: string) {}

  /** Why the database cannot be used now, or undefined when it can. */
  problem(): string | undefined {
    if (!existsSync(this.path)) return "The configured Messages database does not exist. Create or copy chat.db at this path, then retry.";
    if (process.env.IMSG_SIM_FDA === "1" || existsSync(unreadableMarker(this.path))) {
      return "The configured Messages database could not be opened read-only. Verify the path and grant Full Disk Access to the supervising process, then retry.";
    }
    return undefined;
  }

  require(): Generation {
    // 0.9 opens once and keeps that file handle, even when the path is replaced underneath it.
    if (this.#gen && !MODERN) return this.#gen;
    const problem = this.problem();
    if (problem) throw databaseUnavailable(this.path, problem);
    const ino = statSync(this.path).ino;
    if (this.#gen && this.#gen.ino !== ino) {
      // Replaced file: new requests use a new generation; live subscriptions keep the one they started on.
      chatter(`database replaced at ${this.path}; new generation`);
      this.#old.push(this.#gen);
      this.#gen = undefined;
    }
    if (!this.#gen) {
      const db = new SimDb(this.path, { cacheChatInfo: true, selfHandle: SELF, modern: MODERN });
      this.#gen = { db, hub: new WatchHub(db), sender: new Sender(db), ino };
    }
    return this.#gen;
  }

  get sender(): Sender | undefined {
    return this.#gen?.sender;
  }

  close(): void {
    for (const g of [...this.#old, ...(this.#gen ? [this.#gen] : [])]) {
      g.hub.close();
      g.db.close();
    }
  }
}

function statusSnapshot(res: DbResource): Record<string, Json> {
  let database: Record<string, Json>;
  let bridge = false;
  let emoji = false;
  try {
    const g = res.require();
    bridge = g.db.control("bridge") === "1";
    emoji = emojiTapbacks(g.db);
    database = {
      path: res.path,
      ready: true,
      features: { unread_state: false, scheduled_messages: false, reactions: true, reply_context: true, routing_metadata: true, balloon_payloads: true },
    };
  } catch (err) {
    database = { path: res.path, ready: false, error: err instanceof RpcError && typeof err.data === "object" ? (err.data.detail as string) : String(err) };
  }
  const methods = [
    "initialize",
    "status",
    "watch.unsubscribe",
    ...(database.ready ? DB_METHODS : []),
    "send",
    "typing",
    "read",
    ...(bridge ? ["tapback"] : []),
  ];
  return {
    version: VERSION,
    protocol_version: 1,
    database,
    bridge: bridge
      ? { ready: true, bridge_version: 2, v2_ready: true, registry_available: true, selectors: { emojiTapbackSend: emoji } }
      : { ready: false, error: "The bridge is not started. Run imsg launch explicitly before using bridge methods." },
    contacts: { available: true },
    methods,
    supported_methods: SUPPORTED,
    // Like imsg, a feature is listed only when it is there: no bridge (or no emoji selector) → no `tapback.emoji`.
    capabilities: {
      engine: { version: VERSION, commit: "imsg-sim", built_at: "2026-09-17T00:00:00Z" },
      features: emoji ? { "tapback.emoji": 2 } : {},
    },
  };
}

async function dispatch(req: Request, res: DbResource): Promise<Handled> {
  const p = req.params;
  switch (req.method) {
    case "initialize":
    case "status":
      if (!MODERN) break;
      checkKeys(req.method, p, req.method === "initialize" ? ["protocol_version"] : []);
      if (req.method === "initialize") {
        const v = intParam(p.protocol_version, "protocol_version");
        if (v !== undefined && v !== 1) throw invalidParams(`unsupported protocol_version ${v}; supported version is 1`);
      }
      return { result: statusSnapshot(res) };
    case "chats.list":
      checkKeys("chats.list", p, ["limit", "unread_only", "unreadOnly"]);
      return { result: { chats: res.require().db.listChats(Math.max(intParam(p.limit, "limit") ?? 20, 1)) as unknown as Json } };
    case "messages.history": {
      checkKeys("messages.history", p, ["chat_id", "limit", "participants", "start", "end", "attachments", "convert_attachments"]);
      const chatId = intParam(p.chat_id, "chat_id");
      if (chatId === undefined) throw invalidParams("chat_id is required");
      const limit = Math.max(intParam(p.limit, "limit") ?? 50, 1);
      const participants = strArrayParam(p.participants, "participants");
      const startMs = isoParam(p.start, "start");
      const endMs = isoParam(p.end, "end");
      const messages = res.require().db.history({ chatId, limit, participants, startMs, endMs, attachments: boolParam(p.attachments, "attachments") ?? false });
      return { result: { messages: messages as unknown as Json } };
    }
    case "messages.after": {
      if (!MODERN) break;
      checkKeys("messages.after", p, ["since_rowid", "chat_id", "limit", "attachments", "convert_attachments", "include_reactions"]);
      const since = intParam(p.since_rowid, "since_rowid");
      if (since === undefined || since < 0) throw invalidParams("since_rowid must be a non-negative integer");
      const limit = intParam(p.limit, "limit") ?? 100;
      if (limit < 1 || limit > 500) throw invalidParams("limit must be an integer between 1 and 500");
      const chatId = intParam(p.chat_id, "chat_id");
      const includeReactions = boolParam(p.include_reactions, "include_reactions") ?? false;
      const db = res.require().db;
      const { messages, lastRowid } = db.messagesAfter(since, {
        chatId,
        limit,
        includeReactions,
        attachments: boolParam(p.attachments, "attachments") ?? false,
      });
      const hasMore = db.countAfter(lastRowid, { chatId, includeReactions }) > 0;
      return { result: { messages: messages as unknown as Json, next_rowid: lastRowid, has_more: hasMore } };
    }
    case "watch.subscribe":
      return res.require().hub.subscribe(p);
    case "watch.unsubscribe": {
      checkKeys("watch.unsubscribe", p, ["subscription"]);
      const id = intParam(p.subscription, "subscription");
      if (id === undefined) throw invalidParams("subscription is required");
      if (!res.problem()) res.require().hub.unsubscribe(id);
      return { result: { ok: true } };
    }
    case "send":
      trace({ k: "s", text: typeof p.text === "string" ? p.text : "" });
      return res.require().sender.send(p);
    case "typing":
    case "read":
      if (!versionAtLeast(VERSION, "0.7.3")) break;
      trace({ k: req.method === "typing" ? "t" : "r", on: req.method === "typing" ? p.typing !== false : undefined });
      return res.require().sender.presence(req.method, p);
    case "tapback": {
      const str = (v: Json | undefined) => (typeof v === "string" ? v : undefined);
      const guid = str(p.message_id ?? p.messageId ?? p.message_guid ?? p.messageGuid ?? p.message);
      trace({ k: "tb", guid, reaction: str(p.reaction ?? p.kind), emoji: str(p.emoji), remove: p.remove === true || undefined });
      return res.require().sender.tapback(p);
    }
  }
  throw new RpcError(-32601, "Method not found", req.method);
}

/** The 0.9 startup-error banner (Full Disk Access); see docs/IMSG-PROTOCOL.md "Start". */
export async function cmdRpc(path: string, fdaBanner: (path: string) => string): Promise<number> {
  const fda = process.env.IMSG_SIM_FDA;
  // 0.9 fails at start without the database; 0.15 starts degraded (see DbResource.problem).
  // An unreadable marker (SimDb.setUnreadable) is the same missing access, so 0.9 also fails at start with it.
  const unreadable = fda === "1" || fda === "legacy" || !existsSync(path) || existsSync(unreadableMarker(path));
  const startupError = !MODERN && unreadable ? fdaBanner(path) : undefined;
  if (startupError && fda === "legacy") {
    // Before 0.8.2 the open error reached the router: human banner on stdout, exit 1, stdin never read.
    writeLine(startupError);
    return 1;
  }
  if (MODERN && process.env.IMSG_SIM_CONTACTS_STDERR === "1") {
    process.stderr.write("imsg: Contacts: Could not fetch group memberships (ABGroup); contact names may be incomplete\n");
  }
  const res = new DbResource(path);
  if (!startupError && !MODERN) res.require();
  chatter(startupError ? `cannot open ${path}` : `serving ${path} as ${SELF}`);

  const crashAfter = envInt("IMSG_SIM_CRASH_AFTER");
  const hangAfter = envInt("IMSG_SIM_HANG_AFTER");
  let count = 0;
  let outstanding = 0;
  let mutationLane: Promise<unknown> = Promise.resolve();
  const pending = new Set<Promise<void>>();

  const respond = (req: Request | { id: Json; error: RpcError }, outcome: Handled | RpcError) => {
    const hasId = !("error" in req) && req.hasId;
    // 0.15 never answers an id-less request, not even with an error (parse errors have no id to begin with).
    const silent = MODERN && !("error" in req) && !req.hasId;
    if ((outcome instanceof RpcError && !silent) || hasId) {
      if (process.env.IMSG_SIM_NOISE === "1") writeLine(OSASCRIPT_NOISE);
    }
    if (outcome instanceof RpcError) {
      if (!silent) emit({ jsonrpc: "2.0", id: req.id ?? null, error: { code: outcome.code, message: outcome.message, data: outcome.data } });
    } else {
      if (hasId) emit({ jsonrpc: "2.0", id: (req as Request).id, result: outcome.result });
      outcome.after?.();
    }
  };
  const run = async (req: Request): Promise<Handled | RpcError> => {
    try {
      if (MUTATIONS.has(req.method) && res.poisoned) throw laneBlocked("send", "applescript");
      const h = await dispatch(req, res);
      return h;
    } catch (err) {
      return err instanceof RpcError ? err : internalError(err instanceof Error ? err.message : String(err));
    } finally {
      if (res.sender?.poisoned) res.poisoned = true;
    }
  };

  for await (const line of stdinLines()) {
    count++;
    if (crashAfter !== undefined && count > crashAfter) {
      chatter(`crashing on request ${count}`);
      return exit(1);
    }
    // A stuck request blocks the loop for good: later lines and EOF go unread.
    if (hangAfter !== undefined && count > hangAfter) await new Promise<never>(() => {});
    const req = parseRequest(line);
    if ("error" in req) {
      respond(req, req.error);
      continue;
    }
    if (startupError) {
      respond(req, internalError(startupError));
      continue;
    }
    chatter(`request ${count}: ${req.method}`);
    if (!MODERN) {
      respond(req, await run(req));
      continue;
    }
    if (outstanding >= BUSY_LIMIT) {
      respond(req, serverBusy("too many outstanding requests"));
      continue;
    }
    outstanding++;
    const exec = MUTATIONS.has(req.method) ? (mutationLane = mutationLane.then(() => run(req))) : run(req);
    const done = (exec as Promise<Handled | RpcError>).then((outcome) => {
      outstanding--;
      respond(req, outcome);
    });
    pending.add(done);
    void done.finally(() => pending.delete(done));
  }
  // EOF: accepted work drains before exit.
  await Promise.all(pending);
  res.close();
  return startupError ? 1 : 0;
}
