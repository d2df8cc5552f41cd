import { describe, expect, test } from "bun:test";
import type { ImessageAccount } from "../src/config.ts";
import type { ImsgMessage } from "../src/imsg.ts";
import {
  compileMentionPatterns,
  conversationOf,
  decide,
  type Decision,
  DROP_REASONS,
  isOwner,
  matchesMention,
  parseControlCommand,
  type PolicyInput,
} from "../src/policy.ts";

const OWNER = "+15550001111";
const STRANGER = "+15550002222";
const MENTION = [/@claw/i];

function account(over: Partial<ImessageAccount> = {}): ImessageAccount {
  return {
    accountId: "default",
    enabled: true,
    cliPath: "imsg",
    includeAttachments: false,
    attachmentRoots: [],
    remoteAttachmentRoots: [],
    dmPolicy: "pairing",
    allowFrom: [],
    groupPolicy: "allowlist",
    groups: {},
    mediaMaxMb: 16,
    textChunkLimit: 4000,
    chunkMode: "length",
    reactionNotifications: "own",
    actions: { reactions: true, reply: true },
    reactFallback: false,
    configWrites: true,
    service: "auto",
    region: "US",
    historyLimit: 50,
    dmHistoryLimit: 0,
    dmSessionTurns: 20,
    dms: {},
    ownerTakeoverMinutes: 0,
    probeTimeoutMs: 10000,
    sendReadReceipts: true,
    maxAgeMinutes: 15,
    recoveryMaxAgeMinutes: 120,
    recoveryMaxRows: 500,
    sectionMissing: false,
    allowSms: false,
    replyMaxChars: 4000,
    replyMaxParts: 5,
    replyOnError: true,
    loopMaxExchanges: 10,
    loopFollowMs: 3000,
    loopEchoRows: 5,
    ...over,
  };
}

function dm(over: Partial<ImsgMessage> = {}): ImsgMessage {
  return {
    id: 10,
    chatId: 7,
    guid: "guid-10",
    sender: OWNER,
    isFromMe: false,
    text: "hello",
    createdAt: "2026-01-01T00:00:00Z",
    attachments: [],
    chatIdentifier: OWNER,
    chatGuid: `iMessage;-;${OWNER}`,
    chatName: "",
    participants: [OWNER],
    isGroup: false,
    service: "imessage",
    ...over,
  };
}

function group(over: Partial<ImsgMessage> = {}): ImsgMessage {
  return dm({ chatId: 42, chatIdentifier: "chat42", chatGuid: "iMessage;+;chat42", chatName: "Team", isGroup: true, text: "@claw hi", ...over });
}

function input(over: Partial<PolicyInput> = {}): PolicyInput {
  return { message: dm(), account: account(), approvedSenders: [], mentionPatterns: [], useAccessGroups: true, hasMedia: false, ...over };
}

// A group setup that admits OWNER in chat 42 with mention gating on.
const groupAccount = (over: Partial<ImessageAccount> = {}) => account({ groupAllowFrom: [OWNER], groups: { "42": { requireMention: true } }, ...over });

function summary(d: Decision): string {
  if (d.kind === "drop") return `drop:${d.reason}${d.keepAsGroupHistory ? " +history" : ""}`;
  if (d.kind === "pairing") return `pairing:${d.senderId}`;
  return `dispatch:${d.isGroup ? "group" : "direct"}:${d.peer.id} mentioned=${d.wasMentioned} auth=${d.commandAuthorized}`;
}

