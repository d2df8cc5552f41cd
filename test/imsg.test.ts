import { describe, expect, test } from "bun:test";
import { parseMessage, toWireMessage, type ImsgAttachment, type ImsgMessage } from "../src/imsg.ts";

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

  test("optional fields left out stay undefined", () => {
    const min: ImsgMessage = { ...full, senderName: undefined, isReaction: undefined, reactionType: undefined, threadOriginatorGuid: undefined };
    const r = parseMessage(toWireMessage(min)) as { message: ImsgMessage };
    expect(r.message.senderName).toBeUndefined();
    expect(r.message.isReaction).toBeUndefined();
    expect(r.message.threadOriginatorGuid).toBeUndefined();
    expect(r.message).toEqual(min);
  });
});
