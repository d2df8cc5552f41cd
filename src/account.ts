// One account's pipeline, in order: ingest (journal, cursor) → screen (echoes, stale rows)
// → decide (policy) → rate guard (admitted senders: hold, delay or pass) → act (drop | pairing | dispatch) → turn
// (agent) → outbox (ordered sends). Recovery (recovery.ts) resumes what the journal left unfinished; stop lets turns finish,
// then cancels them (they re-run after restart).
import type { AgentConfig, Config, ImessageAccount } from "./config.ts";
import { resolveAccount } from "./config.ts";
import { directiveLines, resolveActions, type TurnActions, turnActions } from "./actions.ts";
import { AgentError, type AgentReply, type AgentTurn, routeAgent, runAgent, sessionKey as makeSessionKey } from "./agents.ts";
import { fetchTurnAttachments } from "./attachments.ts";
import { SendClient } from "./deliver.ts";
import { type ImsgMessage, parseMessage } from "./imsg.ts";
import { recover } from "./recovery.ts";
import { resolveRemoteHost } from "./ssh.ts";
import { stagerFor } from "./stage.ts";
import { getLog, type Logger, preview, redact } from "./log.ts";
import { type OutboundReply, Outbox } from "./outbox.ts";
import { approvedSenders, pairingTurn } from "./pairing.ts";
import { Presence } from "./presence.ts";
import { RateGuard } from "./guard.ts";
import { Pauses } from "./pauses.ts";
import { admitted, compileMentionPatterns, conversationOf, decide, dmSessionMayBeShared } from "./policy.ts";
import { type Decision, type Peer, SHARED_SESSION_FIX, SHARED_SESSION_WARNING } from "./policy.ts";
import { Cancellers, drainWithin, KeyedQueue, Semaphore, sleep } from "./queues.ts";
import { describeReaction, reactionGate } from "./reactions.ts";
import { type InboundReason, reasonText } from "./reasons.ts";
import { convKey, screen, type ScreenLookups } from "./screen.ts";
import { burstKey, Debouncer, mergeTexts } from "./debounce.ts";
import { ownerReplied, ownerView, quietUntil, seedDmSession } from "./context.ts";
import { inboundKey, Store } from "./store.ts";
import { assembleTurn, controlCommand, type Dispatch, ERROR_REPLY, historyKey } from "./turn.ts";
import type { GatewayTuning } from "./tuning.ts";
import { Watch } from "./watch.ts";
import { readFileSync } from "node:fs";

// Waits in a burst. conv: the rate guard's key; slow: the guard asked for the reply to be delayed (a probe).
type Pending = { key: string; msg: ImsgMessage; d: Dispatch; agent: AgentConfig; isGroup: boolean; sk: string; conv: string; slow: boolean };
type Mode = "live" | "catchup" | "resumed";

