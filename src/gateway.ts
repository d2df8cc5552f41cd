// The gateway runtime: one pipeline per account. Watch child → journal (cursor) → echo defence → policy →
// pairing | agent turn → deliver on a separate send child. Supervises both children; resumes from the journal.
import type { AgentConfig, Config, ImessageAccount } from "./config.ts";
import { resolveAccount } from "./config.ts";
import { configCommand } from "./config-edit.ts";
import { AgentError, buildBody, routeAgent, runAgent, sessionKey as makeSessionKey, type AgentTurn, type Peer } from "./agents.ts";
import { fetchAttachments, mediaKind, mediaPlaceholder, pruneMediaCache } from "./attachments.ts";
import { resolveRemoteHost } from "./ssh.ts";
import { deliver, planParts, reconcileOutbound, SendClient, SETTLE_MS } from "./deliver.ts";
import { chatsList, messagesHistory, parseMessage, toWireMessage, watchSubscribe, type ImsgMessage } from "./imsg.ts";
import { acquireLock, type Lock } from "./lock.ts";
import { getLog, preview, redact, type Logger } from "./log.ts";
import { approvedSenders, pairingReply, requestPairing } from "./pairing.ts";
import { compileMentionPatterns, conversationOf, decide, isOwner, type Decision } from "./policy.ts";
import { ImsgPermissionError, RpcClient, type Notification } from "./rpc.ts";
import { looksReflected, normalizeForEcho } from "./sanitize.ts";
import { inboundKey, Store, type InboundRow } from "./store.ts";
import { formatTarget, normalizeHandle, replyTargetFor, type Target } from "./targets.ts";
import { readFileSync } from "node:fs";

/** Tunables; defaults are the product's, tests and benchmarks shorten some. */
export interface GatewayTuning {
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** A child that stayed up this long resets the backoff. */
  stableAfterMs: number;
  /** Health-check the watch child when it has been silent this long. */
  watchdogMs: number;
  /** imsg's watch debounce (lets is_from_me settle before a row is emitted). */
  debounceMs?: number;
  /** Text echo window: an inbound row equal to something we sent in this conversation this recently is an echo. */
  echoWindowMs: number;
  maxConcurrentTurns: number;
  /** How long shutdown waits for agent turns before cancelling them (they re-run after a restart). */
  shutdownGraceMs: number;
  /** How long a send interrupted by its child's death gets to land before history is checked. */
  settleMs: number;
}

export const DEFAULT_TUNING: GatewayTuning = {
  backoffInitialMs: 100,
  backoffMaxMs: 60_000,
  stableAfterMs: 60_000,
  watchdogMs: 15_000,
  echoWindowMs: 30_000,
  maxConcurrentTurns: 16,
  shutdownGraceMs: 10_000,
  settleMs: SETTLE_MS,
};

/**
 * Loop breakers, per conversation and per minute: 5 echo-like rows (our own text or assistant markup coming back),
 * or 20 replies sent (two bots answering each other), stop dispatching there until the window has passed.
 */
const ECHO_BREAKER = { windowMs: 60_000, threshold: 5 };
const REPLY_BREAKER = { windowMs: 60_000, threshold: 20 };

