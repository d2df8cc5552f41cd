// RPC Message payloads built from raw chat.db rows: attachments, net tapbacks, reply context
// (docs/IMSG-PROTOCOL.md "Payloads"). Bun-only.
import type { Database } from "bun:sqlite";
import { statSync } from "node:fs";
import {
  APPLE_EPOCH_MS,
  type AttachmentPayload,
  type ChatInfo,
  decodeReaction,
  expandTilde,
  isGroupChat,
  isoFromMs,
  type MessagePayload,
  type RawMessage,
  type ReactionPayload,
  stripGuidPrefix,
} from "./db-model.ts";

export function attachmentRows(sql: Database, messageId: number) {
  return sql
    .query<{ filename: string; transfer_name: string; uti: string; mime_type: string; total_bytes: number; is_sticker: number }, [number]>(
      `SELECT IFNULL(a.filename, '') AS filename, IFNULL(a.transfer_name, '') AS transfer_name, IFNULL(a.uti, '') AS uti,
         IFNULL(a.mime_type, '') AS mime_type, IFNULL(a.total_bytes, 0) AS total_bytes, IFNULL(a.is_sticker, 0) AS is_sticker
       FROM message_attachment_join j JOIN attachment a ON a.ROWID = j.attachment_id WHERE j.message_id = ? ORDER BY a.ROWID`,
    )
    .all(messageId);
}

function attachments(sql: Database, messageId: number): AttachmentPayload[] {
  return attachmentRows(sql, messageId).map((a) => {
    const original = a.filename ? expandTilde(a.filename) : "";
    let missing = true;
    if (original) {
      try {
        missing = statSync(original).isDirectory();
      } catch {
        missing = true;
      }
    }
    return {
      filename: a.filename,
      transfer_name: a.transfer_name,
      uti: a.uti,
      mime_type: a.mime_type,
      total_bytes: a.total_bytes,
      is_sticker: a.is_sticker === 1,
      original_path: original,
      missing,
    };
  });
}

// Net current tapbacks on a message: removals cancel earlier adds of the same type by the same sender.
function reactions(sql: Database, guid: string): ReactionPayload[] {
  if (!guid) return [];
  const rows = sql
    .query<{ id: number; amt: number; text: string; handle: string; is_from_me: number; date_ms: number }, [string, string]>(
      `SELECT m.ROWID AS id, m.associated_message_type AS amt, IFNULL(m.text, '') AS text, IFNULL(h.id, '') AS handle,
         IFNULL(m.is_from_me, 0) AS is_from_me, IFNULL(m.date, 0) / 1000000 AS date_ms
       FROM message m LEFT JOIN handle h ON h.ROWID = m.handle_id
       WHERE m.associated_message_type BETWEEN 2000 AND 3006 AND (m.associated_message_guid = ? OR m.associated_message_guid LIKE ?)
       ORDER BY m.date, m.ROWID`,
    )
    .all(guid, `%/${guid}`);
  const out: ReactionPayload[] = [];
  for (const r of rows) {
    const d = decodeReaction(r.amt, r.text);
    if (!d.type) continue;
    const same = (x: ReactionPayload) => x.type === d.type && x.sender === r.handle && x.is_from_me === (r.is_from_me === 1);
    if (!d.add) {
      for (let i = out.length - 1; i >= 0; i--) if (same(out[i]!)) out.splice(i, 1);
      continue;
    }
    out.push({
      id: r.id,
      type: d.type,
      emoji: d.emoji ?? "",
      sender: r.handle,
      is_from_me: r.is_from_me === 1,
      created_at: isoFromMs(r.date_ms + APPLE_EPOCH_MS),
    });
  }
  return out;
}

/** The RPC Message object of one raw row; `info` looks chat fields up (through the per-process cache). */
export function messagePayload(
  sql: Database,
  r: RawMessage,
  o: { attachments: boolean; reactions: boolean; senderName?: string },
  info: ChatInfo | undefined,
): MessagePayload {
  const identifier = info?.identifier ?? "";
  const chatGuid = info?.guid ?? "";
  const isReaction = r.amt >= 2000 && r.amt <= 3006;
  const p: MessagePayload = {
    id: r.id,
    chat_id: r.chat_id,
    guid: r.guid,
    sender: r.handle || r.dest,
    is_from_me: r.is_from_me === 1,
    text: r.text,
    created_at: isoFromMs(r.date_ms + APPLE_EPOCH_MS),
    attachments: o.attachments ? attachments(sql, r.id) : [],
    reactions: o.reactions ? reactions(sql, r.guid) : [],
    chat_identifier: identifier,
    chat_guid: chatGuid,
    chat_name: info?.name ?? "",
    participants: info?.participants ?? [],
    is_group: isGroupChat(identifier, chatGuid),
  };
  if (r.dest) p.destination_caller_id = r.dest;
  if (o.senderName) p.sender_name = o.senderName;
  if (isReaction) {
    const d = decodeReaction(r.amt, r.text);
    p.is_reaction = true;
    if (d.type) {
      p.reaction_type = d.type;
      p.reaction_emoji = d.emoji!;
    }
    p.is_reaction_add = d.add;
    if (r.amg) p.reacted_to_guid = stripGuidPrefix(r.amg);
    return p;
  }
  const replyTo = r.amg ? stripGuidPrefix(r.amg) : "";
  if (replyTo) p.reply_to_guid = replyTo;
  if (r.tog) p.thread_originator_guid = r.tog;
  const parentGuid = replyTo || r.tog;
  if (parentGuid) {
    const parent = sql
      .query<{ text: string; handle: string }, [string]>(
        "SELECT IFNULL(m.text, '') AS text, IFNULL(h.id, '') AS handle FROM message m LEFT JOIN handle h ON h.ROWID = m.handle_id WHERE m.guid = ?",
      )
      .get(parentGuid);
    if (parent?.text) p.reply_to_text = parent.text;
    if (parent?.handle) p.reply_to_sender = parent.handle;
  }
  return p;
}
