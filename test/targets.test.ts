import { describe, expect, test } from "bun:test";
import { UsageError } from "../src/errors.ts";
import type { ImsgMessage } from "../src/imsg.ts";
import {
  type AllowSubject,
  formatTarget,
  matchesAllowList,
  normalizeHandle,
  parseAllowEntry,
  parseTarget,
  replyTargetFor,
  type Target,
  targetToSendParams,
} from "../src/targets.ts";

const HEX = "7d52a1b2c3d4e5f60718293a4b5c8fdd";

describe("normalizeHandle", () => {
  const rows: [name: string, raw: string, expected: string][] = [
    ["blank is empty", "   ", ""],
    ["formatted US number becomes E.164", " +1 (555) 222-3333 ", "+15552223333"],
    ["dots and slashes are separators", "+1.555.222/3333", "+15552223333"],
    ["stray plus signs collapse to one leading plus", "++1 555 +222 3333", "+15552223333"],
    ["leading 00 is the international prefix", "0044 20 7946 0000", "+442079460000"],
    ["number without plus gets one", "15552223333", "+15552223333"],
    ["a national number (no country code) stays bare digits, never a wrong +555…", "(555) 222-3333", "5552223333"],
    ["email case folding is ASCII-only (the Kelvin sign stays itself)", "Own\u212Aer@Example.com", "own\u212Aer@example.com"],
    ["Contacts bidi marks and nbsp are ignored", "\u202a+1\u00a0555\u2011222\u20113333\u202c", "+15552223333"],
    ["short code stays bare", "262966", "262966"],
    ["more than 15 digits is not a phone", "1234567890123456", "1234567890123456"],
    ["email is lowercased", " Name@Example.COM ", "name@example.com"],
    ["imessage: prefix is stripped", "imessage:+15550001111", "+15550001111"],
    ["prefixes are stripped repeatedly and case-insensitively", "SMS:auto: iMessage:user@example.com", "user@example.com"],
    ["chat_id aliases canonicalize", "CHAT:42", "chat_id:42"],
    ["chatid alias", "chatid:789", "chat_id:789"],
    ["guid alias keeps the value verbatim", "GUID: iMessage;+;chat99 ", "chat_guid:iMessage;+;chat99"],
    ["chatident alias", "ChatIdent:Chat123", "chat_identifier:Chat123"],
    ["service prefix before a chat target is dropped", "sms:chat_id:123", "chat_id:123"],
    ["bare 32-hex is a chat identifier, never a phone", HEX.toUpperCase(), `chat_identifier:${HEX}`],
    ["other handles lose whitespace only", "Some Handle", "SomeHandle"],
    ["wildcard is kept", "*", "*"],
  ];
  for (const [name, raw, expected] of rows) test(name, () => expect(normalizeHandle(raw)).toBe(expected));

  test("is idempotent", () => {
    for (const [, raw] of rows) expect(normalizeHandle(normalizeHandle(raw))).toBe(normalizeHandle(raw));
  });
});

