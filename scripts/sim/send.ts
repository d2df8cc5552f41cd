// `send` (AppleScript path, plus a simulated bridge when the `bridge` control is on) and the other mutations
// (docs/IMSG-PROTOCOL.md "send" and "Typed delivery outcomes"). Faults queued in the sim db's sim_fault table
// decide the next outcome; the `receipt_delay_ms` control makes a row land late.
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { type ChatRow, expandTilde, type InjectOptions, isGroupChat, type SimDb } from "../sim-db.ts";
import { envInt, MODERN, RECEIPT_WAIT_MS, SELF, VERSION, versionAtLeast } from "./env.ts";
import {
  boolParam,
  checkKeys,
  deliveryError,
  type Handled,
  internalError,
  intParam,
  invalidParams,
  type Json,
  type Params,
  RpcError,
  strParam,
} from "./rpc.ts";
import { tapback } from "./tapback.ts";

const SEND_KEYS = [
  "to",
  "text",
  "file",
  "service",
  "transport",
  "region",
  "chat_id",
  "chat_identifier",
  "chat_guid",
  "reply_to",
  "replyTo",
  "reply_to_guid",
  "message_guid",
  "allow_sms_fallback",
  "allowSMSFallback",
  "text_formatting",
  "textFormatting",
  "formatting",
];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const OSASCRIPT_NOISE =
  'osascript[4242:1337] OpenScripting.framework - scripting addition "/Library/ScriptingAdditions/Adobe Unit Types.osax" cannot be used with the current OS because it has no OSAXHandlers entry in its Info.plist.';

/** Handle normalisation of AppleScript direct sends: service prefixes dropped, phones to E.164 for `region`. */
export function normalizeHandle(raw: string, region: string): string {
  const h = raw.trim().replace(/^(imessage|sms|auto):/i, "");
  if (h.includes("@") || !/^\+?[\d\s().-]+$/.test(h)) return h;
  const digits = h.replace(/\D/g, "");
  if (h.startsWith("+")) return `+${digits}`;
  if (region.toUpperCase() === "US" && digits.length === 10) return `+1${digits}`;
  if (region.toUpperCase() === "US" && digits.length === 11 && digits.startsWith("1")) return `+${digits}`;
  return digits;
}
const looksLikeHandle = (s: string) => /^(imessage|sms|auto):/i.test(s) || s.includes("@") || /^\+?[\d\s().-]{3,}$/.test(s);

export class Sender {
  /** Set by a still_in_flight outcome: the server then blocks every later mutation on this child. */
  poisoned = false;

  constructor(private readonly db: SimDb) {}

