// The send path's own imsg child: started on first use, replaced when it dies, times out or its mutation lane is
// poisoned, and never asked more than imsg admits (server busy is waited out, not reported).
import { type ImsgInfo, imsgInfo } from "./capabilities.ts";
import type { ImessageAccount, Service } from "./config.ts";
import { chatsList, type ImsgChat, type ImsgMessage, messagesHistory, parseChat, sendMessage, type SendResult, sendTapback, status } from "./imsg.ts";
import { getLog } from "./log.ts";
import { classifyError, ImsgPermissionError, ImsgSpawnError, RpcClient, RpcClosedError, RpcError } from "./rpc.ts";
import type { Stager } from "./stage.ts";
import { normalizeHandle, type Target } from "./targets.ts";

/** imsg serialises requests and AppleScript sends can stall for minutes (docs/IMSG-PROTOCOL.md). */
export const SEND_TIMEOUT_MS = 120_000;

/** History rows a lookup reads (newest first): far more than one reply's parts plus what arrived meanwhile. */
const HISTORY_LIMIT = 200;
/** How many chats a chat-guid lookup reads. */
const CHAT_LOOKUP_LIMIT = 500;
/** -32000 "Server busy": the request never ran; wait this long (doubling) and ask again. */
const BUSY_BASE_MS = 50;
const BUSY_MAX_MS = 2000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * What a failed send means for its part (by imsg's retry_safe/disposition where it says):
 * `refused` — imsg answered that it did not send it: failed. `not-sent` — imsg could not take sends at all (could
 * not start, database unavailable, bridge down): stays pending, retried later. `retry` — this request never ran
 * (not_started, lane blocked, busy): send again now. `in-doubt` — it may have landed (child died, timeout,
 * outcome unknown): look in history before anything is sent again.
 */
export function classifySendError(e: unknown): "refused" | "not-sent" | "retry" | "in-doubt" {
  if (e instanceof ImsgSpawnError || e instanceof ImsgPermissionError) return "not-sent";
  if (!(e instanceof RpcError)) return "in-doubt";
  switch (classifyError(e)?.kind) {
    case "database_unavailable":
    case "bridge_unavailable":
      return "not-sent";
    case "not_started":
    case "lane_blocked":
    case "server_busy":
      return "retry";
    case "outcome_unknown":
      return "in-doubt";
    default:
      return "refused";
  }
}

/**
 * A child whose lane is poisoned (0.14+: a send still in flight blocks every later mutation on it) is retired:
 * no new request goes to it, and closing its stdin lets the in-flight send finish before it exits.
 */
function poisons(e: unknown): boolean {
  if (!(e instanceof RpcError)) return false;
  const k = e.classified;
  return k.kind === "lane_blocked" || (k.kind === "outcome_unknown" && k.disposition === "still_in_flight");
}

/**
 * The send path's own imsg child, so a slow send never stalls the watch. The same child answers the history
 * lookups that settle a send in doubt.
 */
export class SendClient {
  #client?: RpcClient;
  #retired = new Set<RpcClient>();
  #stopped = false;
  #chatIds = new Map<string, number>();
  /** Each child's capabilities, asked once per child (a replacement child is asked again). */
  #caps = new WeakMap<RpcClient, Promise<ImsgInfo | undefined>>();
  readonly #log;
  /** Set when imsg runs on another host: file parts are copied there first (stage.ts). */
  stager?: Stager;
  constructor(
    private readonly account: Pick<ImessageAccount, "cliPath" | "dbPath" | "probeTimeoutMs" | "accountId">,
    private readonly timeoutMs = SEND_TIMEOUT_MS,
  ) {
    this.#log = getLog(`send:${account.accountId}`);
  }

  /** Set by stop(): nothing more is sent; callers leave their parts pending for the next start. */
  get stopped(): boolean {
    return this.#stopped;
  }

  #get(): RpcClient {
    // After stop() nothing may start a new child: a send then would race the closing of the store.
    if (this.#stopped) throw new RpcClosedError("send client stopped");
    if (!this.#client?.alive) {
      this.#client = RpcClient.start({
        cliPath: this.account.cliPath,
        dbPath: this.account.dbPath,
        timeoutMs: this.account.probeTimeoutMs,
        tag: `send:${this.account.accountId}`,
      });
    }
    return this.#client;
  }

  /** Takes a child out of use: gracefully (its in-flight send may finish) or at once (wedged). */
  #retire(c: RpcClient, graceful: boolean): void {
    if (this.#client === c) this.#client = undefined;
    if (!graceful) return c.kill();
    this.#retired.add(c);
    void c.stop(SEND_TIMEOUT_MS).finally(() => this.#retired.delete(c));
  }

  /** One request on the current child; server busy is retried with backoff, a bad child is replaced. */
  async #call<T>(fn: (c: RpcClient) => Promise<T>): Promise<T> {
    for (let n = 0;; n++) {
      const c = this.#get();
      try {
        return await fn(c);
      } catch (e) {
        if (e instanceof RpcError && e.classified.kind === "server_busy" && !this.#stopped) {
          await sleep(Math.min(BUSY_BASE_MS * 2 ** n, BUSY_MAX_MS));
          continue;
        }
        if (poisons(e)) {
          this.#log.warn(`imsg's send lane is blocked (${(e as Error).message}); starting a fresh send child`);
          this.#retire(c, true);
        } else if (!(e instanceof RpcError)) {
          // Timeout or dead child: this child may be wedged; never reuse it.
          this.#retire(c, false);
        }
        throw e;
      }
    }
  }

  send(params: Record<string, unknown>): Promise<SendResult> {
    return this.#call((c) => sendMessage(c, params, this.timeoutMs));
  }

  /** `tapback` on the current child (bridge only). */
  tapback(params: Record<string, unknown>): Promise<void> {
    return this.#call((c) => sendTapback(c, params, this.timeoutMs));
  }

  /**
   * What the current send child can do (`status`, asked once per child). undefined: imsg cannot say (0.9 has no
   * `status`), so nothing advanced is used. A failed ask is not remembered (the next one asks again).
   */
  capabilities(): Promise<ImsgInfo | undefined> {
    return this.#call((c) => {
      let p = this.#caps.get(c);
      if (!p) {
        p = status(c, this.account.probeTimeoutMs).then((st) => st && imsgInfo(st));
        this.#caps.set(c, p);
        p.catch(() => this.#caps.delete(c));
      }
      return p;
    });
  }

  /** Forgets the current child's capabilities: imsg refused what they promised (the bridge went away), ask again. */
  forgetCapabilities(): void {
    if (this.#client) this.#caps.delete(this.#client);
  }

  /** The chat's newest rows (with attachments), newest first: what a lookup for a landed part reads. */
  history(chatId: number): Promise<ImsgMessage[]> {
    return this.#call((c) => messagesHistory(c, chatId, { limit: HISTORY_LIMIT, attachments: true }, 10_000));
  }

  /** The chats imsg lists (newest first); their guids are remembered for chatIdByGuid. */
  async chats(): Promise<ImsgChat[]> {
    const raw = await this.#call((c) => chatsList(c, CHAT_LOOKUP_LIMIT, this.account.probeTimeoutMs));
    const out = raw.flatMap((r) => {
      const p = parseChat(r);
      return "chat" in p ? [p.chat] : [];
    });
    for (const c of out) if (c.guid) this.#chatIds.set(c.guid, c.id);
    return out;
  }

  /** The chat id of a chat guid (cached; chats.list read again on a miss); undefined when imsg does not list it. */
  async chatIdByGuid(guid: string): Promise<number | undefined> {
    if (!this.#chatIds.has(guid)) await this.chats();
    return this.#chatIds.get(guid);
  }

  /** The chat a send to `target` lands in among the chats imsg knows (undefined: a first contact). */
  async chatFor(target: Target, service: Service): Promise<ImsgChat | undefined> {
    return chatForTarget(await this.chats(), target, service);
  }

  async chatIdFor(target: Target, service: Service): Promise<number | undefined> {
    return target.kind === "chat_id" ? target.chatId : (await this.chatFor(target, service))?.id;
  }

  /** The pid of the child the next send goes to (starting it if needed); undefined if it cannot start. */
  pid(): number | undefined {
    try {
      return this.#get().pid;
    } catch {
      return undefined;
    }
  }

  /** The current child (for callers that make their own requests on it). */
  client(): RpcClient {
    return this.#get();
  }

  /**
   * Stops sending: the child's stdin is closed (imsg finishes what it accepted), then it is signalled after
   * `graceMs`. A send cut short stays pending in the journal and is reconciled at the next start.
   */
  async stop(graceMs = 500): Promise<void> {
    this.#stopped = true;
    const c = this.#client;
    this.#client = undefined;
    for (const r of this.#retired) r.kill();
    if (c) await c.stop(graceMs);
  }
}

/**
 * The chat a send to `target` lands in, among `chats` (undefined for a first contact). A handle matches its
 * direct chat on the service it is sent with, as Messages picks it (`SMS;-;` for sms, else `iMessage;-;`, then
 * `any;-;`). Only a guess before the send: imsg 0.14+ names the chat in its send result. Pure.
 */
export function chatForTarget(chats: ImsgChat[], target: Target, service: Service): ImsgChat | undefined {
  const svc = target.kind === "handle" && target.service !== "auto" ? target.service : service;
  const prefixes = svc === "sms" ? ["SMS;", "any;"] : ["iMessage;", "any;"];
  const byPrefix = (cands: ImsgChat[]) => prefixes.map((p) => cands.find((c) => c.guid.startsWith(p))).find((c) => c);
  switch (target.kind) {
    case "chat_id":
      return chats.find((c) => c.id === target.chatId) ?? ({ id: target.chatId } as ImsgChat);
    case "chat_guid":
      return chats.find((c) => c.guid === target.chatGuid);
    case "chat_identifier": {
      const cands = chats.filter((c) => c.identifier === target.chatIdentifier);
      return cands.length === 1 ? cands[0] : byPrefix(cands);
    }
    case "handle":
      return byPrefix(chats.filter((c) => !c.isGroup && normalizeHandle(c.identifier) === target.to));
  }
}