describe("decide", () => {
  const rows: [name: string, input: PolicyInput, expected: string][] = [
    // malformed and basics
    ["missing guid and id is malformed", input({ message: dm({ guid: "", id: 0 }) }), "drop:malformed"],
    ["non-string sender is malformed", input({ message: dm({ sender: { id: 1 } as unknown as string }) }), "drop:malformed"],
    [
      "a sender with an invisible character is refused, never normalized into an allowlisted handle",
      input({ message: dm({ sender: "+1555\u200b0001111" }), account: account({ dmPolicy: "allowlist", allowFrom: [OWNER] }) }),
      "drop:malformed",
    ],
    ["non-string text is malformed", input({ message: dm({ text: null as unknown as string }) }), "drop:malformed"],
    ["guid alone is enough", input({ message: dm({ id: 0 }), account: account({ allowFrom: [OWNER] }) }), `dispatch:direct:${OWNER} mentioned=true auth=true`],
    ["blank sender", input({ message: dm({ sender: "  " }) }), "drop:missing sender"],
    ["is_from_me is always dropped", input({ message: dm({ isFromMe: true }), account: account({ allowFrom: ["*"], dmPolicy: "open" }) }), "drop:from me"],
    // tapbacks: the same access rules as a text, never a pairing code, no mention gating
    ["a stranger's tapback never earns a pairing code", input({ message: dm({ isReaction: true, sender: STRANGER }) }), "drop:reaction (sender not approved)"],
    [
      "a tapback from a sender approved through pairing passes",
      input({ message: dm({ isReaction: true, sender: STRANGER }), approvedSenders: [STRANGER] }),
      `dispatch:direct:${STRANGER} mentioned=false auth=false`,
    ],
    [
      "an allowlisted sender's tapback passes, with no command authority",
      input({ message: dm({ isReaction: true, text: "/reset" }), account: account({ dmPolicy: "allowlist", allowFrom: [OWNER] }) }),
      `dispatch:direct:${OWNER} mentioned=false auth=false`,
    ],
    [
      "a tapback from a sender the allowlist blocks",
      input({ message: dm({ isReaction: true, sender: STRANGER }), account: account({ dmPolicy: "allowlist", allowFrom: [OWNER] }) }),
      "drop:dmPolicy blocked",
    ],
    [
      "a group tapback from a sender outside groupAllowFrom",
      input({ message: group({ isReaction: true, sender: STRANGER }), account: groupAccount() }),
      "drop:not in groupAllowFrom",
    ],
    [
      "a group tapback needs no mention",
      input({ message: group({ isReaction: true, text: "Liked “hi”" }), account: groupAccount(), mentionPatterns: MENTION }),
      "dispatch:group:42 mentioned=false auth=false",
    ],
    ["group without chat_id", input({ message: group({ chatId: 0 }), account: account({ groupPolicy: "open" }) }), "drop:group without chat_id"],

    // service: an SMS/RCS sender id can be forged
    [
      "the owner's number over SMS is dropped by default (no pairing code either)",
      input({ message: dm({ service: "sms", chatGuid: `SMS;-;${OWNER}` }), account: account({ dmPolicy: "open", allowFrom: [OWNER, "*"] }) }),
      "drop:sms not allowed",
    ],
    ["RCS is dropped by default", input({ message: dm({ service: "rcs", sender: STRANGER }) }), "drop:sms not allowed"],
    [
      "an SMS group member is dropped by default",
      input({ message: group({ service: "sms" }), account: account({ groupPolicy: "open" }) }),
      "drop:sms not allowed",
    ],
    [
      "allowSms: an SMS owner reaches the agent but is never command-authorized",
      input({ message: dm({ service: "sms", text: "/status" }), account: account({ allowSms: true, dmPolicy: "allowlist", allowFrom: [OWNER] }) }),
      `dispatch:direct:${OWNER} mentioned=true auth=false`,
    ],
    [
      "allowSms: an SMS stranger under pairing gets a code",
      input({ message: dm({ service: "sms", sender: STRANGER }), account: account({ allowSms: true }) }),
      `pairing:${STRANGER}`,
    ],
    [
      "an unverified (any;) sender reaches the agent, never command-authorized",
      input({ message: dm({ service: "unverified", chatGuid: `any;-;${OWNER}` }), account: account({ dmPolicy: "allowlist", allowFrom: [OWNER] }) }),
      `dispatch:direct:${OWNER} mentioned=true auth=false`,
    ],
    [
      "a message without a service counts as unverified",
      input({ message: dm({ service: undefined as never }), account: account({ dmPolicy: "allowlist", allowFrom: [OWNER] }) }),
      `dispatch:direct:${OWNER} mentioned=true auth=false`,
    ],
    [
      "an SMS group command is dropped as unauthorized even from an allowFrom handle",
      input({ message: group({ service: "sms", text: "/reset" }), account: account({ allowSms: true, allowFrom: [OWNER] }) }),
      "drop:control command (unauthorized)",
    ],

    // group sender gate
    ["groupPolicy disabled", input({ message: group(), account: groupAccount({ groupPolicy: "disabled" }) }), "drop:groupPolicy disabled"],
    ["allowlist with nothing configured", input({ message: group() }), "drop:groupPolicy allowlist (empty groupAllowFrom)"],
    [
      "explicit empty groupAllowFrom blocks and does not fall back to allowFrom",
      input({ message: group(), account: account({ allowFrom: [OWNER], groupAllowFrom: [] }) }),
      "drop:groupPolicy allowlist (empty groupAllowFrom)",
    ],
    [
      "unset groupAllowFrom falls back to allowFrom",
      input({ message: group(), account: account({ allowFrom: [OWNER] }) }),
      "dispatch:group:42 mentioned=false auth=true",
    ],
    ["sender not in groupAllowFrom", input({ message: group({ sender: STRANGER }), account: groupAccount() }), "drop:not in groupAllowFrom"],
    [
      "groupAllowFrom chat_id:101 blocks chat 202",
      input({ message: group({ chatId: 202 }), account: account({ groupAllowFrom: ["chat_id:101"] }) }),
      "drop:not in groupAllowFrom",
    ],
    [
      "groupAllowFrom chat_id:101 admits any sender in chat 101",
      input({ message: group({ chatId: 101, sender: STRANGER }), account: account({ groupAllowFrom: ["chat_id:101"] }) }),
      "dispatch:group:101 mentioned=false auth=true",
    ],
    [
      "approved pairings never admit group senders",
      input({ message: group({ chatId: 202, sender: STRANGER }), account: account({ groupAllowFrom: ["chat_id:101"] }), approvedSenders: [STRANGER] }),
      "drop:not in groupAllowFrom",
    ],
    [
      "groupPolicy open skips the sender gate",
      input({ message: group({ sender: STRANGER }), account: account({ groupPolicy: "open" }) }),
      "dispatch:group:42 mentioned=false auth=false",
    ],

    // group registry
    [
      "chat not listed in groups",
      input({ message: group({ chatId: 123 }), account: groupAccount({ groups: { "99": {} } }) }),
      "drop:group id not in allowlist",
    ],
    [
      "groups registry applies under groupPolicy open too",
      input({ message: group({ chatId: 123 }), account: account({ groupPolicy: "open", groups: { "99": {} } }) }),
      "drop:group id not in allowlist",
    ],
    [
      "groups wildcard admits every chat",
      input({ message: group({ chatId: 123 }), account: groupAccount({ groups: { "*": { requireMention: false } } }) }),
      "dispatch:group:123 mentioned=false auth=true",
    ],
    [
      "chat listed in groups is a group even when imsg says DM",
      input({ message: dm({ chatId: 2 }), account: account({ groupPolicy: "open", groups: { "2": { requireMention: false } } }) }),
      "dispatch:group:2 mentioned=false auth=false",
    ],

    // DMs
    ["dmPolicy disabled", input({ account: account({ dmPolicy: "disabled", allowFrom: ["*"] }) }), "drop:dmPolicy disabled"],
    [
      "dmPolicy open with * admits anyone",
      input({ message: dm({ sender: STRANGER }), account: account({ dmPolicy: "open", allowFrom: ["*"] }) }),
      `dispatch:direct:${STRANGER} mentioned=true auth=false`,
    ],
    [
      "dmPolicy open without * admits listed senders",
      input({ account: account({ dmPolicy: "open", allowFrom: [OWNER] }) }),
      `dispatch:direct:${OWNER} mentioned=true auth=true`,
    ],
    [
      "dmPolicy open without * blocks others",
      input({ message: dm({ sender: STRANGER }), account: account({ dmPolicy: "open", allowFrom: [OWNER] }) }),
      "drop:dmPolicy blocked",
    ],
    [
      "dmPolicy allowlist admits config entries",
      input({ message: dm({ sender: "+1 (555) 000-1111" }), account: account({ dmPolicy: "allowlist", allowFrom: [OWNER] }) }),
      `dispatch:direct:${OWNER} mentioned=true auth=true`,
    ],
    [
      "dmPolicy allowlist ignores the pairing store",
      input({ message: dm({ sender: STRANGER }), account: account({ dmPolicy: "allowlist", allowFrom: [OWNER] }), approvedSenders: [STRANGER] }),
      "drop:dmPolicy blocked",
    ],
    ["dmPolicy pairing challenges unknown senders with the normalized id", input({ message: dm({ sender: "+1 (555) 000-2222" }) }), `pairing:${STRANGER}`],
    [
      "dmPolicy pairing admits approved senders",
      input({ message: dm({ sender: STRANGER }), approvedSenders: [STRANGER] }),
      `dispatch:direct:${STRANGER} mentioned=true auth=true`,
    ],
    ["dmPolicy pairing admits config entries", input({ account: account({ allowFrom: [OWNER] }) }), `dispatch:direct:${OWNER} mentioned=true auth=true`],
    [
      "email senders match case-insensitively",
      input({ message: dm({ sender: "User@Example.com" }), account: account({ allowFrom: ["user@example.com"] }) }),
      "dispatch:direct:user@example.com mentioned=true auth=true",
    ],

    // body
    ["empty body", input({ message: dm({ text: "  " }), account: account({ allowFrom: [OWNER] }) }), "drop:empty body"],
    [
      "attachment-only message is not empty",
      input({ message: dm({ text: "" }), account: account({ allowFrom: [OWNER] }), hasMedia: true }),
      `dispatch:direct:${OWNER} mentioned=true auth=true`,
    ],

    // commands
    [
      "group command from an unauthorized sender",
      input({ message: group({ text: "/status", sender: STRANGER }), account: account({ groupPolicy: "open" }) }),
      "drop:control command (unauthorized)",
    ],
    [
      "a * in groupAllowFrom admits but does not authorize commands",
      input({ message: group({ text: "/reset", sender: STRANGER }), account: account({ groupAllowFrom: ["*"] }) }),
      "drop:control command (unauthorized)",
    ],
    [
      "authorized command bypasses mention gating",
      input({ message: group({ text: "/status" }), account: groupAccount(), mentionPatterns: MENTION }),
      "dispatch:group:42 mentioned=true auth=true",
    ],
    [
      "group command authorized by config allowFrom when groupAllowFrom only opens the door",
      input({ message: group({ text: "/new" }), account: account({ allowFrom: [OWNER], groupAllowFrom: ["*"] }) }),
      "dispatch:group:42 mentioned=true auth=true",
    ],
    [
      "useAccessGroups false authorizes everyone",
      input({ message: group({ text: "/status", sender: STRANGER }), account: account({ groupPolicy: "open" }), useAccessGroups: false }),
      "dispatch:group:42 mentioned=true auth=true",
    ],
    [
      "DM command in open mode without allowlists is dispatched unauthorized",
      input({ message: dm({ text: "/status", sender: STRANGER }), account: account({ dmPolicy: "open", allowFrom: ["*"] }) }),
      `dispatch:direct:${STRANGER} mentioned=true auth=false`,
    ],
    [
      "DM command from a pairing-approved sender is authorized even in open mode",
      input({ message: dm({ text: "/status", sender: STRANGER }), account: account({ dmPolicy: "open", allowFrom: ["*"] }), approvedSenders: [STRANGER] }),
      `dispatch:direct:${STRANGER} mentioned=true auth=true`,
    ],

    // mention gating
    [
      "group without mention is kept as history",
      input({ message: group({ text: "hi all" }), account: groupAccount(), mentionPatterns: MENTION }),
      "drop:no mention +history",
    ],
    ["mentioned group message", input({ message: group(), account: groupAccount(), mentionPatterns: MENTION }), "dispatch:group:42 mentioned=true auth=true"],
    [
      "zero-width characters do not hide a mention",
      input({ message: group({ text: "@cl\u200baw hi" }), account: groupAccount(), mentionPatterns: MENTION }),
      "dispatch:group:42 mentioned=true auth=true",
    ],
    [
      "no patterns configured: gating cannot be enforced",
      input({ message: group({ text: "hi all" }), account: groupAccount() }),
      "dispatch:group:42 mentioned=false auth=true",
    ],
    [
      "requireMention defaults to true",
      input({ message: group({ text: "hi all" }), account: groupAccount({ groups: { "42": {} } }), mentionPatterns: MENTION }),
      "drop:no mention +history",
    ],
    [
      "requireMention falls back to the * entry",
      input({ message: group({ text: "hi all" }), account: groupAccount({ groups: { "42": {}, "*": { requireMention: false } } }), mentionPatterns: MENTION }),
      "dispatch:group:42 mentioned=false auth=true",
    ],
    [
      "the chat's requireMention wins over *",
      input({
        message: group({ text: "hi all" }),
        account: groupAccount({ groups: { "42": { requireMention: true }, "*": { requireMention: false } } }),
        mentionPatterns: MENTION,
      }),
      "drop:no mention +history",
    ],
    [
      "a slash word that is no command gets no mention bypass",
      input({
        message: group({ text: "/helpful tip", sender: STRANGER }),
        account: account({ groupPolicy: "open", groups: { "*": {} } }),
        mentionPatterns: MENTION,
      }),
      "drop:no mention +history",
    ],
    [
      "DMs are always mentioned",
      input({ message: dm({ text: "no mention here" }), account: account({ allowFrom: [OWNER] }), mentionPatterns: MENTION }),
      `dispatch:direct:${OWNER} mentioned=true auth=true`,
    ],
  ];
  for (const [name, inp, expected] of rows) test(name, () => expect(summary(decide(inp))).toBe(expected));

  test("every drop reason produced above is listed in DROP_REASONS, and each is exercised", () => {
    const seen = new Set(rows.map(([, inp]) => decide(inp)).flatMap((d) => (d.kind === "drop" ? [d.reason] : [])));
    expect([...seen].sort()).toEqual([...DROP_REASONS].sort());
  });

  test("dispatch carries the parsed command and the merged group config", () => {
    const d = decide(input({
      message: group({ text: "/config set x 1" }),
      account: groupAccount({ groups: { "42": { systemPrompt: "" }, "*": { requireMention: false, systemPrompt: "be brief" } } }),
    }));
    expect(d).toEqual({
      kind: "dispatch",
      isGroup: true,
      senderId: OWNER,
      peer: { kind: "group", id: "42" },
      wasMentioned: true,
      commandAuthorized: true,
      command: { name: "config", args: "set x 1" },
      groupConfig: { requireMention: false, systemPrompt: "" },
    });
  });

  test("a DM dispatch has neither command nor group config", () => {
    const d = decide(input({ account: account({ allowFrom: [OWNER] }) }));
    expect(d).toEqual({ kind: "dispatch", isGroup: false, senderId: OWNER, peer: { kind: "direct", id: OWNER }, wasMentioned: true, commandAuthorized: true });
  });
});