  async send(p: Params): Promise<Handled> {
    checkKeys("send", p, SEND_KEYS);
    const text = strParam(p.text, "text") ?? "";
    const file = strParam(p.file, "file") ?? "";
    const service = strParam(p.service, "service") ?? "auto";
    if (!["auto", "imessage", "sms"].includes(service)) throw invalidParams("invalid service");
    const transport = (strParam(p.transport, "transport") ?? "auto").toLowerCase();
    const replyTo = MODERN ? strParam(p.reply_to ?? p.replyTo ?? p.reply_to_guid ?? p.message_guid, "reply_to") || "" : "";
    if (MODERN) boolParam(p.allow_sms_fallback ?? p.allowSMSFallback, "allow_sms_fallback");
    if (versionAtLeast(VERSION, "0.8.1") && !["auto", "bridge", "applescript"].includes(transport)) throw invalidParams("invalid transport");
    const region = strParam(p.region, "region") ?? "US";
    const to = strParam(p.to, "to") ?? "";
    const chatIdParam = intParam(p.chat_id, "chat_id");
    const chatIdentifier = strParam(p.chat_identifier, "chat_identifier") ?? "";
    const chatGuid = strParam(p.chat_guid, "chat_guid") ?? "";
    const hasChatTarget = chatIdParam !== undefined || chatIdentifier !== "" || chatGuid !== "";
    if (to !== "" && hasChatTarget) throw invalidParams("use to or chat_*; not both");
    if (to === "" && !hasChatTarget) throw invalidParams("to is required for direct sends");
    if (text === "" && file === "") throw invalidParams("text or file is required");
    let target = { identifier: chatIdentifier, guid: chatGuid };
    if (chatIdParam !== undefined) {
      const info = this.db.chatInfo(chatIdParam);
      if (!info) throw invalidParams(`unknown chat_id ${chatIdParam}`);
      target = { identifier: info.identifier, guid: info.guid };
    }
    if (hasChatTarget && !target.identifier && !target.guid) throw invalidParams("missing chat identifier or guid");

    const bridge = this.db.control("bridge") === "1";
    // A threaded reply (0.15) to a `to` handle also rides the bridge when that direct chat exists, as in imsg.
    const replyDirect = replyTo && bridge && transport === "auto" && !hasChatTarget ? this.#existingDirect(normalizeHandle(to, region), service) : undefined;
    if (transport === "bridge" || (bridge && transport === "auto" && hasChatTarget) || replyDirect) {
      const known = hasChatTarget ? target.guid : (replyDirect ?? this.#existingDirect(normalizeHandle(to, region), service))?.guid;
      if (!known) throw invalidParams("bridge transport requires an existing chat target");
      // 0.15's bridge sends a captioned attachment as one message; 0.9's refused text with a file.
      if (text && file && !MODERN) throw invalidParams("bridge transport does not support text and file together");
      // Without the `bridge` control there is no IMCore helper: fail the way an unready bridge does.
      if (!bridge) throw internalError("imsg bridge not ready: helper not injected into Messages.app (run `imsg launch`)");
      // Control `bridge_attachment_metadata` = 0: an older helper that cannot caption or thread an attachment.
      if (file && (text || replyTo) && this.db.control("bridge_attachment_metadata") === "0") {
        throw internalError("running bridge does not support captioned or threaded attachments; restart Messages with the current imsg bridge");
      }
      return this.#bridgeSend(known, text, abs(file), replyTo);
    }
    if (replyTo) throw invalidParams("reply_to requires bridge transport; AppleScript fallback cannot send threaded replies");

    const absFile = abs(file);
    if (absFile && (!existsSync(absFile) || statSync(absFile).isDirectory())) throw internalError(`AppleScript failed: Attachment not found at ${absFile}`);
    const chat = this.#resolveChat(to, target, service, region);
    const delay = envInt("IMSG_SIM_SEND_DELAY_MS");
    if (delay) await sleep(delay);
    const fault = this.db.takeFault("send");
    if (fault?.kind === "not_started") throw this.#fault(fault.kind);

    const direct = !isGroupChat(chat.identifier, chat.guid);
    const from = direct ? chat.identifier : "";
    const selfChat = direct && normalizeHandle(chat.identifier, region) === normalizeHandle(SELF, region);
    const write = (o: Omit<InjectOptions, "from" | "chatId">) => {
      // Control `clock_skew_ms`: the Mac's clock is that far off the gateway's (rows are dated by the Mac).
      const createdAt = new Date(Date.now() + Number(this.db.control("clock_skew_ms") ?? 0));
      const row = this.db.inject({ ...o, from, chatId: chat.id, isFromMe: true, createdAt, service: chat.service === "SMS" ? "SMS" : "iMessage" });
      // Self-chat: Messages writes the incoming twin with the identical date.
      if (selfChat) this.db.inject({ ...o, from: SELF, chatId: chat.id, createdAt });
      return row;
    };
    // Text first, then the file: two AppleScript sends, two rows.
    const writeAll = () => {
      const textRow = text ? write({ text }) : undefined;
      if (absFile) write({ attachments: [{ path: absFile }] });
      if (textRow && process.env.IMSG_SIM_ECHO_DUP === "1") this.db.inject({ from: SELF, chatId: chat.id, text });
      return textRow;
    };
    if (fault) {
      // The message may still land after the error (a slow Messages.app), which is what makes it "unknown".
      if (fault.lands) setTimeout(writeAll, Number(this.db.control("receipt_delay_ms") ?? 0));
      throw this.#fault(fault.kind);
    }
    const receiptDelay = Number(this.db.control("receipt_delay_ms") ?? 0);
    let textRow: ReturnType<typeof writeAll>;
    if (receiptDelay > 0) {
      // A slow receipt: 0.9 answers at once without id/guid; 0.15 waits up to RECEIPT_WAIT_MS for the row.
      if (!MODERN) {
        setTimeout(writeAll, receiptDelay);
        return { result: { ok: true, transport: "applescript" } };
      }
      if (receiptDelay > RECEIPT_WAIT_MS) {
        setTimeout(writeAll, receiptDelay);
        await sleep(RECEIPT_WAIT_MS);
        throw deliveryError("may_have_completed", "send", "The message row did not appear in chat.db within the verification window.");
      }
      await sleep(receiptDelay);
    }
    textRow = writeAll();

    // Result shape by version; file-only sends never carry id/guid before 0.15.
    const result: Record<string, Json> = { ok: true };
    if (versionAtLeast(VERSION, "0.8.1")) result.transport = "applescript";
    if (textRow && versionAtLeast(VERSION, "0.6.0")) {
      result.id = textRow.rowid;
      result.guid = textRow.guid;
    }
    if (MODERN) {
      if (textRow) result.message_id = textRow.guid;
      result.service = chat.service === "SMS" ? "SMS" : "iMessage";
      if (chat.guid) result.chat_guid = chat.guid;
    }
    return { result };
  }

  #fault(kind: "not_started" | "may_have_completed" | "still_in_flight") {
    if (!MODERN) return internalError("AppleScript failed: Messages got an error: AppleEvent timed out. (-1712)");
    if (kind === "still_in_flight") this.poisoned = true;
    const detail = {
      not_started: "Messages.app rejected the send before dispatch.",
      may_have_completed: "The send was dispatched but its delivery could not be verified.",
      still_in_flight: "The send is still running in Messages.app after the response deadline.",
    }[kind];
    return deliveryError(kind, "send", detail);
  }

