// Pure parts of presence and capabilities: the chat a typing/read call addresses, and which actions are usable.
import { describe, expect, test } from "bun:test";
import { describeActions, imsgInfo } from "../src/capabilities.ts";
import type { ImsgStatus } from "../src/imsg.ts";
import { presenceTarget } from "../src/presence.ts";

describe("presenceTarget", () => {
  test.each([
    [{ chatGuid: "iMessage;-;+15550001111", chatId: 3, sender: "+15550001111" }, false, { chat_guid: "iMessage;-;+15550001111" }],
    [{ chatGuid: "", chatId: 7, sender: "+15550001111" }, true, { chat_id: 7 }],
    [{ chatGuid: "", chatId: 0, sender: "+1 (555) 000-1111" }, false, { to: "+15550001111" }],
    [{ chatGuid: "", chatId: 0, sender: "+15550001111" }, true, undefined],
    [{ chatGuid: "", chatId: 0, sender: "" }, false, undefined],
  ])("%o (group %p) → %o", (msg, isGroup, expected) => {
    expect(presenceTarget(msg, isGroup)).toEqual(expected);
  });
});

const status = (over: Partial<ImsgStatus>): ImsgStatus => ({
  version: "0.15.6",
  database: { ready: true },
  methods: ["send", "typing", "read", "messages.after"],
  supportedMethods: [],
  features: [],
  capabilities: [],
  ...over,
});

describe("imsgInfo", () => {
  test.each([
    [
      "no bridge: listed typing/read still off",
      status({ bridge: { ready: false, error: "not started" } }),
      [],
      "needs the IMCore bridge (SIP off, `imsg launch`): not ready (not started)",
    ],
    ["bridge not reported", status({}), [], "needs the IMCore bridge (SIP off, `imsg launch`): not reported"],
    ["bridge ready", status({ bridge: { ready: true }, methods: ["send", "typing", "read", "tapback", "message.edit"] }), [
      "typing",
      "read",
      "tapback",
      "reply_to",
      "edit",
    ], undefined],
  ])("%s", (_name, st, usable, typingWhy) => {
    const i = imsgInfo(st);
    expect(Object.entries(i.advanced).filter(([k, v]) => v && k !== "messages.after").map(([k]) => k)).toEqual(usable);
    expect(i.why.typing).toBe(typingWhy);
  });

  test("bridge ready but a method not offered: said so; describeActions lists both sides", () => {
    const i = imsgInfo(status({ bridge: { ready: true } }));
    expect(i.why.unsend).toBe("imsg 0.15.6 does not offer message.unsend");
    expect(describeActions(i)).toBe("imsg 0.15.6 (bridge ready): actions typing, read, reply_to; not supported: tapback, edit, unsend");
    expect(describeActions(undefined, "imsg has no `status`")).toBe("imsg actions: none (imsg has no `status`)");
  });
});