/** Event timestamps per key within a sliding window; at most 1,000 keys (oldest dropped). */
class WindowCounter {
  #hits = new Map<string, number[]>();
  constructor(readonly windowMs: number) {}
  /** Records an event and returns how many fall in the window. */
  hit(key: string, now = Date.now()): number {
    const hits = this.#recent(key, now);
    hits.push(now);
    this.#hits.delete(key);
    this.#hits.set(key, hits);
    if (this.#hits.size > 1000) this.#hits.delete(this.#hits.keys().next().value!);
    return hits.length;
  }
  count(key: string, now = Date.now()): number {
    return this.#recent(key, now).length;
  }
  #recent(key: string, now: number): number[] {
    return (this.#hits.get(key) ?? []).filter((t) => now - t < this.windowMs);
  }
}
/** The attachment cache is also capped in size; the oldest files go first. */
const MEDIA_CACHE_MAX_BYTES = 1024 * 1024 * 1024;

/** A tiny counting semaphore: bounds concurrent agent runs across sessions. */
class Semaphore {
  #free: number;
  #queue: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#queue.push(r));
    try {
      return await fn();
    } finally {
      const next = this.#queue.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

type Reply = { text: string; media: string[] };

class AccountRuntime {
  readonly log: Logger;
  readonly sender: SendClient;
  #watch?: RpcClient;
  #subscription?: number;
  #stopping = false;
  #abort = new AbortController();
  #inflight = new Set<Promise<void>>();
  #sessions = new Map<string, Promise<void>>();
  #outbox = new Map<string, Promise<void>>();
  #poisoned = new WeakSet<RpcClient>();
  /** Deliveries that could not reach imsg (it could not start): retried with backoff, timers cleared on stop. */
  #retries = new Map<string, { attempt: number; timer?: ReturnType<typeof setTimeout> }>();
  #echoes = new WindowCounter(ECHO_BREAKER.windowMs);
  #replies = new WindowCounter(REPLY_BREAKER.windowMs);
  #warnedChats = new Set<number>();
  #catchupBoundary = 0;
  #catchupCount = 0;
  #wake?: () => void;
  #mentionCache = new Map<string, RegExp[]>();
  #remoteHost?: string;
  subscribedAt?: number;
  lastEventAt?: number;
  readonly ready: Promise<void>;
  #markReady!: () => void;
  #loop?: Promise<void>;

  constructor(
    public account: ImessageAccount,
    public cfg: Config,
    readonly store: Store,
    readonly stateDir: string,
    readonly tuning: GatewayTuning,
    readonly turns: Semaphore,
  ) {
    this.log = getLog(`gateway:${account.accountId}`);
    this.sender = new SendClient(account);
    this.ready = new Promise((r) => (this.#markReady = r));
  }

  get id(): string {
    return this.account.accountId;
  }

  /** Set by the Gateway: spreads a config saved through `/config set` to every account. */
  onConfig: (cfg: Config) => void = (cfg) => this.applyConfig(cfg);

  /** Takes a new config for policy, routing and delivery; imsg paths keep their old values until restart. */
  applyConfig(cfg: Config): void {
    let next: ImessageAccount;
    try {
      next = resolveAccount(cfg, this.id);
    } catch (e) {
      this.log.warn(`new config not applied to account ${this.id}: ${(e as Error).message}`);
      return;
    }
    this.cfg = cfg;
    this.account = { ...next, cliPath: this.account.cliPath, dbPath: this.account.dbPath };
    this.#mentionCache.clear();
  }

  start(): void {
    const d = this.account;
    if (this.cfg.session.dmScope === "main" && (d.dmPolicy === "pairing" || d.dmPolicy === "open" || d.allowFrom.filter((e) => e !== "*").length > 1)) {
      this.log.warn('DMs from different people share one agent session (session.dmScope "main"): each can see the others\' history. Set session.dmScope to "per-peer" to keep them apart.');
    }
    if (this.account.sectionMissing)
      this.log.warn('channels.imessage is missing from the config; groupPolicy defaults to "allowlist" (group messages are dropped until configured)');
    if (this.account.includeAttachments) {
      const r = resolveRemoteHost(this.account, (p) => readFileSync(p, "utf8"));
      this.#remoteHost = r.host;
      if (r.host) this.log.info(`attachments are fetched over SCP from ${r.host} (${r.source})`);
      else if (r.reason) this.log.debug(`no remote host for attachments: ${r.reason}`);
    }
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    let delay = this.tuning.backoffInitialMs;
    let recovered = false;
    while (!this.#stopping) {
      const started = Date.now();
      const client = RpcClient.start({
        cliPath: this.account.cliPath,
        dbPath: this.account.dbPath,
        timeoutMs: this.account.probeTimeoutMs,
        tag: `watch:${this.id}`,
        onNotification: (n) => this.#onNotification(n, client),
      });
      this.#watch = client;
      let failure: Error | undefined;
      try {
        if (!recovered) {
          await this.#recover();
          recovered = true;
        }
        await this.#subscribe(client);
        const watchdog = this.#startWatchdog(client);
        const info = await client.closed;
        clearInterval(watchdog);
        failure = info.error;
      } catch (e) {
        failure = e as Error;
        client.kill();
        await client.closed;
      }
      this.#subscription = undefined;
      this.subscribedAt = undefined;
      if (this.#stopping) break;
      if (Date.now() - started > this.tuning.stableAfterMs) delay = this.tuning.backoffInitialMs;
      const permission = failure instanceof ImsgPermissionError || client.permissionError;
      const wait = permission ? this.tuning.backoffMaxMs : Math.min(delay, this.tuning.backoffMaxMs) * (0.8 + Math.random() * 0.4);
      if (permission)
        this.log.error(
          `imsg cannot read the Messages database: grant Full Disk Access to the process that runs imsg (and its parent: launchd/sshd/terminal), or fix dbPath. Retrying in ${Math.round(wait / 1000)}s.`,
        );
      else this.log.warn(`watch child failed (${failure?.message ?? "exited"}); restarting in ${Math.round(wait)} ms`);
      delay = Math.min(delay * 2, this.tuning.backoffMaxMs);
      await new Promise<void>((r) => {
        const t = setTimeout(r, wait);
        this.#wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  /** Seeds the cursor on first run and learns where the catch-up backlog ends, then subscribes. */
  async #subscribe(client: RpcClient): Promise<void> {
    const newest = await this.#newestRowid(client);
    let cursor = this.store.getCursor(this.id);
    if (cursor === undefined) {
      // First run: start from "now". Recording it means messages that arrive while we are down are replayed later.
      cursor = newest;
      this.store.setCursor(this.id, cursor);
    }
    this.#catchupBoundary = Math.max(newest, cursor);
    // since_rowid 0 means "current max" to imsg, so an empty database is replayed from the start with -1.
    const since = cursor > 0 ? cursor : -1;
    this.#subscription = await watchSubscribe(
      client,
      { sinceRowid: since, attachments: this.account.includeAttachments, includeReactions: false, debounceMs: this.tuning.debounceMs },
      this.account.probeTimeoutMs,
    );
    this.subscribedAt = Date.now();
    this.store.setMeta(`subscribedAt:${this.id}`, String(this.subscribedAt));
    this.log.info(`subscribed (subscription ${this.#subscription}, since_rowid ${since}, backlog up to ${newest})`);
    this.#markReady();
  }

  /**
   * The newest message ROWID imsg can see. There is no RPC for it and history is ordered by date, not ROWID
   * (backfilled rows are old-dated), so take the highest id among the recent rows of the most active chats.
   */
  async #newestRowid(client: RpcClient): Promise<number> {
    const chats = await chatsList(client, 10, this.account.probeTimeoutMs);
    let max = 0;
    for (const c of chats as { id?: unknown }[]) {
      if (typeof c.id !== "number") continue;
      for (const m of await messagesHistory(client, c.id, { limit: 20 }, this.account.probeTimeoutMs)) max = Math.max(max, m.id);
    }
    return max;
  }

  /**
   * When the watch has been quiet a while, ask imsg for its newest row: no answer means a hung child, and a newest
   * row beyond our cursor on two checks in a row means a watch that went silent (a dead file watch, R7 in
   * user-problems.md). Either way the child is replaced and the new one resubscribes from the cursor. Quiet alone
   * is never a reason: iMessage can be silent for hours.
   */
  #startWatchdog(client: RpcClient): ReturnType<typeof setInterval> {
    let lastCheck = Date.now();
    let behind = 0;
    const t = setInterval(() => {
      const quiet = Date.now() - Math.max(this.lastEventAt ?? 0, lastCheck);
      if (quiet < this.tuning.watchdogMs || client.inFlight > 0) return;
      lastCheck = Date.now();
      this.#newestRowid(client).then(
        (newest) => {
          behind = newest > (this.store.getCursor(this.id) ?? 0) ? behind + 1 : 0;
          if (behind < 2 || !client.alive) return;
          this.log.warn(`the watch is silent although imsg has newer rows (up to ${newest}); resubscribing from the cursor`);
          client.kill();
        },
        (e) => {
          if (!client.alive) return;
          this.log.warn(`watch child is not answering (${(e as Error).message}); replacing it`);
          client.kill();
        },
      );
    }, Math.max(50, Math.min(this.tuning.watchdogMs, 5000)));
    return t;
  }

  #onNotification(n: Notification, client: RpcClient): void {
    // After a journal write failed, nothing more from this child may be journaled: a later row would move the
    // cursor past the lost one. The child is replaced and the new one resubscribes from the cursor.
    if (this.#poisoned.has(client)) return;
    try {
      this.#onNotificationUnsafe(n);
    } catch (e) {
      this.#poisoned.add(client);
      this.log.error(`cannot journal an inbound message (${(e as Error).message}); resubscribing from the last journaled row`);
      client.kill();
    }
  }

  #onNotificationUnsafe(n: Notification): void {
    if (n.method === "error") {
      const err = (n.params.error as { message?: string } | undefined)?.message ?? "unknown";
      this.log.warn(`watch subscription ${String(n.params.subscription)} failed: ${err}; resubscribing from the cursor`);
      this.#watch?.kill();
      return;
    }
    if (n.method !== "message") return;
    this.lastEventAt = Date.now();
    const raw = n.params.message;
    const parsed = parseMessage(raw);
    if ("error" in parsed) {
      const r = raw as { id?: unknown; guid?: unknown } | undefined;
      this.log.debug(`drop malformed message payload: ${parsed.error}`);
      if (r && typeof r.id === "number") {
        this.store.journalInbound(
          this.id,
          { guid: typeof r.guid === "string" ? r.guid : "", rowid: r.id, chatId: 0, sender: "", isFromMe: false, createdAt: Date.now(), message: null },
          "dropped",
          "malformed",
        );
      }
      return;
    }
    this.#ingest(parsed.message);
  }

  #ingest(msg: ImsgMessage): void {
    const key = inboundKey(msg.guid, msg.id);
    const createdAt = Date.parse(msg.createdAt);
    const fresh = this.store.journalInbound(this.id, {
      guid: msg.guid,
      rowid: msg.id,
      chatId: msg.chatId,
      sender: msg.sender,
      isFromMe: msg.isFromMe,
      createdAt: Number.isFinite(createdAt) ? createdAt : Date.now(),
      message: msg,
    });
    if (!fresh) {
      this.log.debug(`drop duplicate row ${msg.id} (${key} already journaled)`);
      return;
    }
    this.#track(this.#process(key, msg, msg.id <= this.#catchupBoundary));
  }

  #track(p: Promise<void>): void {
    const q = p.catch((e) => this.log.error(`pipeline error: ${(e as Error).stack ?? e}`)).finally(() => this.#inflight.delete(q));
    this.#inflight.add(q);
  }

  #drop(key: string, msg: ImsgMessage, reason: string, state: "dropped" | "skipped" = "dropped"): void {
    this.store.setInbound(this.id, key, { state, reason });
    this.log.debug(`drop row ${msg.id} from ${redact(msg.sender)} in chat ${msg.chatId}: ${reason}`);
  }

  #convKey(msg: ImsgMessage): string {
    return msg.isGroup || !msg.sender ? `chat:${msg.chatId}` : `dm:${normalizeForEcho(msg.sender)}`;
  }