describe("conversationOf", () => {
  test("imsg's group flag makes a group keyed by chat id", () => {
    expect(conversationOf(group(), account())).toEqual({ isGroup: true, peer: { kind: "group", id: "42" } });
  });
  test("a DM is keyed by the normalized sender", () => {
    expect(conversationOf(dm({ sender: "+1 555 000 1111" }), account())).toEqual({ isGroup: false, peer: { kind: "direct", id: OWNER } });
  });
  test("a chat listed in groups is a group although imsg says DM", () => {
    expect(conversationOf(dm({ chatId: 2 }), account({ groups: { "2": {} } }))).toEqual({ isGroup: true, peer: { kind: "group", id: "2" } });
  });
  test("the * entry alone does not turn DMs into groups", () => {
    expect(conversationOf(dm({ chatId: 2 }), account({ groups: { "*": {} } })).isGroup).toBe(false);
  });
  test("a multi-person thread that imsg reports as is_group false is a group, never a DM", () => {
    const thread = dm({ chatId: 9, participants: [OWNER, "+15550002222"] });
    expect(conversationOf(thread, account()).isGroup).toBe(true);
    // So a chat_id entry in allowFrom cannot admit its other members as DM senders into the owner's session.
    const d = decide(input({ message: { ...thread, sender: "+15550002222" }, account: account({ dmPolicy: "allowlist", allowFrom: [OWNER, "chat_id:9"] }) }));
    expect(d.kind === "dispatch" && !d.isGroup).toBe(false);
  });
});

