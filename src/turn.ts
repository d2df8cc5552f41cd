// The agent turn, assembled from what the pipeline gathered (pure), and the control commands the gateway answers
// itself (/status, /reset, /new, /help, /config, /stop, /resume).
import type { AgentTurn } from "./agents.ts";
import { mediaKind, mediaPlaceholder } from "./attachments.ts";
import { type AgentConfig, type Config, type ImessageAccount, resolveAccount } from "./config.ts";
import { configCommand } from "./config-edit.ts";
import type { ImsgMessage } from "./imsg.ts";
import { describeConv, type Pause } from "./guard.ts";
import { type ReactionEvent, reactionLine } from "./reactions.ts";
import { type ControlCommand, type Decision, isOwner, ownerHandles } from "./policy.ts";
import { normalizeHandle } from "./targets.ts";
import type { Activity, Store } from "./store.ts";

/** A dispatch decision from policy. */
export type Dispatch = Extract<Decision, { kind: "dispatch" }>;

/**
 * Where a session's history is kept. Group session keys carry no account, and two Macs both have a chat 1, 2,
 * 3…: group history is kept per account so one account's groups never feed another's.
 */
export function historyKey(accountId: string, sessionKey: string, isGroup: boolean): string {
  return isGroup ? `${accountId}/${sessionKey}` : sessionKey;
}

export interface BodyInput {
  isGroup: boolean;
  sender: string;
  text: string;
  chatName: string;
  chatId: number;
  /** Group messages since the agent last answered, not addressed to it (oldest first). */
  pending: { sender: string; text: string }[];
  replyToText?: string;
  replyToSender?: string;
  replyToGuid?: string;
  /** Extra lines such as "[attachment unavailable]". */
  notes: string[];
}

/**
 * User text as body lines: every line quoted with "> ", so nothing a user types can be one of the lines the format
 * reserves (the bracketed markers, `<sender>:` headers, notes). Pure.
 */
export function quoteLines(text: string): string[] {
  if (!text) return [];
  return text.replace(/\r\n?/g, "\n").split(/[\n\u2028\u2029\u0085\v\f]/).map((l) => (l ? `> ${l}` : ">"));
}

// Handles come from imsg, but a line break in one would still start a line of its own.
const oneLine = (s: string) => s.replace(/[\r\n\u2028\u2029\u0085\v\f]+/g, " ");

/**
 * The message as a model should see it: group context, a `<sender>:` header in groups, reply context. The gateway's
 * own lines stand alone; everything a user wrote is quoted (quoteLines). Pure.
 */
export function buildBody(b: BodyInput): string {
  const lines: string[] = [];
  const said = (sender: string, text: string) => [`${oneLine(sender)}:`, ...quoteLines(text)];
  if (b.isGroup && b.pending.length) {
    lines.push("[Chat messages since your last reply - for context]");
    for (const p of b.pending) lines.push(...said(p.sender, p.text));
    lines.push("", "[Current message - respond to this]");
  }
  lines.push(...(b.isGroup ? said(b.sender, b.text) : quoteLines(b.text)));
  for (const n of b.notes) lines.push(n);
  if (b.replyToText) {
    lines.push(
      "",
      `[Replying to ${oneLine(b.replyToSender || "unknown sender")}${b.replyToGuid ? ` id:${oneLine(b.replyToGuid)}` : ""}]`,
      ...quoteLines(b.replyToText),
      "[/Replying]",
    );
  }
  return lines.join("\n").trim();
}

export interface TurnInput {
  accountId: string;
  agentId: string;
  sessionKey: string;
  isGroup: boolean;
  msg: ImsgMessage;
  decision: Dispatch;
  /** Attachments fetched for the agent; `notes` says which could not be. */
  attachments: AgentTurn["attachments"];
  notes: string[];
  /** Group context since the last reply (empty for DMs). */
  pending: { sender: string; text: string }[];
  history: { role: "user" | "assistant"; text: string }[];
  /** Contacts names imsg reported earlier for these handles (the journal remembers them). */
  names?: ReadonlyMap<string, string>;
  /** Set for a tapback: what it was and what it reacted to. */
  reaction?: ReactionEvent;
  /** The reply directives honoured this turn; absent: none. */
  actions?: AgentTurn["actions"];
}

/** How a person is shown to a model: "Name (handle)" when the name is known, else the handle. Pure. */
export function personLabel(handle: string, name?: string): string {
  const n = name?.trim();
  return n && n !== handle ? `${n} (${handle})` : handle;
}