  #echoHit(conv: string): void {
    if (this.#echoes.hit(conv) === ECHO_BREAKER.threshold) this.log.warn(`echo loop suspected in ${conv.startsWith("chat:") ? conv : "a DM"}; not replying there for a minute`);
  }

  #breakerOpen(conv: string): boolean {
    return this.#echoes.count(conv) >= ECHO_BREAKER.threshold || this.#replies.count(conv) >= REPLY_BREAKER.threshold;
  }

  /**
   * An inbound row that repeats what we just sent into the same conversation (imsg's duplicate echo rows,
   * self-chat twins). Same chat id, or for a DM the handle we sent to (a first-contact send had no chat yet).
   */
  #isTextEcho(msg: ImsgMessage): boolean {
    const text = normalizeForEcho(msg.text);
    if (!text) return false;
    const group = msg.isGroup || msg.participants.length > 1;
    // In a group, another member may well say "OK" after us: only a row under our own handle can be our echo.
    if (group && !(msg.destinationCallerId && normalizeHandle(msg.sender) === normalizeHandle(msg.destinationCallerId))) return false;
    const handles = group ? [] : [msg.sender, msg.chatIdentifier].filter(Boolean).map((h) => normalizeHandle(h));
    for (const o of this.store.outboundByEcho(this.id, text, Date.now() - this.tuning.echoWindowMs)) {
      if (o.chatId && o.chatId === msg.chatId) return true;
      const to = o.target.replace(/^(imessage|sms|auto):/, "");
      if (handles.includes(to)) return true;
    }
    return false;
  }

  /**
   * iCloud sync can write one message twice with different guids (user-problems R3): an earlier row of the same
   * chat and sender, with the same text, dated within 2 s, makes this one a twin.
   */
  #twinOf(key: string, msg: ImsgMessage): number | undefined {
    const text = normalizeForEcho(msg.text);
    const at = Date.parse(msg.createdAt);
    if (!text || !msg.chatId || !Number.isFinite(at)) return undefined;
    for (const r of this.store.inboundNear(this.id, msg.chatId, msg.sender, at, 2000, key)) {
      if (r.rowid < msg.id && normalizeForEcho((r.message as ImsgMessage | null)?.text ?? "") === text) return r.rowid;
    }
    return undefined;
  }

  async #process(key: string, msg: ImsgMessage, catchup: boolean): Promise<void> {
    if (msg.isFromMe) return this.#drop(key, msg, "from me");
    if (msg.guid && this.store.hasOutboundGuid(this.id, msg.guid)) return this.#drop(key, msg, "echo (our own message guid)");
    const age = Date.now() - Date.parse(msg.createdAt);
    // No usable date: the stale fence cannot be applied, so the row is not trusted to be fresh.
    if (!Number.isFinite(age)) return this.#drop(key, msg, `unreadable created_at ${JSON.stringify(msg.createdAt)}`, "skipped");
    if (catchup) {
      if (age > this.account.recoveryMaxAgeMinutes * 60_000) return this.#drop(key, msg, `stale: older than ${this.account.recoveryMaxAgeMinutes} min at catch-up`, "skipped");
    } else if (age > this.account.maxAgeMinutes * 60_000) {
      return this.#drop(key, msg, `stale: older than ${this.account.maxAgeMinutes} min`, "skipped");
    }
    const conv = this.#convKey(msg);
    // Expected echoes (imsg's duplicate rows, self-chat twins) are dropped but do not feed the breaker: a long
    // chunked reply would otherwise silence the conversation.
    if (this.#isTextEcho(msg)) return this.#drop(key, msg, "echo (text we just sent)");
    const twin = this.#twinOf(key, msg);
    if (twin !== undefined) return this.#drop(key, msg, `duplicate of row ${twin} (same sender, text and time; another guid)`);
    if (looksReflected(msg.text)) {
      this.#echoHit(conv);
      return this.#drop(key, msg, "reflected assistant content");
    }
    if (this.#breakerOpen(conv)) return this.#drop(key, msg, "loop breaker open");

    const { isGroup, peer } = conversationOf(msg, this.account);
    const agent = routeAgent(this.cfg, this.id, peer);
    if (!agent) return this.#drop(key, msg, "no agent configured");
    const decision = decide({
      message: msg,
      account: this.account,
      approvedSenders: approvedSenders(this.store, this.id),
      mentionPatterns: this.#mentions(agent),
      useAccessGroups: this.cfg.commands.useAccessGroups,
      // Any attachment counts, even one imsg marks missing: the agent is then told it was unavailable.
      hasMedia: this.account.includeAttachments && msg.attachments.length > 0,
    });
    // The catch-up budget counts only rows that would be answered, so dropped chatter cannot use it up.
    if (catchup && decision.kind !== "drop" && ++this.#catchupCount > this.account.recoveryMaxRows) {
      return this.#drop(key, msg, `catch-up limit of ${this.account.recoveryMaxRows} rows reached`, "skipped");
    }
    return this.#act(key, msg, decision, agent, isGroup, peer);
  }

  #mentions(agent: AgentConfig): RegExp[] {
    let r = this.#mentionCache.get(agent.id);
    if (!r) {
      const pats = agent.groupChat?.mentionPatterns ?? this.cfg.messages.groupChat.mentionPatterns ?? [];
      const c = compileMentionPatterns(pats);
      for (const bad of c.invalid) this.log.warn(`ignoring invalid mention pattern ${JSON.stringify(bad)}`);
      this.#mentionCache.set(agent.id, (r = c.regexes));
    }
    return r;
  }

  async #act(key: string, msg: ImsgMessage, d: Decision, agent: AgentConfig, isGroup: boolean, peer: Peer): Promise<void> {
    if (d.kind === "drop") {
      if (d.reason === "group id not in allowlist" && !this.#warnedChats.has(msg.chatId)) {
        this.#warnedChats.add(msg.chatId);
        this.log.info(`dropping messages from group chat_id=${msg.chatId}: not in channels.imessage.groups (add "${msg.chatId}" or "*" to allow it)`);
      }
      if (d.keepAsGroupHistory && this.account.historyLimit > 0) {
        this.store.addGroupPending(this.id, msg.chatId, { sender: msg.sender, text: msg.text }, this.account.historyLimit);
      }
      return this.#drop(key, msg, d.reason);
    }
    if (d.kind === "pairing") {
      // The request and the reply to send are recorded together: a crash in between would leave a code nobody got.
      const reply = this.store.transaction(() => {
        const { code, created } = requestPairing(this.store, this.id, d.senderId, { sender: d.senderId, chatId: String(msg.chatId) });
        if (!created) return code ? "pairing already requested (no new reply)" : "pairing: too many pending requests (no reply)";
        const r = { text: pairingReply(d.senderId, code, this.id), media: [], system: true };
        this.store.setInbound(this.id, key, { state: "replied", reply: r });
        return r;
      });
      if (typeof reply === "string") return this.#drop(key, msg, reply);
      this.log.info(`pairing requested by ${redact(d.senderId)} (approve with: openclaw-imsg pairing approve imessage <code>)`);
      return this.#deliver(key, msg, reply, isGroup);
    }
    const sk = makeSessionKey(agent.id, this.id, peer, this.cfg.session);
    this.store.setInbound(this.id, key, { state: "dispatched", agentId: agent.id, sessionKey: sk });
    // One turn at a time per session, sessions in parallel (bounded).
    const prev = this.#sessions.get(sk) ?? Promise.resolve();
    // A turn that threw must not poison the turns queued behind it.
    const next = prev.catch(() => {}).then(() => this.turns.run(() => this.#turn(key, msg, d, agent, isGroup, sk)));
    this.#sessions.set(sk, next);
    try {
      await next;
    } finally {
      if (this.#sessions.get(sk) === next) this.#sessions.delete(sk);
    }
  }

  async #turn(key: string, msg: ImsgMessage, d: Extract<Decision, { kind: "dispatch" }>, agent: AgentConfig, isGroup: boolean, sk: string): Promise<void> {
    if (this.#stopping && this.#abort.signal.aborted) return; // left "dispatched": re-run after restart
    if (d.command && d.commandAuthorized) {
      const text = this.#command(d.command, agent, sk, msg);
      if (text !== undefined) {
        const reply = { text, media: [], system: true };
        this.store.setInbound(this.id, key, { state: "replied", reply });
        return this.#deliver(key, msg, reply, isGroup);
      }
    }
    const attachments: AgentTurn["attachments"] = [];
    const notes: string[] = [];
    if (this.account.includeAttachments && msg.attachments.length) {
      const res = await fetchAttachments(msg.attachments, {
        stateDir: this.stateDir,
        sessionKey: sk,
        maxBytes: this.account.mediaMaxMb * 1024 * 1024,
        roots: this.#remoteHost ? this.account.remoteAttachmentRoots : this.account.attachmentRoots,
        remoteHost: this.#remoteHost,
        ...(this.account.sshConfig ? { scp: { sshOptions: ["-F", this.account.sshConfig] } } : {}),
      });
      for (const r of res) {
        if (r.ok) attachments.push({ path: r.path, mimeType: r.mimeType, name: r.name, size: r.size });
        else {
          notes.push("[attachment unavailable]");
          this.log.debug(`attachment of row ${msg.id} unavailable: ${r.reason}`);
        }
      }
    }
    if (this.#abort.signal.aborted) return; // shutdown while fetching: stays "dispatched"
    // Read now, cleared only with the reply: a failed or cancelled turn keeps the group's context for the next one.
    const { entries: pending, upTo } = isGroup ? this.store.peekGroupPending(this.id, msg.chatId) : { entries: [], upTo: 0 };
    const placeholder = attachments.length ? mediaPlaceholder(attachments.map((a) => mediaKind(a.mimeType))) : "";
    const body = buildBody({ isGroup, sender: msg.sender, text: msg.text || placeholder, chatName: msg.chatName, chatId: msg.chatId, pending, replyToText: msg.replyToText, replyToSender: msg.replyToSender, notes });
    const history = this.store.getHistory(this.#historyKey(sk, isGroup), isGroup ? this.account.historyLimit : this.account.dmHistoryLimit);
    const turn: AgentTurn = {
      sessionKey: sk,
      agentId: agent.id,
      accountId: this.id,
      chatType: isGroup ? "group" : "direct",
      sender: d.senderId,
      chatId: msg.chatId,
      chatGuid: msg.chatGuid,
      chatName: msg.chatName,
      messageId: msg.id,
      messageGuid: msg.guid,
      text: msg.text,
      body,
      attachments,
      wasMentioned: d.wasMentioned,
      commandAuthorized: d.commandAuthorized,
      history: history.map((h) => ({ role: h.role, text: h.text })),
      systemPrompt: d.groupConfig?.systemPrompt || undefined,
    };
    let reply: Reply;
    const started = Date.now();
    try {
      reply = await runAgent(agent, turn, this.#abort.signal);
    } catch (e) {
      if (this.#abort.signal.aborted) return; // shutdown: stays "dispatched", re-run after restart
      const msgText = e instanceof AgentError ? e.message : String(e);
      this.store.setInbound(this.id, key, { state: "failed", reason: msgText });
      this.log.warn(`agent turn for row ${msg.id} failed (nothing sent): ${msgText}`);
      return;
    }
    this.log.debug(`agent ${agent.id} answered row ${msg.id} in ${Date.now() - started} ms: ${preview(reply.text)}`);
    const hk = this.#historyKey(sk, isGroup);
    // History and the reply to send are recorded together, so a crash cannot leave a turn in history twice.
    this.store.transaction(() => {
      this.store.appendHistory(hk, "user", body);
      if (reply.text) this.store.appendHistory(hk, "assistant", reply.text);
      if (upTo) this.store.clearGroupPending(this.id, msg.chatId, upTo);
      this.store.setInbound(this.id, key, { state: "replied", reply });
    });
    return this.#deliver(key, msg, reply, isGroup);
  }

  /**
   * Where a session's history is kept. Group session keys carry no account (CONTRACT §5), and two Macs both have a
   * chat 1, 2, 3…: group history is kept per account so one account's groups never feed another's.
   */
  #historyKey(sk: string, isGroup: boolean): string {
    return isGroup ? `${this.id}/${sk}` : sk;
  }

  /** Control commands answered by the gateway itself; undefined → pass to the agent. */
  #command(cmd: { name: string; args: string }, agent: AgentConfig, sk: string, msg: ImsgMessage): string | undefined {
    switch (cmd.name) {
      case "status": {
        const a = this.store.activity(this.id);
        return [
          `account: ${this.id}`,
          `agent: ${agent.id}`,
          `session: ${sk}`,
          `backlog: ${a.backlog}`,
          `last inbound: ${a.lastInboundAt ? new Date(a.lastInboundAt).toISOString() : "never"}`,
          `last outbound: ${a.lastOutboundAt ? new Date(a.lastOutboundAt).toISOString() : "never"}`,
        ].join("\n");
      }
      case "reset":
      case "new":
        this.store.clearHistory(this.#historyKey(sk, msg.isGroup || msg.participants.length > 1));
        if (msg.isGroup) this.store.takeGroupPending(this.id, msg.chatId);
        return "Session cleared. The next message starts a new conversation.";
      case "help":
        return "Commands: /status, /reset (or /new) to start over, /config show|set|unset (when enabled), /help.";
      case "config": {
        if (!isOwner(this.account, msg.sender)) return "Only the owner (a handle listed in channels.imessage.allowFrom) may use /config.";
        const r = configCommand(this.cfg, this.account, cmd.args);
        if (r.config) this.onConfig(r.config);
        return r.reply;
      }
      default:
        return undefined;
    }
  }

  /**
   * Queues a reply on its conversation's outbox: parts of consecutive replies to one chat never interleave,
   * and the session's next agent turn does not wait for this one's sends.
   */
  #deliver(key: string, msg: ImsgMessage, reply: Reply & { system?: boolean }, isGroup: boolean): void {
    const conv = formatTarget(replyTargetFor(msg, isGroup));
    const next = (this.#outbox.get(conv) ?? Promise.resolve()).catch(() => {}).then(() => this.#send(key, msg, reply, isGroup));
    this.#outbox.set(conv, next);
    this.#track(next.finally(() => this.#outbox.get(conv) === next && this.#outbox.delete(conv)));
  }

  async #send(key: string, msg: ImsgMessage, reply: Reply & { system?: boolean }, isGroup: boolean): Promise<void> {
    const target: Target = replyTargetFor(msg, isGroup);
    // Gateway-authored replies (pairing code, /status) go out whole and unprefixed: one message, as promised.
    const { parts, rejected } = planParts(reply.text, reply.media, reply.system ? { ...this.account, responsePrefix: undefined } : this.account, { whole: reply.system, sanitize: !reply.system, stateDir: this.stateDir });
    for (const r of rejected) this.log.warn(`not attaching ${r.path}: ${r.reason}`);
    if (!parts.length) {
      this.store.setInbound(this.id, key, { state: "done", reason: "empty reply" });
      return;
    }
    const res = await deliver(this.store, this.sender, { account: this.account, target, chatId: msg.chatId || undefined, inboundKey: key, parts }, { settleMs: this.tuning.settleMs });
    if (res.retryable) return this.#retryLater(key, msg, reply, isGroup);
    this.#retries.delete(key);
    this.store.setInbound(this.id, key, res.error ? { state: "failed", reason: res.error } : { state: "done" });
    if (!res.error && this.#replies.hit(this.#convKey(msg)) === REPLY_BREAKER.threshold) {
      this.log.warn(`${REPLY_BREAKER.threshold} replies in a minute to ${isGroup ? `chat ${msg.chatId}` : redact(msg.sender)}: possible bot loop, pausing replies there for a minute`);
    }
    if (!res.error) this.log.info(`replied to ${isGroup ? `chat ${msg.chatId}` : redact(msg.sender)} (${parts.length} part${parts.length > 1 ? "s" : ""})`);
  }

  /**
   * imsg could not take the send at all (could not start, no database access): the parts stay pending and the
   * message stays "replied" (a restart resumes it too). Backoff 5 s doubling to 5 min, then it is given up.
   */
  #retryLater(key: string, msg: ImsgMessage, reply: Reply & { system?: boolean }, isGroup: boolean): void {
    const r = this.#retries.get(key) ?? { attempt: 0 };
    if (this.#stopping) return;
    if (++r.attempt > 8) {
      this.#retries.delete(key);
      this.store.setInbound(this.id, key, { state: "failed", reason: "imsg unavailable; gave up after 8 attempts" });
      this.log.error(`gave up sending the reply to row ${msg.id}: imsg stayed unavailable`);
      return;
    }
    const wait = Math.min(5000 * 2 ** (r.attempt - 1), 300_000);
    r.timer = setTimeout(() => this.#deliver(key, msg, reply, isGroup), wait);
    r.timer.unref?.();
    this.#retries.set(key, r);
  }

  /** Finishes what a previous run left: settle unknown sends, then resume every unfinished inbound row. */
  async #recover(): Promise<void> {
    const pendingOut = this.store.unsettledOutbound(this.id);
    const unfinished = this.store.unfinishedInbound(this.id);
    if (!pendingOut.length && !unfinished.length) return;
    // Parts whose fate could not be checked keep their message waiting for the next start: never re-sent blindly.
    const blocked = pendingOut.length ? (await reconcileOutbound(this.store, this.sender.client(), this.id)).unchecked : new Set<string>();
    this.log.info(`resuming ${unfinished.length} unfinished message(s) from the journal`);
    for (const row of unfinished) this.#track(this.#resume(row, blocked));
  }

  async #resume(row: InboundRow, blocked: Set<string>): Promise<void> {
    const parsed = parseMessage(toWireMessage(row.message));
    if ("error" in parsed) {
      this.store.setInbound(this.id, row.key, { state: "failed", reason: "journal entry unreadable" });
      return;
    }
    const msg = parsed.message;
    if (row.state === "replied") {
      if (blocked.has(row.key)) return;
      // A reply that could not go out for hours would arrive out of context: give it up instead.
      if (Date.now() - row.createdAt > this.account.recoveryMaxAgeMinutes * 60_000) {
        this.store.setInbound(this.id, row.key, { state: "failed", reason: `reply not delivered within ${this.account.recoveryMaxAgeMinutes} min` });
        return;
      }
      const { isGroup } = conversationOf(msg, this.account);
      return this.#deliver(row.key, msg, row.reply as Reply & { system?: boolean }, isGroup);
    }
    return this.#process(row.key, msg, true);
  }

  /** Stop taking messages, let turns finish (or cancel them after the grace period), stop children. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    const w = this.#watch;
    if (w?.alive) {
      if (this.#subscription !== undefined) await w.request("watch.unsubscribe", { subscription: this.#subscription }, { timeoutMs: 1000 }).catch(() => {});
      await w.stop();
    }
    await this.#loop;
    for (const r of this.#retries.values()) clearTimeout(r.timer);
    // Work can enqueue more work (a turn queues its delivery): drain until nothing is left.
    const drain = async () => {
      while (this.#inflight.size) await Promise.allSettled([...this.#inflight]);
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise((r) => (timer = setTimeout(r, this.tuning.shutdownGraceMs)));
    await Promise.race([drain(), grace]);
    clearTimeout(timer);
    if (this.#inflight.size) {
      this.log.info(`cancelling ${this.#inflight.size} agent turn(s); they will run again after a restart`);
      this.#abort.abort();
      await drain();
    }
    await this.sender.stop();
  }
}

export interface GatewayOptions {
  config: Config;
  stateDir: string;
  /** Account ids to run; empty → every enabled account. */
  accounts?: string[];
  tuning?: Partial<GatewayTuning>;
}

/** A running gateway: holds the lock and one runtime per account. */
export class Gateway {
  private constructor(
    readonly lock: Lock,
    readonly store: Store,
    readonly runtimes: AccountRuntime[],
  ) {}

  /** Takes the lock (LockedError when held), opens the store, starts every account. */
  static start(opts: GatewayOptions): Gateway {
    const tuning = { ...DEFAULT_TUNING, ...opts.tuning };
    const ids = opts.accounts?.length ? opts.accounts : opts.config.accountIds;
    const accounts = ids.map((id) => resolveAccount(opts.config, id)).filter((a) => opts.accounts?.length || a.enabled);
    if (!accounts.length) throw new Error("no enabled iMessage account to run (channels.imessage.enabled is false?)");
    if (!opts.config.agents.length) throw new Error("no agent configured: add agents.list with a command or openai backend");
    const lock = acquireLock(opts.stateDir);
    let store: Store;
    try {
      store = Store.open(opts.stateDir);
    } catch (e) {
      lock.release();
      throw e;
    }
    const turns = new Semaphore(tuning.maxConcurrentTurns);
    const runtimes = accounts.map((a) => new AccountRuntime(a, opts.config, store, opts.stateDir, tuning, turns));
    const gw = new Gateway(lock, store, runtimes);
    gw.#startPruning(opts.config.retentionDays, opts.stateDir);
    for (const r of runtimes) r.onConfig = (cfg) => runtimes.forEach((x) => x.applyConfig(cfg));
    lock.update({ accounts: accounts.map((a) => a.accountId) });
    for (const r of runtimes) {
      getLog("gateway").info(`starting account ${r.id} (${r.account.cliPath}${r.account.dbPath ? ` db=${r.account.dbPath}` : ""})`);
      r.start();
    }
    Promise.all(runtimes.map((r) => r.ready))
      .then(() => lock.update({ subscribedAt: Date.now() }))
      .catch((e) => getLog("gateway").warn(`cannot record the subscription in the lock file: ${(e as Error).message}`));
    return gw;
  }

  #pruneTimer?: ReturnType<typeof setInterval>;

  /** Journal, history and media cache are pruned at start and then hourly (privacy: nothing kept past the window). */
  #startPruning(retentionDays: number, stateDir: string): void {
    const run = () => {
      try {
        const n = this.store.prune(retentionDays);
        if (Object.values(n).some((x) => x > 0)) getLog("gateway").debug(`pruned journal: ${JSON.stringify(n)}`);
      } catch (e) {
        getLog("gateway").warn(`pruning the journal failed: ${(e as Error).message}`);
      }
      pruneMediaCache(stateDir, retentionDays * 86_400_000, MEDIA_CACHE_MAX_BYTES).catch((e) => getLog("gateway").warn(`pruning the media cache failed: ${(e as Error).message}`));
    };
    run();
    this.#pruneTimer = setInterval(run, 3_600_000);
    this.#pruneTimer.unref?.();
  }

  /** Resolves once every account is subscribed. */
  get ready(): Promise<void> {
    return Promise.all(this.runtimes.map((r) => r.ready)).then(() => {});
  }

  async stop(): Promise<void> {
    clearInterval(this.#pruneTimer);
    await Promise.all(this.runtimes.map((r) => r.stop()));
    this.store.close();
    this.lock.release();
  }
}
