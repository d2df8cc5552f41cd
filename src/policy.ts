// The inbound decision: drop, pairing challenge or dispatch. Pure: everything it needs is passed in
// (pairing store contents, compiled mention patterns), so every rule is a table row in the tests.
import type { GroupEntry, ImessageAccount } from "./config.ts";
import type { ImsgMessage, MessageService } from "./imsg.ts";
import { type AllowSubject, matchesAllowList, normalizeHandle, parseAllowEntry } from "./targets.ts";
import { hasInvisible, stripInvisible } from "./text.ts";

/** Every reason a message is dropped, in decision order (stable strings: logs and tests rely on them). */
export const DROP_REASONS = [
  "malformed",
  "missing sender",
  "from me",
  "reaction (sender not approved)",
  "sms not allowed",
  "group without chat_id",
  "groupPolicy disabled",
  "groupPolicy allowlist (empty groupAllowFrom)",
  "not in groupAllowFrom",
  "group id not in allowlist",
  "dmPolicy disabled",
  "dmPolicy blocked",
  "empty body",
  "control command (unauthorized)",
  "no mention",
] as const;

/** One of DROP_REASONS. */
export type DropReason = (typeof DROP_REASONS)[number];

/** Drop reasons decided after access control: the sender was admitted (the rate guard counts such rows). */
const AFTER_ACCESS: readonly DropReason[] = ["empty body", "control command (unauthorized)", "no mention"];

/** The sender passed access control (the message may still not be answered, e.g. no mention). */
export function admitted(d: Decision): boolean {
  return d.kind === "dispatch" || (d.kind === "drop" && AFTER_ACCESS.includes(d.reason));
}

/** The conversation a message belongs to, as routing and session keys see it. */
export interface Peer {
  kind: "direct" | "group";
  id: string;
}

/** The slash commands the gateway understands. */
export const CONTROL_COMMANDS = ["status", "reset", "new", "config", "help", "stop", "resume"] as const;

/** A parsed slash command. */
export interface ControlCommand {
  name: (typeof CONTROL_COMMANDS)[number];
  args: string;
}

/** Everything decide() needs; no I/O happens inside. */
export interface PolicyInput {
  message: ImsgMessage;
  account: ImessageAccount;
  /** Senders approved through pairing for this account, normalized. */
  approvedSenders: string[];
  /** The routed agent's patterns, else messages.groupChat's; [] = none configured. */
  mentionPatterns: RegExp[];
  useAccessGroups: boolean;
  /** The message has at least one usable attachment. */
  hasMedia: boolean;
}

/** The outcome for one inbound message. */
export type Decision =
  | { kind: "drop"; reason: DropReason; keepAsGroupHistory?: boolean }
  | { kind: "pairing"; senderId: string }
  | {
    kind: "dispatch";
    isGroup: boolean;
    senderId: string;
    peer: Peer;
    wasMentioned: boolean;
    commandAuthorized: boolean;
    command?: ControlCommand;
    /** groups["*"] overlaid with groups[chatId] (the specific entry wins key by key). */
    groupConfig?: GroupEntry;
    /** A tapback: an event for the agent, not a user turn (no body, command or mention). */
    reaction?: true;
  };

/**
 * Group or direct. A chat listed by id in `groups` is a group even when imsg says is_group false (two-person
 * groups arrive that way), and so is any chat with more than one other participant: treating a multi-person
 * thread as a DM would admit every member through a DM allowlist and into the owner's DM session.
 */
export function conversationOf(msg: ImsgMessage, account: Pick<ImessageAccount, "groups">): { isGroup: boolean; peer: Peer } {
  const listed = msg.chatId > 0 && Object.hasOwn(account.groups, String(msg.chatId));
  const isGroup = msg.isGroup || listed || (msg.chatId > 0 && msg.participants.length > 1);
  return {
    isGroup,
    peer: isGroup ? { kind: "group", id: String(msg.chatId) } : { kind: "direct", id: normalizeHandle(msg.sender) },
  };
}

const COMMAND_RE = new RegExp(`^/(${CONTROL_COMMANDS.join("|")})(?:\\s+([\\s\\S]*))?$`, "i");

/** `/status`, `/reset`, `/new`, `/config …`, `/help`, `/stop`, `/resume …` (any case) with the rest as args; else undefined. */
export function parseControlCommand(text: string): ControlCommand | undefined {
  const m = COMMAND_RE.exec(text.trim());
  if (!m) return undefined;
  return { name: m[1]!.toLowerCase() as ControlCommand["name"], args: (m[2] ?? "").trim() };
}

