// `tapback` through the simulated IMCore bridge (docs/IMSG-PROTOCOL.md "tapback"): imsg's reaction vocabulary,
// 0.15's emoji tapbacks (only while the bridge advertises them), queued faults and a delay like `send`.
import { isGroupChat, type ReactionType, type SimDb } from "../sim-db.ts";
import { envInt, MODERN } from "./env.ts";
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// imsg's bridge normaliser: every spelling it takes, by the kind it sends (`emphasize`, where the read side says
// `emphasis`).
const SPELLINGS: Record<string, string[]> = {
  love: ["love", "heart", "❤️", "❤"],
  like: ["like", "thumbsup", "thumbs-up", "+1", "👍"],
  dislike: ["dislike", "thumbsdown", "thumbs-down", "-1", "👎"],
  laugh: ["laugh", "haha", "lol", "😂", "🤣"],
  emphasize: ["emphasize", "emphasis", "!!", "‼", "‼️"],
  question: ["question", "?", "❓"],
};

/** imsg's normalizeBridgeReactionType: trimmed, lower-cased, `remove-` prefix or `remove` → `remove-<kind>`. */
export function normalizeTapback(raw: string, remove: boolean): string {
  let value = raw.trim().toLowerCase();
  if (!value) throw invalidParams("reaction, kind, or emoji is required");
  let removing = remove;
  if (value.startsWith("remove-")) {
    removing = true;
    value = value.slice("remove-".length);
  }
  const kind = Object.keys(SPELLINGS).find((k) => SPELLINGS[k]!.includes(value));
  if (!kind) throw invalidParams(`unsupported tapback reaction ${raw}; use love, like, dislike, laugh, emphasize, or question`);
  return removing ? `remove-${kind}` : kind;
}

/** Whether the simulated bridge sends an arbitrary emoji as itself (0.15, bridge on, control `emoji_tapback` not 0). */
export function emojiTapbacks(db: SimDb): boolean {
  return MODERN && db.control("bridge") === "1" && db.control("emoji_tapback") !== "0";
}

const BRIDGE_DOWN = "The bridge is not started. Run imsg launch explicitly before using bridge methods.";

/**
 * One `tapback` request. `poison` is called on a still_in_flight outcome (the 0.15 lane then stays blocked).
 * Order of checks follows imsg: 0.15 validates the message, `remove`, `part_index`, then the chat; 0.9 the chat first.
 */
export async function tapback(db: SimDb, p: Params, poison: () => void): Promise<Handled> {
  checkKeys("tapback", p, [
    "chat_id",
    "chat_guid",
    "chat_identifier",
    "message_id",
    "messageId",
    "message_guid",
    "messageGuid",
    "message",
    "reaction",
    "kind",
    "emoji",
    "remove",
    "part_index",
    "partIndex",
  ]);
  const messageGuid = () => {
    const raw = strParam(p.message_id ?? p.messageId ?? p.message_guid ?? p.messageGuid ?? p.message, "message_guid") ?? "";
    if (!raw.trim()) throw invalidParams("message_id or message_guid is required");
    return raw.trim();
  };
  let guid = "";
  if (MODERN) guid = messageGuid();
  const remove = boolParam(p.remove, "remove") ?? false;
  intParam(p.part_index ?? p.partIndex, "part_index");
  const chat = resolveChat(db, p);
  if (!MODERN) guid = messageGuid();
  // 0.15 sends `emoji` as itself; 0.9 read it as one more alias of `reaction`.
  const emoji = MODERN ? (strParam(p.emoji, "emoji") ?? "") : "";
  const reaction = emoji ? "" : normalizeTapback(strParam(p.reaction ?? p.kind ?? (MODERN ? undefined : p.emoji), "reaction") ?? "", remove);

  if (db.control("bridge") !== "1") {
    if (MODERN) throw new RpcError(-32003, "Bridge unavailable", { detail: BRIDGE_DOWN, retryable: true });
    throw internalError("imsg bridge not ready: helper not injected into Messages.app (run `imsg launch`)");
  }
  // An older helper without the emoji selector: refused in place, never folded onto a standard kind.
  if (!chat) throw internalError(`bridge: unknown chat ${strParam(p.chat_guid) || strParam(p.chat_identifier)}`);
  if (emoji && !emojiTapbacks(db)) throw internalError("running bridge does not support emoji tapbacks; restart Messages with the current imsg bridge");
  const delay = Number(db.control("tapback_delay_ms") ?? envInt("IMSG_SIM_TAPBACK_DELAY_MS") ?? 0);
  if (delay > 0) await sleep(delay);

  // The helper looks the message up in Messages' own store: a guid chat.db does not hold is not found there.
  const target = db.messageByGuid(guid);
  if (!target) throw internalError(`bridge: message not found: ${guid}`);
  const kind = reaction.replace(/^remove-/, "");
  const type: ReactionType = emoji ? "custom" : kind === "emphasize" ? "emphasis" : (kind as ReactionType);
  const write = () =>
    db.inject({
      from: isGroupChat(chat.identifier, chat.guid) ? "" : chat.identifier,
      chatId: chat.id,
      isFromMe: true,
      reaction: { to: guid, type, remove: emoji ? remove : reaction.startsWith("remove-"), ...(emoji ? { emoji } : {}) },
    });

  const fault = db.takeFault("tapback");
  if (fault) {
    if (fault.kind !== "not_started" && fault.lands) setTimeout(write, Number(db.control("receipt_delay_ms") ?? 0));
    if (!MODERN) throw internalError("Timed out waiting for response to 'send-reaction'");
    if (fault.kind === "still_in_flight") poison();
    const detail = {
      not_started: "The bridge rejected the reaction before dispatch.",
      may_have_completed: "The reaction was dispatched but its outcome could not be verified.",
      still_in_flight: "The reaction is still running in Messages.app after the response deadline.",
    }[fault.kind];
    throw deliveryError(fault.kind, "send-reaction", detail, "bridge");
  }
  write();
  const result: Record<string, Json> = emoji ? { ok: true, emoji } : { ok: true, reaction };
  return { result };
}

// imsg's chat target of bridge methods: chat_guid, chat_identifier or chat_id (`to` is not one).
function resolveChat(db: SimDb, p: Params) {
  const chatId = intParam(p.chat_id, "chat_id");
  const chatGuid = strParam(p.chat_guid, "chat_guid") ?? "";
  const identifier = strParam(p.chat_identifier, "chat_identifier") ?? "";
  if (chatId === undefined && !chatGuid && !identifier) throw invalidParams("chat_guid, chat_identifier, or chat_id is required");
  if (chatId !== undefined) {
    const chat = db.chatById(chatId);
    if (!chat) throw invalidParams(`unknown chat_id ${chatId}`);
    return chat;
  }
  // A guid or identifier goes to the helper as given; one it does not know fails there (after the bridge check).
  return (chatGuid && db.chatByGuid(chatGuid)) || (identifier && db.chatByIdentifier(identifier)) || undefined;
}