describe("parseTarget", () => {
  const rows: [name: string, raw: string, expected: Target][] = [
    ["chat_id", "chat_id:123", { kind: "chat_id", chatId: 123 }],
    ["chat alias", "chat:456", { kind: "chat_id", chatId: 456 }],
    ["upper-case alias", "CHAT_ID:123", { kind: "chat_id", chatId: 123 }],
    ["mixed-case alias", "Chat_Id:456", { kind: "chat_id", chatId: 456 }],
    ["chat_guid", "ChatGuid:iMessage;+;chat1", { kind: "chat_guid", chatGuid: "iMessage;+;chat1" }],
    ["chat_identifier", "CHATIDENTIFIER:chat1", { kind: "chat_identifier", chatIdentifier: "chat1" }],
    ["service prefix before a chat target is ignored", "imessage:CHAT_GUID:abc", { kind: "chat_guid", chatGuid: "abc" }],
    ["sms handle keeps its service", "sms:+1 555 0001111", { kind: "handle", to: "+15550001111", service: "sms" }],
    ["bare phone is normalized with auto service", "+1 (555) 222-3333", { kind: "handle", to: "+15552223333", service: "auto" }],
    ["email is lowercased", "Name@Example.com", { kind: "handle", to: "name@example.com", service: "auto" }],
    ["bare 32-hex is a chat identifier", HEX, { kind: "chat_identifier", chatIdentifier: HEX }],
  ];
  for (const [name, raw, expected] of rows) test(name, () => expect(parseTarget(raw)).toEqual(expected));

  test("defaultService applies to unprefixed handles only", () => {
    expect(parseTarget("+15550001111", "sms")).toEqual({ kind: "handle", to: "+15550001111", service: "sms" });
    expect(parseTarget("imessage:+15550001111", "sms")).toEqual({ kind: "handle", to: "+15550001111", service: "imessage" });
  });

  const errors: [name: string, raw: string, message: RegExp][] = [
    ["empty target", "  ", /target is required/],
    ["service prefix with nothing after it", "sms:", /^sms: target is required/],
    [
      "hex chat_id points to chat_identifier",
      "chat_id:2ecba0e20f3a4299",
      /^Invalid chat_id: 2ecba0e20f3a4299\. Use chat_identifier:2ecba0e20f3a4299 for hex identifiers\.$/,
    ],
    ["letters in chat_id", "chat_id:abc", /Invalid chat_id/],
    ["digits then letters in chat_id", "chat_id:12abc", /Invalid chat_id/],
    ["chat_id zero", "chat_id:0", /Invalid chat_id/],
    ["empty chat_id", "chat_id:", /chat_id is required/],
    ["empty chat_guid", "chat_guid: ", /chat_guid is required/],
    ["empty chat_identifier", "sms:chat_identifier:", /chat_identifier is required/],
  ];
  for (const [name, raw, message] of errors) {
    test(`rejects ${name}`, () => {
      let caught: unknown;
      try {
        parseTarget(raw);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(UsageError);
      expect((caught as Error).message).toMatch(message);
    });
  }
});

describe("targetToSendParams and formatTarget", () => {
  const rows: [name: string, target: Target, params: unknown, text: string][] = [
    ["chat_id", { kind: "chat_id", chatId: 42 }, { chat_id: 42 }, "chat_id:42"],
    ["chat_guid", { kind: "chat_guid", chatGuid: "iMessage;+;chat1" }, { chat_guid: "iMessage;+;chat1" }, "chat_guid:iMessage;+;chat1"],
    ["chat_identifier", { kind: "chat_identifier", chatIdentifier: "chat1" }, { chat_identifier: "chat1" }, "chat_identifier:chat1"],
    [
      "explicit handle service wins",
      { kind: "handle", to: "+15550001111", service: "imessage" },
      { to: "+15550001111", service: "imessage" },
      "imessage:+15550001111",
    ],
    [
      "auto handle takes the account service",
      { kind: "handle", to: "user@example.com", service: "auto" },
      { to: "user@example.com", service: "sms" },
      "auto:user@example.com",
    ],
  ];
  for (const [name, target, params, text] of rows) {
    test(name, () => {
      expect(targetToSendParams(target, "sms")).toEqual(params as never);
      expect(formatTarget(target)).toBe(text);
      expect(parseTarget(formatTarget(target))).toEqual(target);
    });
  }
});

describe("replyTargetFor", () => {
  const base: ImsgMessage = {
    id: 1,
    chatId: 42,
    guid: "g1",
    sender: "+1 555 000 1111",
    isFromMe: false,
    text: "hi",
    createdAt: "2026-01-01T00:00:00Z",
    attachments: [],
    chatIdentifier: "chat42",
    chatGuid: "iMessage;+;chat42",
    chatName: "Team",
    participants: [],
    isGroup: true,
    service: "imessage",
  };
  const rows: [name: string, msg: ImsgMessage, isGroup: boolean | undefined, expected: string][] = [
    ["group replies go to the chat id", base, undefined, "chat_id:42"],
    ["DM replies go to the normalized sender", { ...base, isGroup: false, chatGuid: "iMessage;-;+15550001111" }, undefined, "imessage:+15550001111"],
    ["SMS DM is answered by SMS", { ...base, isGroup: false, chatGuid: "SMS;-;+15550001111" }, undefined, "sms:+15550001111"],
    ["unknown chat service defers to the account", { ...base, isGroup: false, chatGuid: "" }, undefined, "auto:+15550001111"],
    ["config-made group (imsg said DM) goes to the chat id", { ...base, isGroup: false }, true, "chat_id:42"],
  ];
  for (const [name, msg, isGroup, expected] of rows) test(name, () => expect(formatTarget(replyTargetFor(msg, isGroup ?? msg.isGroup))).toBe(expected));
});

describe("allow lists", () => {
  test("parseAllowEntry", () => {
    expect(parseAllowEntry(" * ")).toEqual({ kind: "any" });
    expect(parseAllowEntry("sms:+1 (555) 000-1111")).toEqual({ kind: "handle", handle: "+15550001111" });
    expect(parseAllowEntry("Chat:9")).toEqual({ kind: "chat_id", chatId: 9 });
    expect(parseAllowEntry("chat_id:abc")).toBeUndefined();
    expect(parseAllowEntry("chat_id:")).toBeUndefined();
    expect(parseAllowEntry("guid:iMessage;+;chat1")).toEqual({ kind: "chat_guid", chatGuid: "iMessage;+;chat1" });
    expect(parseAllowEntry("chatident:chat1")).toEqual({ kind: "chat_identifier", chatIdentifier: "chat1" });
    expect(parseAllowEntry("")).toBeUndefined();
  });

  const who: AllowSubject = { sender: "User@Example.com", chatId: 9, chatGuid: "iMessage;+;chat9", chatIdentifier: "chat9" };
  const rows: [name: string, entries: string[], subject: AllowSubject, expected: boolean][] = [
    ["empty list admits nobody", [], who, false],
    ["wildcard admits everybody", ["*"], who, true],
    ["email entry matches regardless of case", ["user@example.com"], who, true],
    ["formatted phone entry matches the E.164 sender", ["+1 (555) 000-1111"], { sender: "+15550001111" }, true],
    ["other handle does not match", ["+15550002222"], { sender: "+15550001111" }, false],
    ["chat_id entry admits any sender in that chat", ["chat_id:9"], who, true],
    ["chat_id entry does not admit another chat", ["chat_id:10"], who, false],
    ["invalid chat_id entry is ignored", ["chat_id:nine"], who, false],
    ["chat_guid entry matches", ["chat_guid:iMessage;+;chat9"], who, true],
    ["chat_identifier entry matches", ["chat_identifier:chat9"], who, true],
    ["bare hex entry matches an upper-case identifier", [HEX], { sender: "+15550001111", chatIdentifier: HEX.toUpperCase() }, true],
    ["chat entries never match a message without chat ids", ["chat_guid:x", "chat_identifier:y"], { sender: "+15550001111" }, false],
  ];
  for (const [name, entries, subject, expected] of rows) test(name, () => expect(matchesAllowList(entries, subject)).toBe(expected));
});