/** True when any pattern matches the text (invisible characters removed first). */
export function matchesMention(text: string, patterns: readonly RegExp[]): boolean {
  const cleaned = stripInvisible(text);
  // search() ignores lastIndex, so a caller's /g regex cannot make results depend on earlier calls.
  return patterns.some((re) => cleaned.search(re) !== -1);
}

/** Compiles mention patterns case-insensitively; invalid or empty ones are reported, not thrown. */
export function compileMentionPatterns(patterns: readonly string[]): { regexes: RegExp[]; invalid: string[] } {
  const regexes: RegExp[] = [];
  const invalid: string[] = [];
  for (const p of patterns) {
    // JSON "\b" is a backspace character; the author meant a word boundary. An empty pattern would match all.
    const source = p.replaceAll("\b", "\\b");
    if (!source.trim()) {
      invalid.push(p);
      continue;
    }
    try {
      regexes.push(new RegExp(source, "i"));
    } catch {
      invalid.push(p);
    }
  }
  return { regexes, invalid };
}

function isMalformed(m: ImsgMessage): boolean {
  if (typeof m !== "object" || m === null) return true;
  const strings = [m.guid, m.sender, m.text, m.chatGuid, m.chatIdentifier];
  if (strings.some((s) => typeof s !== "string")) return true;
  if (typeof m.chatId !== "number" || !Number.isFinite(m.chatId)) return true;
  return !m.guid && !(Number.isInteger(m.id) && m.id > 0);
}

// Commands are a privilege: only explicit entries authorize them, never a "*" that merely opens a chat.
function explicitly(list: readonly string[], who: AllowSubject): boolean {
  return matchesAllowList(
    list.filter((e) => e.trim() !== "*"),
    who,
  );
}

function drop(reason: DropReason, keepAsGroupHistory?: boolean): Decision {
  return keepAsGroupHistory ? { kind: "drop", reason, keepAsGroupHistory } : { kind: "drop", reason };
}

/** Applies dmPolicy/allowFrom, groupPolicy/groupAllowFrom/groups, command and mention gating to one message. */
export function decide(input: PolicyInput): Decision {
  const { message: m, account, approvedSenders, mentionPatterns, useAccessGroups, hasMedia } = input;
  if (isMalformed(m)) return drop("malformed");
  if (!m.sender.trim()) return drop("missing sender");
  // Real handles never contain invisible characters; normalizing them away could make a look-alike match an
  // allowlisted handle, so such a sender is refused outright.
  if (hasInvisible(m.sender)) return drop("malformed");
  // Echo and self-chat handling happen in the gateway before this call; what reaches here is ours.
  if (m.isFromMe) return drop("from me");
  // An SMS/RCS sender id is whatever the sending network claims: off unless the account opts in (and even then
  // never an owner nor allowed commands, below). Before pairing, so a forged number earns no code either.
  if ((m.service === "sms" || m.service === "rcs") && !account.allowSms) return drop("sms not allowed");
  const verified = isVerified(m.service);

  const { isGroup, peer } = conversationOf(m, account);
  if (isGroup && !m.chatId) return drop("group without chat_id");

  const senderId = normalizeHandle(m.sender);
  const who: AllowSubject = { sender: senderId, chatId: m.chatId, chatGuid: m.chatGuid, chatIdentifier: m.chatIdentifier };
  // An explicit groupAllowFrom (even []) replaces allowFrom for groups; the pairing store never admits groups.
  const groupList = account.groupAllowFrom ?? account.allowFrom;
  const dmList = [...account.allowFrom, ...approvedSenders];

  if (isGroup) {
    if (account.groupPolicy === "disabled") return drop("groupPolicy disabled");
    // Anything but "open" gates senders, so an unexpected value fails closed.
    if (account.groupPolicy !== "open") {
      if (groupList.length === 0) return drop("groupPolicy allowlist (empty groupAllowFrom)");
      if (!matchesAllowList(groupList, who)) return drop("not in groupAllowFrom");
    }
    const keys = Object.keys(account.groups);
    if (keys.length > 0 && !keys.includes("*") && !keys.includes(String(m.chatId))) {
      return drop("group id not in allowlist");
    }
  } else {
    switch (account.dmPolicy) {
      case "disabled":
        return drop("dmPolicy disabled");
      case "pairing":
        // A tapback never earns a pairing code: only a sender who may text the agent may react to it.
        if (!matchesAllowList(dmList, who)) return m.isReaction ? drop("reaction (sender not approved)") : { kind: "pairing", senderId };
        break;
      default:
        // open (needs "*" in allowFrom, else only listed senders) and allowlist: the config list only,
        // approvals from pairing do not widen it. Unknown values fail closed the same way.
        if (!matchesAllowList(account.allowFrom, who)) return drop("dmPolicy blocked");
    }
  }

  // Past the same access rules as a text; a tapback carries no command and cannot mention anyone.
  if (m.isReaction) {
    const groupConfig = isGroup ? groupConfigOf(account, m.chatId) : undefined;
    return {
      kind: "dispatch",
      isGroup,
      senderId,
      peer,
      wasMentioned: false,
      commandAuthorized: false,
      reaction: true,
      ...(groupConfig ? { groupConfig } : {}),
    };
  }

  if (!m.text.trim() && !hasMedia) return drop("empty body");

  const command = parseControlCommand(m.text);
  // Commands can change the session and the config: only for a sender whose identity Apple vouches for.
  const commandAuthorized = verified && (!useAccessGroups || explicitly(isGroup ? account.allowFrom : dmList, who) || explicitly(groupList, who));
  if (isGroup && command && !commandAuthorized) return drop("control command (unauthorized)");

  let wasMentioned = true;
  let groupConfig: GroupEntry | undefined;
  if (isGroup) {
    groupConfig = groupConfigOf(account, m.chatId);
    const requireMention = groupConfig?.requireMention ?? true;
    // An authorized command counts as addressing the bot, so owners can /reset without a mention.
    wasMentioned = matchesMention(m.text, mentionPatterns) || (command !== undefined && commandAuthorized);
    // With no patterns configured a mention cannot be detected, so gating is not enforced.
    if (requireMention && mentionPatterns.length > 0 && !wasMentioned) return drop("no mention", true);
  }

  return {
    kind: "dispatch",
    isGroup,
    senderId,
    peer,
    wasMentioned,
    commandAuthorized,
    ...(command ? { command } : {}),
    ...(groupConfig ? { groupConfig } : {}),
  };
}