export class AccountRuntime {
  readonly log: Logger;
  readonly sender: SendClient;
  readonly watch: Watch;
  readonly outbox: Outbox;
  /** Typing and read receipts, on an imsg child of their own (see presence.ts). */
  readonly presence: Presence;
  readonly guard: RateGuard;
  readonly pauses: Pauses;
  /** One agent turn at a time per session, sessions in parallel (bounded by `turns`). */
  readonly #sessions = new KeyedQueue();
  /** Bursts of texts per account + chat + sender, merged into one turn (messages.inbound.debounceMs). */
  readonly #bursts = new Debouncer<Pending>((_k, items) => this.#track(this.#dispatch(items)));
  #stopping = false;
  #abort = new AbortController();
  /** The agent turn running per conversation, for /stop. */
  #running = new Cancellers(this.#abort.signal);
  #inflight = new Set<Promise<void>>();
  #warnedChats = new Set<number>();
  #catchupCount = 0;
  #mentionCache = new Map<string, RegExp[]>();
  #remoteHost?: string;
  #remoteSsh: string[] = [];
  readonly #lookups: ScreenLookups;

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
    this.sender.stager = stagerFor(account, store);
    const current = () => this.account;
    this.watch = new Watch({
      account: current,
      store,
      tuning,
      log: this.log,
      onMessage: (raw) => this.#ingest(raw),
      beforeFirstSubscribe: () =>
        recover({
          accountId: this.id,
          account: current,
          store,
          sender: this.sender,
          settleMs: tuning.settleMs,
          log: this.log,
          outbox: this.outbox,
          track: (p) => this.#track(p),
          process: (key, msg) => this.#process(key, msg, "catchup"),
        }),
    });
    this.guard = new RateGuard(store, account.accountId);
    const notify = (key: string, msg: ImsgMessage, text: string, isGroup: boolean) => this.outbox.enqueue(key, msg, { text, media: [], system: true }, isGroup);
    const reprocess = (key: string, msg: ImsgMessage) => this.#track(this.#process(key, msg, "resumed"));
    this.pauses = new Pauses({ account: current, store, guard: this.guard, log: this.log, notify, reprocess, stop: (conv) => this.#running.cancel(conv) });
    this.outbox = new Outbox({
      account: current,
      store,
      sender: this.sender,
      stateDir,
      configPath: cfg.path,
      settleMs: tuning.settleMs,
      log: this.log,
      guard: this.guard,
      track: (p) => this.#track(p),
    });
    this.presence = new Presence({ account: current, log: this.log });
    const id = account.accountId;
    this.#lookups = {
      hasOutboundGuid: (guid) => store.hasOutboundGuid(id, guid),
      outboundByEcho: (text, since) => store.outboundByEcho(id, text, since),
      inboundNear: (chatId, sender, at, windowMs, except) => store.inboundNear(id, chatId, sender, at, windowMs, except),
    };
  }

  get id(): string {
    return this.account.accountId;
  }

  get ready(): Promise<void> {
    return this.watch.ready;
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
    if (dmSessionMayBeShared(this.cfg.session.dmScope, d)) this.log.warn(`${SHARED_SESSION_WARNING} ${SHARED_SESSION_FIX}`);
    if (this.account.sectionMissing) {
      this.log.warn('channels.imessage is missing from the config; groupPolicy defaults to "allowlist" (group messages are dropped until configured)');
    }
    if (this.account.includeAttachments) {
      const r = resolveRemoteHost(this.account, (p) => readFileSync(p, "utf8"));
      this.#remoteHost = r.host;
      this.#remoteSsh = r.sshOptions;
      if (r.host) this.log.info(`attachments are fetched over SCP from ${r.host} (${r.source})`);
      else if (r.reason) this.log.debug(`no remote host for attachments: ${r.reason}`);
    }
    this.watch.start();
    this.watch.ready.then(() => this.presence.start(), () => {});
  }