  /** `tapback` through the simulated bridge (tapback.ts); a still_in_flight outcome poisons the lane like a send. */
  tapback(p: Params): Promise<Handled> {
    return tapback(this.db, p, () => {
      this.poisoned = true;
    });
  }

  /**
   * `typing` / `read` (0.7.3+): resolve the target like imsg, then need the IMCore bridge. 0.15 lists both in
   * `status.methods` even without it (they try to activate Messages.app themselves); this simulates a Mac where
   * that fails (SIP on, no helper), so without the `bridge` control they answer -32603. Every call is recorded.
   */
  presence(method: "typing" | "read", p: Params): Handled {
    checkKeys(
      method,
      p,
      method === "typing" ? ["to", "typing", "service", "chat_id", "chat_identifier", "chat_guid"] : ["to", "chat_id", "chat_identifier", "chat_guid"],
    );
    const typing = method === "typing" ? (boolParam(p.typing, "typing") ?? true) : undefined;
    const to = strParam(p.to, "to") ?? "";
    const chatIdParam = intParam(p.chat_id, "chat_id");
    const chatIdentifier = strParam(p.chat_identifier, "chat_identifier") ?? "";
    const chatGuid = strParam(p.chat_guid, "chat_guid") ?? "";
    const hasChatTarget = chatIdParam !== undefined || chatIdentifier !== "" || chatGuid !== "";
    if (to !== "" && hasChatTarget) throw invalidParams("use to or chat_*; not both");
    if (to === "" && !hasChatTarget) throw invalidParams("to is required");
    let chat: ChatRow | undefined;
    let target: string;
    if (chatIdParam !== undefined) {
      chat = this.db.chatById(chatIdParam);
      if (!chat) throw invalidParams(`unknown chat_id ${chatIdParam}`);
      target = chat.guid || chat.identifier;
      if (!target) throw invalidParams("missing chat identifier or guid");
    } else if (hasChatTarget) {
      target = chatGuid || chatIdentifier;
      chat = chatGuid ? this.db.chatByGuid(chatGuid) : this.db.chatByIdentifier(chatIdentifier);
    } else {
      const service = (strParam(p.service, "service") ?? "imessage").toLowerCase();
      if (!["imessage", "sms", "auto"].includes(service)) throw invalidParams(service);
      const handle = normalizeHandle(to, "US");
      chat = this.#existingDirect(handle, service);
      target = chat?.guid ?? `${service === "sms" ? "SMS" : "iMessage"};-;${handle}`;
    }
    const at = performance.timeOrigin + performance.now();
    const ok = this.db.control("bridge") === "1";
    const error = ok
      ? undefined
      : method === "typing"
      ? "Typing indicator failed: IMCore chat registry unavailable (helper not injected; run `imsg launch`)"
      : "Mark as read failed: IMCore chat registry unavailable (helper not injected; run `imsg launch`)";
    this.db.recordPresence({
      method,
      ...(chat ? { chatId: chat.id } : {}),
      target,
      ...(typing !== undefined ? { typing } : {}),
      ok,
      ...(error ? { error } : {}),
      at,
    });
    if (error) throw internalError(error);
    return { result: { ok: true } };
  }