describe("parseControlCommand", () => {
  const rows: [text: string, expected: ReturnType<typeof parseControlCommand>][] = [
    ["/status", { name: "status", args: "" }],
    ["  /STATUS  ", { name: "status", args: "" }],
    ["/Reset now please", { name: "reset", args: "now please" }],
    ["/new", { name: "new", args: "" }],
    ["/config set channels.imessage.dmPolicy open", { name: "config", args: "set channels.imessage.dmPolicy open" }],
    ["/help\nmore", { name: "help", args: "more" }],
    ["/statusfoo", undefined],
    ["status", undefined],
    ["please /status", undefined],
    ["/unknown", undefined],
  ];
  for (const [text, expected] of rows) test(JSON.stringify(text), () => expect(parseControlCommand(text)).toEqual(expected));
});

describe("mention patterns", () => {
  test("compile case-insensitively and report invalid or empty ones", () => {
    const { regexes, invalid } = compileMentionPatterns(["@claw", "\\bclaw\\b", "(unclosed", "  "]);
    expect(regexes.map((r) => r.source)).toEqual(["@claw", "\\bclaw\\b"]);
    expect(regexes.every((r) => r.flags.includes("i"))).toBe(true);
    expect(invalid).toEqual(["(unclosed", "  "]);
  });

  test("a JSON backspace is read as a word boundary", () => {
    const { regexes } = compileMentionPatterns(["\bclaw\b"]);
    expect(matchesMention("hey claw!", regexes)).toBe(true);
    expect(matchesMention("clawed", regexes)).toBe(false);
  });

  const { regexes } = compileMentionPatterns(["@claw", "\\bbot\\b"]);
  const rows: [name: string, text: string, expected: boolean][] = [
    ["plain mention", "hi @claw", true],
    ["any letter case", "hi @CLAW", true],
    ["second pattern", "ok Bot, go", true],
    ["word boundary respected", "robots", false],
    ["zero-width space removed", "@c\u200bl\u200daw", true],
    ["bidi controls removed", "@\u202eclaw\u202c", true],
    ["word joiner removed", "@cl\u2060aw", true],
    ["zero-width no-break space (BOM) removed", "@cl\uFEFFaw", true],
    ["zero-width non-joiner removed", "@cl\u200Caw", true],
    ["left-to-right mark removed", "@cl\u200Eaw", true],
    ["no mention", "hello all", false],
  ];
  for (const [name, text, expected] of rows) test(name, () => expect(matchesMention(text, regexes)).toBe(expected));

  test("no patterns never match", () => expect(matchesMention("@claw", [])).toBe(false));
  test("a global regex gives the same answer every time", () => {
    const g = [/claw/gi];
    expect([matchesMention("claw", g), matchesMention("claw", g), matchesMention("claw", g)]).toEqual([true, true, true]);
  });
});