/** groups["*"] overlaid with groups[chatId] (the specific entry wins key by key); undefined when neither is set. */
function groupConfigOf(account: Pick<ImessageAccount, "groups">, chatId: number): GroupEntry | undefined {
  const specific = account.groups[String(chatId)];
  const wildcard = account.groups["*"];
  return specific || wildcard ? { ...wildcard, ...specific } : undefined;
}

/** Only iMessage authenticates the sender; SMS, RCS and macOS 26's unlabelled `any;` chats do not. */
export function isVerified(service: MessageService | undefined): boolean {
  return service === "imessage";
}

/** A sender id written exactly as an owner entry must be: E.164 (`+` and 7–15 digits) or an email (ASCII case folded). */
function exactHandle(sender: string): string | undefined {
  const s = sender.trim();
  if (/^\+\d{7,15}$/.test(s)) return s;
  if (/^[^\s@:]+@[^\s@:]+$/.test(s)) return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return undefined;
}

/** The account's owner handles: handle entries of the configured `allowFrom`, in canonical form. */
export function ownerHandles(account: Pick<ImessageAccount, "allowFrom">): string[] {
  return account.allowFrom.flatMap((e) => {
    const entry = parseAllowEntry(e);
    return entry?.kind === "handle" ? [entry.handle] : [];
  });
}

/**
 * The owner: a verified (iMessage) sender named by handle in the configured `allowFrom` (not `"*"`, not a chat
 * target, not a pairing approval). Only owners may use `/config`, which can change who reaches the agent. The
 * sender must be exactly the E.164 (or email) form of the entry: a sender spelt `15550001111` or
 * `0015550001111` is some other route to that number, not the owner.
 */
export function isOwner(account: Pick<ImessageAccount, "allowFrom">, msg: Pick<ImsgMessage, "sender" | "service">): boolean {
  if (!isVerified(msg.service)) return false;
  const who = exactHandle(msg.sender);
  return who !== undefined && ownerHandles(account).includes(who);
}

/** What a shared DM session means, and the one-line fix (gateway start, `probe`, `pairing approve`). */
export const SHARED_SESSION_WARNING =
  'DMs from different people share one agent session (session.dmScope "main"): each can see what the others said, the owner\'s history included.';
export const SHARED_SESSION_FIX = 'Set session.dmScope: "per-peer" to give each person a session of their own.';

/** True when, by configuration, DMs from more than one person can land in the one `main` session. Pure. */
export function dmSessionMayBeShared(dmScope: string, account: Pick<ImessageAccount, "dmPolicy" | "allowFrom">): boolean {
  if (dmScope !== "main" || account.dmPolicy === "disabled") return false;
  return account.dmPolicy === "pairing" || account.dmPolicy === "open" || ownerHandles(account).length > 1;
}

/** The distinct people who can DM the account into its session: configured handles and pairing approvals. Pure. */
export function dmPeople(account: Pick<ImessageAccount, "allowFrom">, approved: readonly string[]): string[] {
  return [...new Set([...ownerHandles(account), ...approved.map(normalizeHandle)])];
}