  /** A send through the simulated IMCore bridge (control `bridge`): the row is written at once. */
  #bridgeSend(chatGuid: string, text: string, file: string, replyTo = ""): Handled {
    const chat = this.db.chatByGuid(chatGuid);
    if (!chat) throw internalError(`bridge: unknown chat ${chatGuid}`);
    const previous = this.db.messages().filter((m) => m.chatId === chat.id).at(-1);
    const direct = !isGroupChat(chat.identifier, chat.guid);
    const row = this.db.inject({
      from: direct ? chat.identifier : "",
      chatId: chat.id,
      isFromMe: true,
      ...(file ? { attachments: [{ path: file }] } : {}),
      ...(text || !file ? { text } : {}),
      ...(replyTo ? this.#thread(replyTo) : {}),
    });
    // Before 0.15.1 the bridge could hand back the previous message's GUID (control `bridge_stale_guid`).
    const guid = !MODERN && this.db.control("bridge_stale_guid") === "1" && previous ? previous.guid : row.guid;
    const result: Record<string, Json> = { ok: true, transport: "bridge", guid };
    if (MODERN) Object.assign(result, { message_id: guid, chat_guid: chat.guid, service: chat.service === "SMS" ? "SMS" : "iMessage" });
    return { result };
  }

  /** A threaded reply's links: the parent, and the thread it belongs to (the parent's own originator, else itself). */
  #thread(parent: string): { replyToGuid: string; threadOriginatorGuid: string } {
    const originator = this.db.messageByGuid(parent)?.threadOriginatorGuid;
    return { replyToGuid: parent, threadOriginatorGuid: originator || parent };
  }

  #existingDirect(handle: string, service: string): ChatRow | undefined {
    const prefixes = service === "sms" ? ["SMS", "any"] : ["iMessage", "any", "SMS"];
    for (const pre of prefixes) {
      const c = this.db.chatByGuid(`${pre};-;${handle}`);
      if (c) return c;
    }
    return this.db.chatByGuid(handle) ?? this.db.chatByIdentifier(handle);
  }

  // Where AppleScript would deliver: a handle-like identifier is a buddy send, else the chat by guid/identifier.
  #resolveChat(to: string, target: { identifier: string; guid: string }, service: string, region: string): ChatRow {
    const svc = service === "sms" ? "SMS" : "iMessage";
    if (to) {
      const h = normalizeHandle(to, region);
      // 0.15's service "auto" picks SMS when local history only knows an SMS chat for the handle.
      const sms = MODERN && service === "auto" && !this.db.chatByGuid(`iMessage;-;${h}`) ? this.db.chatByGuid(`SMS;-;${h}`) : undefined;
      return sms ?? this.db.chatByGuid(`${svc};-;${h}`) ?? this.db.chatByGuid(`any;-;${h}`) ?? this.db.ensureDirectChat(h, svc);
    }
    if (target.identifier && looksLikeHandle(target.identifier)) {
      const h = normalizeHandle(target.identifier, region);
      return this.db.chatByGuid(target.guid) ?? this.db.chatByGuid(`${svc};-;${h}`) ?? this.db.ensureDirectChat(h, svc);
    }
    const chat = (target.guid && this.db.chatByGuid(target.guid)) || (target.identifier && this.db.chatByIdentifier(target.identifier)) || undefined;
    if (!chat) throw internalError(`AppleScript failed: Messages got an error: Can’t get chat id "${target.guid || target.identifier}". (-1728)`);
    return chat;
  }
}
const abs = (file: string) => (file ? resolve(expandTilde(file)) : "");