/** The turn a backend receives for one message. Pure. */
export function assembleTurn(t: TurnInput): AgentTurn {
  const { msg, decision: d, isGroup } = t;
  const nameOf = (h: string) => (h === msg.sender && msg.senderName ? msg.senderName : t.names?.get(h));
  const label = (h: string) => personLabel(h, nameOf(h));
  // A message with only attachments is shown to the model by what they are ("<media:image>").
  const placeholder = t.attachments.length ? mediaPlaceholder(t.attachments.map((a) => mediaKind(a.mimeType))) : "";
  const body = t.reaction ? reactionLine(t.reaction, label(msg.sender)) : buildBody({
    isGroup,
    sender: label(msg.sender),
    text: msg.text,
    chatName: msg.chatName,
    chatId: msg.chatId,
    pending: t.pending.map((p) => ({ sender: label(p.sender), text: p.text })),
    replyToText: msg.replyToText,
    replyToSender: msg.replyToSender ? label(msg.replyToSender) : msg.replyToSender,
    replyToGuid: msg.replyToGuid,
    // The placeholder is the gateway's, not the user's: it stands unquoted, like the notes.
    notes: !msg.text && placeholder ? [placeholder, ...t.notes] : t.notes,
  });
  const handles = [...new Set([...msg.participants, ...(msg.sender ? [msg.sender] : [])])];
  const senderName = nameOf(msg.sender);
  return {
    event: t.reaction ? "reaction" : "message",
    sessionKey: t.sessionKey,
    agentId: t.agentId,
    accountId: t.accountId,
    chatType: isGroup ? "group" : "direct",
    sender: d.senderId,
    ...(senderName ? { senderName } : {}),
    participants: handles.map((h) => {
      const name = nameOf(h);
      return name ? { handle: h, name } : { handle: h };
    }),
    createdAt: msg.createdAt,
    chatId: msg.chatId,
    chatGuid: msg.chatGuid,
    chatName: msg.chatName,
    messageId: msg.id,
    messageGuid: msg.guid,
    ...(msg.replyToGuid ? { replyToGuid: msg.replyToGuid } : {}),
    text: t.reaction ? "" : msg.text,
    body,
    attachments: t.attachments,
    wasMentioned: d.wasMentioned,
    commandAuthorized: d.commandAuthorized,
    history: t.history.map((h) => ({ role: h.role, text: h.text })),
    ...(d.groupConfig?.systemPrompt ? { systemPrompt: d.groupConfig.systemPrompt } : {}),
    ...(t.reaction ? { reaction: t.reaction } : {}),
    actions: t.actions ?? { react: false, emoji: false, replyTo: false },
  };
}

/** How the owner's own reply (typed by hand on their phone) reads in the session history. Pure. */
export function ownerTurnText(text: string): string {
  return `[The owner replied by hand] ${text}`;
}

/** What a control command may read and change. */
export interface CommandContext {
  account: ImessageAccount;
  cfg: Config;
  agent: Pick<AgentConfig, "id">;
  sessionKey: string;
  /** Policy's answer (conversationOf): the same test the turn uses, so /reset clears the history a turn reads. */
  isGroup: boolean;
  msg: Pick<ImsgMessage, "chatId" | "sender" | "service" | "participants">;
  store: Pick<Store, "activity" | "clearHistory" | "takeGroupPending">;
  /** Spreads a config saved by `/config set`. */
  onConfig: (cfg: Config) => void;
  /** The owner took this conversation over (ownerTakeoverMinutes) until then. */
  quietUntil?: number;
  /** Which imsg actions (typing, read, tapback, …) this Mac supports, for /status. */
  imsgActions?: () => string;
  /** The conversation's pause and running turn (absent: /stop and /resume have nothing to act on). */
  control?: ConversationControl;
}

/** What /status, /stop and /resume may see and do (the gateway implements it). */
export interface ConversationControl {
  /** This message's conversation (the rate guard's key). */
  conv: string;
  /** Every paused conversation of the account. */
  pauses(): [string, Pause][];
  /** Messages held in a paused conversation. */
  held(conv: string): number;
  /** Lifts a pause: held messages are answered, or recorded as skipped. Undefined when `conv` was not paused. */
  resume(conv: string, skip: boolean): { held: number } | undefined;
  /** Cancels the conversation's running agent turn; false when none runs. */
  stop(): boolean;
}

/** The /status reply. Pure. `pauses`: lines about paused conversations (see pauseLines). */
export function statusText(
  accountId: string,
  agentId: string,
  sessionKey: string,
  a: Activity,
  quietUntil?: number,
  imsgActions?: string,
  pauses: string[] = [],
): string {
  const lines = [
    `account: ${accountId}`,
    `agent: ${agentId}`,
    `session: ${sessionKey}`,
    `backlog: ${a.backlog}`,
    `last inbound: ${a.lastInboundAt ? new Date(a.lastInboundAt).toISOString() : "never"}`,
    `last outbound: ${a.lastOutboundAt ? new Date(a.lastOutboundAt).toISOString() : "never"}`,
  ];
  if (quietUntil) lines.push(`owner takeover: the agent is quiet in this chat until ${new Date(quietUntil).toISOString()}`);
  if (imsgActions) lines.push(imsgActions);
  return [...lines, ...pauses].join("\n");
}

/** /status lines for pauses: this conversation's, and (for an owner) every other paused one. Pure. */
export function pauseLines(conv: string, pauses: [string, Pause][], held: (conv: string) => number, owner: boolean): string[] {
  const line = (c: string, p: Pause) => `${describeConv(c)} since ${new Date(p.since).toISOString()} (${p.reason}), ${held(c)} held`;
  const here = pauses.find(([c]) => c === conv);
  const out = here ? [`paused: ${line(...here)}; the owner can send /resume`] : [];
  const others = owner ? pauses.filter(([c]) => c !== conv) : [];
  if (others.length) out.push(`paused elsewhere: ${others.map(([c, p]) => line(c, p)).join("; ")}`);
  return out;
}