  /** Ingest: a watch payload is journaled (moving the cursor) before anything else; a throw here replaces the child. */
  #ingest(raw: unknown): void {
    const parsed = parseMessage(raw);
    if ("error" in parsed) {
      // Not journaled: its id is unchecked (a stray {"id":900000000} would move the cursor past every real row).
      const id = (raw as { id?: unknown } | undefined)?.id;
      this.log.debug(`drop malformed message payload${typeof id === "number" ? ` (row ${id})` : ""}: ${parsed.error}`);
      return;
    }
    const msg = parsed.message;
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
    this.#track(this.#process(key, msg, msg.id <= this.watch.catchupBoundary ? "catchup" : "live"));
  }

  #track(p: Promise<void>): void {
    const q = p.catch((e) => this.log.error(`pipeline error: ${(e as Error).stack ?? e}`)).finally(() => this.#inflight.delete(q));
    this.#inflight.add(q);
  }

  #drop(key: string, msg: ImsgMessage, reason: InboundReason, detail?: string, state: "dropped" | "skipped" = "dropped"): void {
    const text = reasonText(reason, detail);
    this.store.setInbound(this.id, key, { state, reason: text });
    this.log.debug(`drop row ${msg.id} from ${redact(msg.sender)} in chat ${msg.chatId}: ${text}`);
  }

  /**
   * imsg 0.9 emits a row caught before Messages joined it to its chat with chat_id 0, no group flag and no
   * participants: deciding it would make a group message a DM. Re-read it until it has its chat, else drop it.
   */
  async #unjoined(key: string, msg: ImsgMessage, mode: Mode): Promise<void> {
    this.log.debug(`row ${msg.id} is not joined to a chat yet; re-reading it before deciding`);
    for (const ms of [300, 1000, 2000]) {
      await new Promise((r) => setTimeout(r, ms));
      if (this.#stopping) return; // stays "new": re-read after the restart
      const joined = await this.watch.reread(msg.id).catch(() => undefined);
      if (joined && joined.chatId !== 0) return this.#process(key, joined, mode);
    }
    return this.#drop(key, msg, "not joined to a chat", "still chat_id 0 after 3 re-reads");
  }

  /**
   * Screen → decide → guard → act. `mode`: "live" rows carry timing evidence; "catchup" rows are the backlog at
   * subscription or the journal's unfinished rows; "resumed" rows were held while their conversation was paused.
   */
  async #process(key: string, msg: ImsgMessage, mode: Mode): Promise<void> {
    if (msg.chatId === 0) return this.#unjoined(key, msg, mode);
    const s = screen({ key, msg, catchup: mode !== "live", account: this.account, echoWindowMs: this.tuning.echoWindowMs, now: Date.now() }, this.#lookups);
    if (!("pass" in s)) {
      // Reflected markup is evidence only from an admitted sender: a stranger's rows cannot pause a chat.
      if (s.echo && mode === "live" && admitted(this.#decide(msg))) this.pauses.echo(msg, conversationOf(msg, this.account).isGroup);
      if (s.owner) ownerReplied({ store: this.store, cfg: this.cfg, account: this.account, log: this.log }, ownerView(msg));
      return this.#drop(key, msg, s.drop, s.detail, s.state);
    }
    if (msg.isReaction) {
      const g = reactionGate(msg, this.account.reactionNotifications, (guid) => this.store.hasOutboundGuid(this.id, guid));
      if ("drop" in g) return this.#drop(key, msg, "reaction not passed on", g.drop);
    }
    const { isGroup, peer } = conversationOf(msg, this.account);
    const agent = routeAgent(this.cfg, this.id, peer);
    if (!agent) return this.#drop(key, msg, "no agent configured");
    const decision = this.#decide(msg, agent);
    // The catch-up budget counts only rows that would be answered, so dropped chatter cannot use it up.
    if (mode === "catchup" && decision.kind !== "drop" && ++this.#catchupCount > this.account.recoveryMaxRows) {
      return this.#drop(key, msg, "catch-up limit reached", `${this.account.recoveryMaxRows} rows`, "skipped");
    }
    const g = decision.kind === "dispatch" && mode !== "resumed" ? this.pauses.check(key, msg, s.conv, decision, isGroup, mode === "live") : "pass";
    if (g === "held") return;
    return this.#act(key, msg, decision, agent, isGroup, peer, s.conv, g === "slow");
  }

  #decide(msg: ImsgMessage, agent = routeAgent(this.cfg, this.id, conversationOf(msg, this.account).peer)): Decision {
    if (!agent) return { kind: "drop", reason: "malformed" }; // no agent: nothing is admitted
    return decide({
      message: msg,
      account: this.account,
      approvedSenders: approvedSenders(this.store, this.id),
      mentionPatterns: this.#mentions(agent),
      useAccessGroups: this.cfg.commands.useAccessGroups,
      // Any attachment counts, even one imsg marks missing: the agent is then told it was unavailable.
      hasMedia: this.account.includeAttachments && msg.attachments.length > 0,
    });
  }

  #mentions(agent: AgentConfig): RegExp[] {
    let r = this.#mentionCache.get(agent.id);
    if (!r) {
      const pats = agent.groupChat?.mentionPatterns ?? this.cfg.messages.groupChat.mentionPatterns ?? [];
      const c = compileMentionPatterns(pats);
      for (const bad of c.invalid) this.log.warn(`ignoring invalid mention pattern ${JSON.stringify(bad)}`);
      this.#mentionCache.set(agent.id, r = c.regexes);
    }
    return r;
  }

  async #act(key: string, msg: ImsgMessage, d: Decision, agent: AgentConfig, isGroup: boolean, peer: Peer, conv: string, slow: boolean): Promise<void> {
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
    if (d.kind === "pairing") return this.#pair(key, msg, d.senderId, isGroup);
    const quiet = d.command ? undefined : quietUntil(this.store, this.id, convKey(msg, this.account), Date.now());
    if (quiet) return this.#drop(key, msg, "owner takeover", `quiet until ${new Date(quiet).toISOString()}`);
    const sk = makeSessionKey(agent.id, this.id, peer, this.cfg.session);
    // /stop and /resume act at once: queued behind the session's running turn they could not reach it.
    if ((d.command?.name === "stop" || d.command?.name === "resume") && this.#command(key, msg, d, agent, isGroup, sk, conv)) return;
    const p: Pending = { key, msg, d, agent, isGroup, sk, conv, slow };
    // Rows wait still "new" in the journal (a crash replays them); a tapback goes at once like a command.
    const m = { text: msg.text, attachments: msg.attachments.length, command: d.command !== undefined || !!d.reaction };
    if (!this.#bursts.offer(burstKey(this.id, msg.chatId, msg.sender), p, m, this.account.debounceMs ?? this.tuning.inboundDebounceMs)) {
      await this.#dispatch([p]);
    }
  }

  /** One turn for a burst (oldest first): the newest row anchors it, the others are journaled as merged into it. */
  async #dispatch(items: Pending[]): Promise<void> {
    const a = items.at(-1)!;
    this.store.mergeBurst(this.id, a.key, items.slice(0, -1).map((i) => i.key), { agentId: a.agent.id, sessionKey: a.sk });
    if (items.length > 1) this.log.debug(`merged ${items.length} rows into one turn (anchor row ${a.msg.id})`);
    if (!a.d.reaction) this.presence.read(a.msg, a.isGroup);
    await this.#sessions.run(a.sk, async () => {
      if (items.some((i) => i.slow)) await sleep(this.account.loopFollowMs, this.#abort.signal);
      return this.turns.run(() => this.#turn(a.key, a.msg, a.d, a.agent, a.isGroup, a.sk, a.conv));
    });
  }

  /** Answers a control command; false when it is not one the gateway answers (it goes to the agent). */
  #command(key: string, msg: ImsgMessage, d: Dispatch, agent: AgentConfig, isGroup: boolean, sk: string, conv: string): boolean {
    if (!d.command || !d.commandAuthorized) return false;
    const quiet = quietUntil(this.store, this.id, conv, Date.now());
    const control = this.pauses.control(conv);
    const ctx = {
      account: this.account,
      cfg: this.cfg,
      agent,
      sessionKey: sk,
      isGroup,
      msg,
      store: this.store,
      onConfig: this.onConfig,
      quietUntil: quiet,
      imsgActions: () => this.presence.describe(),
      control,
    };
    const text = controlCommand(d.command, ctx);
    if (text === undefined) return false;
    const reply = { text, media: [], system: true };
    this.store.setInbound(this.id, key, { state: "replied", reply });
    void this.outbox.enqueue(key, msg, reply, isGroup);
    return true;
  }

  #pair(key: string, msg: ImsgMessage, senderId: string, isGroup: boolean): void {
    const reply = pairingTurn(this.store, this.id, key, senderId, msg.chatId);
    if (typeof reply === "string") return this.#drop(key, msg, reply);
    this.log.info(`pairing requested by ${redact(senderId)} (approve with: openclaw-imsg pairing approve imessage <code>)`);
    void this.outbox.enqueue(key, msg, reply, isGroup);
  }

  /** A control command, or the agent turn: attachments, history, run, record, queue the reply. */
  async #turn(key: string, msg: ImsgMessage, d: Dispatch, agent: AgentConfig, isGroup: boolean, sk: string, conv: string): Promise<void> {
    if (this.#stopping && this.#abort.signal.aborted) return; // left "dispatched": re-run after restart
    if (this.#command(key, msg, d, agent, isGroup, sk, conv)) return;
    // /stop aborts this turn alone, shutdown aborts them all.
    const run = () => this.#running.run(conv, (signal) => this.#agentTurn(key, msg, d, agent, isGroup, sk, signal));
    // Typing from the turn's start until its reply is delivered (or the turn fails or is cancelled).
    if (d.reaction) return void (await run()); // a tapback often gets no reply
    const typing = this.presence.typing(msg, isGroup);
    const r = await run().catch((e) => {
      typing.stop();
      throw e;
    });
    typing.stopAfter(r?.sent);
  }

  async #agentTurn(
    key: string,
    msg: ImsgMessage,
    d: Dispatch,
    agent: AgentConfig,
    isGroup: boolean,
    sk: string,
    signal: AbortSignal,
  ): Promise<{ sent: Promise<void> } | undefined> {
    const cancelled = () => {
      if (this.#abort.signal.aborted) return true; // shutdown: stays "dispatched", re-run after restart
      if (!signal.aborted) return false;
      this.store.setInbound(this.id, key, { state: "done", reason: "cancelled by /stop" satisfies InboundReason });
      this.log.info(`agent turn for row ${msg.id} cancelled by /stop (nothing sent)`);
      return true;
    };
    const { attachments, notes } = await this.#attachments(msg, sk);
    if (cancelled()) return;
    // Read now, cleared only with the reply: a failed or cancelled turn keeps the group's context for the next one.
    // A tapback leaves the group's pending context for the next real message.
    const { entries: pending, upTo } = isGroup && !d.reaction ? this.store.peekGroupPending(this.id, msg.chatId) : { entries: [], upTo: 0 };
    const hk = historyKey(this.id, sk, isGroup);
    // A debounced burst: the journal says which rows this turn answers, so a resumed turn re-forms the same text.
    const rows = this.store.mergedInto(this.id, key);
    const burst = rows.length ? { ...msg, text: mergeTexts([...rows.map((r) => (r.message as ImsgMessage | null)?.text ?? ""), msg.text]) } : msg;
    if (!isGroup && !d.reaction) {
      await seedDmSession(
        { store: this.store, account: this.account, client: () => this.sender.client(), log: this.log },
        hk,
        msg.chatId,
        d.senderId,
        Math.min(msg.id, ...rows.map((r) => r.rowid)),
      );
    }
    const history = this.store.getHistory(hk, isGroup ? this.account.historyLimit : this.account.dmSessionTurns);
    const names = this.store.senderNames(this.id, [...new Set([...msg.participants, msg.sender, ...pending.map((p) => p.sender)])]);
    const reaction = d.reaction
      ? describeReaction(msg, this.store.hasOutboundGuid(this.id, msg.reactedToGuid ?? ""), (g) => this.store.textOfGuid(this.id, g))
      : undefined;
    const turn = assembleTurn({
      accountId: this.id,
      agentId: agent.id,
      sessionKey: sk,
      isGroup,
      msg: burst,
      decision: d,
      attachments,
      notes,
      pending,
      history,
      names,
      reaction,
      actions: this.#turnActions(!!d.reaction),
    });
    let raw: AgentReply;
    const started = Date.now();
    try {
      raw = await runAgent(agent, turn, signal);
    } catch (e) {
      if (cancelled()) return;
      const msgText = e instanceof AgentError ? e.message : String(e);
      const notice = this.account.replyOnError ? { text: ERROR_REPLY, media: [], system: true } : undefined;
      // The person learns the message was not handled; the error itself stays in the journal and the log.
      this.store.setInbound(this.id, key, notice ? { state: "replied", reason: msgText, reply: notice } : { state: "failed", reason: msgText });
      this.log.warn(`agent turn for row ${msg.id} failed (${notice ? "error notice sent" : "nothing sent"}): ${msgText}`);
      return notice && { sent: this.outbox.enqueue(key, msg, notice, isGroup) };
    }
    this.log.debug(`agent ${agent.id} answered row ${msg.id} in ${Date.now() - started} ms: ${preview(raw.text)}`);
    const reply = this.#resolve(raw, msg, agent, !!d.reaction);
    // What the agent did, as it would write it: the session then shows its tapbacks and threads too.
    const said = [reply.text, ...directiveLines(reply.actions, msg.guid)].filter(Boolean).join("\n");
    // History and the reply to send are recorded together, so a crash cannot leave a turn in history twice.
    this.store.transaction(() => {
      this.store.appendHistory(hk, "user", turn.body);
      if (said) this.store.appendHistory(hk, "assistant", said);
      if (upTo) this.store.clearGroupPending(this.id, msg.chatId, upTo);
      this.store.setInbound(this.id, key, { state: "replied", reply });
    });
    return { sent: this.outbox.enqueue(key, msg, reply, isGroup) };
  }

  /** The directives this turn will honour: config × turn × what this Mac last said it can do. */
  #turnActions(isReaction: boolean): TurnActions {
    const info = this.presence.info;
    const mac = info && { tapback: info.advanced.tapback, emoji: info.emojiTapback, replyTo: info.advanced.reply_to };
    return turnActions({ ...this.account.actions, reactFallback: this.account.reactFallback }, isReaction, mac);
  }

  /** The reply to journal: text, media and the directives resolved for the backend (every dropped one logged). */
  #resolve(raw: AgentReply, msg: ImsgMessage, agent: AgentConfig, isReaction: boolean): OutboundReply {
    const { actions, dropped } = resolveActions(raw.directives ?? {}, {
      backend: agent.command ? "command" : "openai",
      config: this.account.actions,
      anchorGuid: msg.guid,
      isReaction,
      knownInChat: (guid) => this.store.knowsGuidInChat(this.id, guid, msg.chatId),
    });
    for (const why of [...(raw.extraDirectives ?? []), ...dropped]) this.log.info(`row ${msg.id}: directive dropped: ${why}`);
    const has = actions.react !== undefined || actions.replyTo !== undefined;
    return { text: raw.text, media: raw.media, ...(has ? { actions } : {}) };
  }

  /** The message's attachments, fetched into the cache for the agent (failures become notes). */
  #attachments(msg: ImsgMessage, sk: string): Promise<{ attachments: AgentTurn["attachments"]; notes: string[] }> {
    if (!this.account.includeAttachments || !msg.attachments.length) return Promise.resolve({ attachments: [], notes: [] });
    const roots = this.#remoteHost ? this.account.remoteAttachmentRoots : this.account.attachmentRoots;
    const o = {
      stateDir: this.stateDir,
      sessionKey: sk,
      maxBytes: this.account.mediaMaxMb * 1024 * 1024,
      roots,
      remoteHost: this.#remoteHost,
      scp: { sshOptions: this.#remoteSsh },
    };
    return fetchTurnAttachments(msg.attachments, o);
  }

  /**
   * Stop taking messages, let turns and sends finish for up to shutdownGraceMs, then cancel the turns (they re-run
   * after a restart) and stop the send child: a part cut short stays pending and is reconciled at the next start.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    const deadline = Date.now() + this.tuning.shutdownGraceMs;
    await this.watch.stop();
    this.#bursts.flushAll(); // waiting bursts are answered within the grace period like any other turn
    this.outbox.stop();
    // Work can enqueue more work (a turn queues its delivery): drained until nothing is left, within the grace.
    if (!(await drainWithin(this.#inflight, deadline - Date.now()))) {
      this.log.info(`cancelling ${this.#inflight.size} turn(s) and send(s) after ${this.tuning.shutdownGraceMs} ms; they resume after a restart`);
      this.#abort.abort();
    }
    await Promise.all([this.sender.stop(), this.presence.stop()]);
    // Cancelled work unwinds quickly now (agents killed, sends rejected): STOP_UNWIND_MS to record where it stopped.
    await drainWithin(this.#inflight, STOP_UNWIND_MS);
  }
}

const STOP_UNWIND_MS = 1000;