describe("isOwner: exact E.164 (or email) handle over iMessage", () => {
  const acct = { allowFrom: ["+1 (555) 000-1111", "Owner@Example.com", "*", "chat_id:7"] };
  const rows: [name: string, sender: string, service: ImsgMessage["service"], expected: boolean][] = [
    ["the E.164 form over iMessage", OWNER, "imessage", true],
    ["the email, any letter case", "owner@example.COM", "imessage", true],
    ["the same number over SMS", OWNER, "sms", false],
    ["over RCS", OWNER, "rcs", false],
    ["over an unverified any; chat", OWNER, "unverified", false],
    ["without the plus", "15550001111", "imessage", false],
    ["with an international 00 prefix", "0015550001111", "imessage", false],
    ["formatted with spaces", "+1 555 000 1111", "imessage", false],
    ["with a service prefix", `imessage:${OWNER}`, "imessage", false],
    ["a stranger", STRANGER, "imessage", false],
  ];
  test.each(rows)("%s", (_n, sender, service, expected) => expect(isOwner(acct, { sender, service })).toBe(expected));
  test('"*" and chat targets make nobody an owner', () =>
    expect(isOwner({ allowFrom: ["*", "chat_id:7"] }, { sender: OWNER, service: "imessage" })).toBe(false));
});
