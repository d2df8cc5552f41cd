import { describe, expect, test } from "bun:test";
import { type ImsgAttachment, type ImsgMessage, type ImsgReaction, messageService, parseMessage, toWireMessage } from "../src/imsg.ts";

// Every field set to a value that differs from its default, so a field dropped in either direction shows.
const fullAttachment: Required<ImsgAttachment> = {
  filename: "~/Library/Messages/Attachments/a.caf",
  transferName: "a.caf",
  uti: "com.apple.coreaudio-format",
  mimeType: "audio/x-caf",
  totalBytes: 123,
  isSticker: true,
  originalPath: "/Users/x/Library/Messages/Attachments/a.caf",
  missing: true,
  convertedPath: "/Users/x/Library/Messages/Attachments/a.m4a",
  convertedMimeType: "audio/mp4",
};

const fullReaction: Required<ImsgReaction> = {
  id: 43,
  type: "emphasis",
  emoji: "‼️",
  sender: "+15550002222",
  isFromMe: true,
  createdAt: "2026-01-01T00:00:01.000Z",
};

const full: Required<ImsgMessage> = {
  id: 42,
  chatId: 7,
  guid: "GUID-1",
  sender: "+15550001111",
  senderName: "Ann",
  isFromMe: true,
  text: "hello",
  createdAt: "2026-01-01T00:00:00.000Z",
  attachments: [fullAttachment],
  reactions: [fullReaction],
  replyToGuid: "GUID-0",
  replyToText: "earlier",
  replyToSender: "+15550002222",
  threadOriginatorGuid: "GUID-T",
  destinationCallerId: "user@example.com",
  chatIdentifier: "chat123",
  chatGuid: "iMessage;+;chat123",
  chatName: "Team",
  participants: ["+15550001111", "+15550002222"],
  isGroup: true,
  isReaction: true,
  reactionType: "love",
  reactionEmoji: "❤️",
  isReactionAdd: false,
  reactedToGuid: "GUID-R",
  service: "imessage",
};

describe("imsg wire ↔ camelCase", () => {
  test("parseMessage(toWireMessage(m)) keeps every field", () => {
    const r = parseMessage(toWireMessage(full));
    expect("message" in r).toBe(true);
    expect((r as { message: ImsgMessage }).message).toEqual(full);
  });

  test.each(Object.keys(full) as (keyof ImsgMessage)[])("field %s survives the round trip", (key) => {
    const r = parseMessage(toWireMessage(full)) as { message: ImsgMessage };
    expect(r.message[key]).toEqual(full[key]);
  });

  test.each(Object.keys(fullAttachment) as (keyof ImsgAttachment)[])("attachment field %s survives the round trip", (key) => {
    const r = parseMessage(toWireMessage(full)) as { message: ImsgMessage };
    expect(r.message.attachments[0]![key]).toEqual(fullAttachment[key]);
  });

  test.each(Object.keys(fullReaction) as (keyof ImsgReaction)[])("reaction field %s survives the round trip", (key) => {
    const r = parseMessage(toWireMessage(full)) as { message: ImsgMessage };
    expect(r.message.reactions![0]![key]).toEqual(fullReaction[key]);
  });

  test("history's reactions array is read; a malformed one is ignored, not fatal", () => {
    const base = { id: 1, is_from_me: false };
    const ok = parseMessage({ ...base, reactions: [{ id: 5, type: "love", emoji: "❤️", sender: "", is_from_me: true, created_at: "x" }] });
    expect((ok as { message: ImsgMessage }).message.reactions).toEqual([
      { id: 5, type: "love", emoji: "❤️", sender: "", isFromMe: true, createdAt: "x" },
    ]);
    const bad = parseMessage({ ...base, reactions: "none" }) as { message: ImsgMessage };
    expect(bad.message.reactions).toBeUndefined();
    const none = parseMessage(base) as { message: ImsgMessage };
    expect(none.message.reactions).toBeUndefined();
  });

  test("optional fields left out stay undefined", () => {
    const min: ImsgMessage = {
      ...full,
      reactions: undefined,
      senderName: undefined,
      isReaction: undefined,
      reactionType: undefined,
      threadOriginatorGuid: undefined,
    };
    const r = parseMessage(toWireMessage(min)) as { message: ImsgMessage };
    expect(r.message.senderName).toBeUndefined();
    expect(r.message.isReaction).toBeUndefined();
    expect(r.message.threadOriginatorGuid).toBeUndefined();
    expect(r.message).toEqual(min);
  });
});

describe("messageService: how a message arrived", () => {
  const rows: [name: string, field: string | undefined, chatGuid: string, expected: ImsgMessage["service"]][] = [
    ["iMessage chat guid", undefined, "iMessage;-;+15550001111", "imessage"],
    ["iMessage group guid", undefined, "iMessage;+;chat123", "imessage"],
    ["SMS chat guid", undefined, "SMS;-;+15550001111", "sms"],
    ["RCS chat guid", undefined, "RCS;-;+15550001111", "rcs"],
    ["macOS 26 any; guid is unverified", undefined, "any;-;+15550001111", "unverified"],
    ["no guid (unjoined row) is unverified", undefined, "", "unverified"],
    ["an unknown prefix is unverified", undefined, "Jabber;-;x", "unverified"],
    ["imsg's own field refines an any; guid", "iMessage", "any;-;+15550001111", "imessage"],
    ["a field saying SMS wins over an iMessage guid", "SMS", "iMessage;-;+15550001111", "sms"],
    ["a field saying iMessage does not launder an SMS guid", "iMessage", "SMS;-;+15550001111", "sms"],
    ["an unknown field value is unverified", "carrier-pigeon", "iMessage;-;+15550001111", "unverified"],
    ["a blank field is ignored", " ", "iMessage;-;+15550001111", "imessage"],
  ];
  test.each(rows)("%s", (_n, field, guid, expected) => expect(messageService(field, guid)).toBe(expected));

  test("parseMessage sets it from the wire; a non-string service field is ignored, not fatal", () => {
    const wire = { id: 1, is_from_me: false, chat_guid: "SMS;-;+15550001111", service: 7 };
    expect((parseMessage(wire) as { message: ImsgMessage }).message.service).toBe("sms");
    expect((parseMessage({ ...wire, chat_guid: "iMessage;-;+15550001111", service: "SMS" }) as { message: ImsgMessage }).message.service).toBe("sms");
  });
});