/** The conversation a /resume argument names: "" → this one; a handle; chat:<id> / chat_id:<id>. Pure. */
export function resumeTarget(arg: string, here: string): string {
  if (!arg) return here;
  const chat = /^chat(?:_id)?:(\d+)$/i.exec(arg);
  return chat ? `chat:${chat[1]}` : `dm:${normalizeHandle(arg)}`;
}

export const RESET_REPLY = "Session cleared. The next message starts a new conversation.";
export const HELP_REPLY =
  "Commands: /status, /reset (or /new) to start over, /stop to cancel the running answer, /resume [all|<handle>|chat:<id>] [skip] (owner) to lift a pause, /config show|set|unset (when enabled), /help.";
export const OWNER_RESET_REPLY = "Only the owner can reset this conversation: the owner takes part in it.";
export const NOT_OWNER_REPLY = "Only the owner (a handle listed in channels.imessage.allowFrom) may use /config.";
export const RESUME_NOT_OWNER_REPLY = "Only the owner (a handle listed in channels.imessage.allowFrom) may use /resume.";
export const STOP_REPLY = "Stopped. That request will not be answered.";
export const NOTHING_TO_STOP_REPLY = "Nothing is running here.";
export const NOTHING_PAUSED_REPLY = "Nothing is paused.";
/** Sent when a turn's agent fails or times out (replyOnError): fixed, so no error detail reaches the chat. */
export const ERROR_REPLY = "Sorry, I couldn't answer that just now. Please try again in a moment.";

function resumeCommand(ctx: CommandContext, args: string): string {
  const c = ctx.control;
  if (!isOwner(ctx.account, ctx.msg)) return RESUME_NOT_OWNER_REPLY;
  if (!c) return NOTHING_PAUSED_REPLY;
  const words = args.split(/\s+/).filter(Boolean);
  const skip = words.some((w) => w.toLowerCase() === "skip");
  const arg = words.find((w) => w.toLowerCase() !== "skip") ?? "";
  const targets = arg.toLowerCase() === "all" ? c.pauses().map(([conv]) => conv) : [resumeTarget(arg, c.conv)];
  const done: string[] = [];
  for (const t of targets) {
    const r = c.resume(t, skip);
    if (r) done.push(`${describeConv(t)} (${r.held} held message${r.held === 1 ? "" : "s"} ${skip ? "skipped" : "will be answered"})`);
  }
  return done.length ? `Resumed ${done.join(", ")}.` : NOTHING_PAUSED_REPLY;
}

/**
 * Whether the sender may wipe this session: always, unless an owner takes part in it and the sender is not an owner.
 * Owners take part in a group they are a member of, and in the one DM session every DM shares under dmScope
 * "main" (which spans accounts, so every account's owners count).
 */
function mayReset(ctx: CommandContext): boolean {
  const owners = ctx.cfg.accountIds.flatMap((id) => ownerHandles(resolveAccount(ctx.cfg, id)));
  if (!owners.length || isOwner({ allowFrom: owners }, ctx.msg)) return true;
  if (!ctx.isGroup) return ctx.cfg.session.dmScope !== "main";
  return ![ctx.msg.sender, ...ctx.msg.participants].some((p) => owners.includes(normalizeHandle(p)));
}

/** Answers a control command; undefined → the message goes to the agent. */
export function controlCommand(cmd: ControlCommand, ctx: CommandContext): string | undefined {
  const id = ctx.account.accountId;
  switch (cmd.name) {
    case "status": {
      const c = ctx.control;
      const pauses = c ? pauseLines(c.conv, c.pauses(), (x) => c.held(x), isOwner(ctx.account, ctx.msg)) : [];
      return statusText(id, ctx.agent.id, ctx.sessionKey, ctx.store.activity(id), ctx.quietUntil, ctx.imsgActions?.(), pauses);
    }
    case "stop":
      return ctx.control?.stop() ? STOP_REPLY : NOTHING_TO_STOP_REPLY;
    case "resume":
      return resumeCommand(ctx, cmd.args);
    case "reset":
    case "new":
      if (!mayReset(ctx)) return OWNER_RESET_REPLY;
      ctx.store.clearHistory(historyKey(id, ctx.sessionKey, ctx.isGroup));
      if (ctx.isGroup) ctx.store.takeGroupPending(id, ctx.msg.chatId);
      return RESET_REPLY;
    case "help":
      return HELP_REPLY;
    case "config": {
      if (!isOwner(ctx.account, ctx.msg)) return NOT_OWNER_REPLY;
      const r = configCommand(ctx.cfg, ctx.account, cmd.args, { ownerOf: (a) => isOwner(a, ctx.msg) });
      if (r.config) ctx.onConfig(r.config);
      return r.reply;
    }
    default:
      return undefined;
  }
}
