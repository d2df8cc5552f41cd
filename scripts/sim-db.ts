// A SQLite file shaped like Messages' chat.db, plus the queries `imsg rpc` runs against it
// (docs/IMSG-PROTOCOL.md "Reads" and "Watch"). Shared by the simulator process and by tests that inject
// inbound rows, inspect what was "sent" and steer the simulator through its control tables. Bun-only.
import { randomUUID } from "node:crypto";
import { chmodSync, existsSync, statSync, writeFileSync } from "node:fs";
import { basename, extname, resolve } from "node:path";
import {
  APPLE_EPOCH_MS,
  appleNanos,
  type ChatInfo,
  type ChatPayload,
  type ChatRow,
  decodeAttributedBody,
  decodeReaction,
  DEFAULT_SELF,
  encodeAttributedBody,
  type HistoryQuery,
  type Injected,
  type InjectOptions,
  isGroupChat,
  isoFromMs,
  isTapbackType,
  MESSAGE_SELECT,
  type MessagePayload,
  type MessageRow,
  MIME_BY_EXT,
  NOT_TAPBACK,
  type RawMessage,
  REACTIONS,
  type SentRow,
  stripGuidPrefix,
  type TapbackRow,
  URL_BALLOON,
} from "./sim/db-model.ts";
import { SimControl } from "./sim/db-control.ts";
import { attachmentRows, messagePayload } from "./sim/db-payload.ts";

export * from "./sim/db-model.ts";
export { unreadableMarker } from "./sim/db-control.ts";

/** Absolute path of the simulator script. */
export const SIM_SCRIPT = resolve(import.meta.dir, "imsg-sim.ts");

const shQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Writes an executable `imsg` stand-in at `path`: a sh wrapper that runs the simulator with `env` as defaults
 * (the caller's environment overrides them), usable as `cliPath` exactly like the real binary.
 */
export function writeSimWrapper(path: string, env: Record<string, string>, opts: { version?: string } = {}): void {
  const exports = Object.entries(env).map(([k, v]) => `[ -n "\${${k}+x}" ] || ${k}=${shQuote(v)}; export ${k}`);
  // A version given here is a flag, which wins over IMSG_SIM_VERSION: a test pinned to one imsg keeps it when the
  // suite runs in the other mode.
  const pin = opts.version ? ` --imsg-version ${shQuote(opts.version)}` : "";
  writeFileSync(path, ["#!/bin/sh", ...exports, `exec ${shQuote(process.execPath)} ${shQuote(SIM_SCRIPT)}${pin} "$@"`, ""].join("\n"));
  chmodSync(path, 0o755);
}

/** Marker file next to the database: while it exists the simulator treats the database as unreadable (no FDA). */
export class SimDb extends SimControl {
  readonly selfHandle: string;
  /** 0.15 naming rules: '' chat names fall back to the identifier; Contacts names are reported. */
  readonly modern: boolean;
  // imsg's ChatCache is per process and never invalidated; only the simulator process turns it on.
  #chatCache: Map<number, ChatInfo> | undefined;
  // URL-preview de-duplication state lives on the store, shared by all subscriptions.
  #urlSeen = new Map<string, number>();

  constructor(path: string, opts: { cacheChatInfo?: boolean; selfHandle?: string; modern?: boolean } = {}) {
    super(path);
    this.selfHandle = opts.selfHandle ?? DEFAULT_SELF;
    this.modern = opts.modern ?? false;
    this.#chatCache = opts.cacheChatInfo ? new Map() : undefined;
  }

  protected override onReplaced(): void {
    this.#chatCache?.clear();
  }

  /** Highest message ROWID (0 when empty): where a watch without `since_rowid` starts. */
  maxRowid(): number {
    return this.sql.query<{ m: number }, []>("SELECT IFNULL(MAX(ROWID), 0) AS m FROM message").get()?.m ?? 0;
  }

  /** Finds or creates a handle row; returns its ROWID. */
  handleId(id: string, service = "iMessage"): number {
    this.sql.query("INSERT OR IGNORE INTO handle (id, service) VALUES (?, ?)").run(id, service);
    return this.sql.query<{ r: number }, [string, string]>("SELECT ROWID AS r FROM handle WHERE id = ? AND service = ?").get(id, service)!.r;
  }

  /** A chat by ROWID, straight from the database. */
  chatById(id: number): ChatRow | undefined {
    const row = this.sql
      .query<{ id: number; guid: string | null; identifier: string | null; display_name: string | null; service: string | null }, [number]>(
        "SELECT ROWID AS id, guid, chat_identifier AS identifier, display_name, service_name AS service FROM chat WHERE ROWID = ?",
      )
      .get(id);
    if (!row) return undefined;
    return {
      id: row.id,
      guid: row.guid ?? "",
      identifier: row.identifier ?? "",
      displayName: row.display_name,
      service: row.service ?? "",
      participants: this.#participants(row.id),
    };
  }

  /** A chat by exact guid. */
  chatByGuid(guid: string): ChatRow | undefined {
    const r = this.sql.query<{ id: number }, [string]>("SELECT ROWID AS id FROM chat WHERE guid = ?").get(guid);
    return r ? this.chatById(r.id) : undefined;
  }

  /** The first chat with this chat_identifier. */
  chatByIdentifier(identifier: string): ChatRow | undefined {
    const r = this.sql.query<{ id: number }, [string]>("SELECT ROWID AS id FROM chat WHERE chat_identifier = ? ORDER BY ROWID LIMIT 1").get(identifier);
    return r ? this.chatById(r.id) : undefined;
  }

  /** Every chat, by ROWID. */
  chats(): ChatRow[] {
    return this.sql
      .query<{ id: number }, []>("SELECT ROWID AS id FROM chat ORDER BY ROWID")
      .all()
      .map((r) => this.chatById(r.id)!);
  }

  /** The direct chat `<service>;-;<handle>`, created with its handle joined when missing. */
  ensureDirectChat(handle: string, service: "iMessage" | "SMS" = "iMessage", opts: { anyGuid?: boolean; displayName?: string } = {}): ChatRow {
    const guid = `${service};-;${handle}`;
    const existing = this.chatByGuid(guid) ?? this.chatByGuid(`any;-;${handle}`);
    if (existing) return existing;
    const id = Number(
      this.sql
        .query("INSERT INTO chat (guid, style, chat_identifier, service_name, display_name) VALUES (?, 45, ?, ?, ?)")
        .run(opts.anyGuid ? `any;-;${handle}` : guid, handle, service, opts.displayName ?? null).lastInsertRowid,
    );
    this.sql.query("INSERT OR IGNORE INTO chat_handle_join (chat_id, handle_id) VALUES (?, ?)").run(id, this.handleId(handle, service));
    return this.chatById(id)!;
  }

  /** The group chat `iMessage;+;<identifier>`, created or extended with the given participants. */
  ensureGroupChat(opts: { identifier?: string; name?: string; participants?: string[] }): ChatRow {
    const identifier = opts.identifier ?? `chat${Date.now()}${String(Math.floor(Math.random() * 1e6)).padStart(6, "0")}`;
    const guid = `iMessage;+;${identifier}`;
    let id = this.chatByGuid(guid)?.id;
    if (id === undefined) {
      id = Number(
        this.sql
          .query("INSERT INTO chat (guid, style, chat_identifier, service_name, display_name) VALUES (?, 43, ?, 'iMessage', ?)")
          .run(guid, identifier, opts.name ?? null).lastInsertRowid,
      );
    } else if (opts.name !== undefined) {
      this.sql.query("UPDATE chat SET display_name = ? WHERE ROWID = ?").run(opts.name, id);
    }
    for (const p of opts.participants ?? []) {
      this.sql.query("INSERT OR IGNORE INTO chat_handle_join (chat_id, handle_id) VALUES (?, ?)").run(id, this.handleId(p));
    }
    return this.chatById(id)!;
  }

  /** Writes one message row (DM, group, or unjoined) as Messages would; see InjectOptions. */
  inject(o: InjectOptions): Injected {
    const write = this.sql.transaction((): Injected => {
      const service = o.service ?? "iMessage";
      let chat: ChatRow | undefined;
      if (o.chatId !== undefined) {
        if (o.chatId !== 0) {
          chat = this.chatById(o.chatId);
          if (!chat) throw new Error(`unknown chat_id ${o.chatId}`);
        }
      } else if (o.group) {
        chat = this.ensureGroupChat({
          ...o.group,
          name: o.group.name ?? o.displayName,
          participants: [...(o.group.participants ?? []), ...(o.isFromMe ? [] : [o.from])],
        });
      } else {
        chat = this.ensureDirectChat(o.from, service, { anyGuid: o.anyGuid, displayName: o.displayName });
      }
      const group = chat ? isGroupChat(chat.identifier, chat.guid) : false;
      // Outgoing group rows carry no handle (sender falls back to destination_caller_id).
      const handleId = o.from && !(o.isFromMe && group) ? this.handleId(o.from, service) : 0;
      // Senders join the chat's participants, except our own handle (echo and self-chat twins).
      if (chat && handleId && !o.isFromMe && o.from !== this.selfHandle) {
        this.sql.query("INSERT OR IGNORE INTO chat_handle_join (chat_id, handle_id) VALUES (?, ?)").run(chat.id, handleId);
      }
      const date = appleNanos(o.createdAt ?? new Date());
      const guid = o.guid ?? randomUUID().toUpperCase();
      const attachments = o.attachments ?? [];
      let text = o.text ?? "\ufffc".repeat(attachments.length);
      let amt = 0;
      let amg: string | null = o.replyToGuid ? `p:0/${o.replyToGuid}` : null;
      if (o.reaction) {
        const idx = REACTIONS.findIndex((r) => r.type === o.reaction!.type);
        amt = (o.reaction.remove ? 3000 : 2000) + idx;
        amg = `p:0/${o.reaction.to}`;
        if (o.text === undefined) text = this.#reactionText(o.reaction, idx);
      }
      const rowid = Number(
        this.sql
          .query(
            `INSERT INTO message (guid, text, attributedBody, handle_id, service, date, is_from_me, cache_has_attachments, destination_caller_id,
               associated_message_type, associated_message_guid, thread_originator_guid, balloon_bundle_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            guid,
            o.attributedBodyOnly ? null : text,
            o.attributedBodyOnly ? encodeAttributedBody(text) : null,
            handleId,
            service,
            date,
            o.isFromMe ? 1 : 0,
            attachments.length ? 1 : 0,
            o.destinationCallerId ?? this.selfHandle,
            amt,
            amg,
            o.threadOriginatorGuid ?? null,
            o.balloonBundleId ?? null,
          ).lastInsertRowid,
      );
      if (chat) {
        this.sql.query("INSERT INTO chat_message_join (chat_id, message_id, message_date) VALUES (?, ?, ?)").run(chat.id, rowid, date);
      }
      for (const a of attachments) {
        const [mime, uti] = MIME_BY_EXT[extname(a.path).toLowerCase()] ?? ["", ""];
        const size = a.totalBytes ?? (existsSync(a.path) ? statSync(a.path).size : 0);
        const attId = this.sql
          .query(
            `INSERT INTO attachment (guid, created_date, filename, uti, mime_type, transfer_name, total_bytes, is_sticker)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            randomUUID().toUpperCase(),
            date / 1_000_000_000n,
            a.path,
            a.uti ?? uti,
            a.mimeType ?? mime,
            a.transferName ?? basename(a.path),
            size,
            a.isSticker ? 1 : 0,
          )
          .lastInsertRowid;
        this.sql.query("INSERT INTO message_attachment_join (message_id, attachment_id) VALUES (?, ?)").run(rowid, attId);
      }
      return { rowid, guid, chatId: chat?.id ?? 0 };
    });
    const injected = write.immediate();
    this.touch();
    return injected;
  }

  /** Outgoing text/file rows (`is_from_me=1`, tapbacks excluded: see reactionsOn) after `sinceRowid`, oldest first. */
  sent(opts: { sinceRowid?: number } = {}): SentRow[] {
    return this.messages()
      .filter((m) => m.isFromMe && m.rowid > (opts.sinceRowid ?? 0) && !isTapbackType(m.associatedMessageType))
      .map((m) => {
        const chat = m.chatId ? this.chatById(m.chatId) : undefined;
        return {
          rowid: m.rowid,
          guid: m.guid,
          text: m.text,
          chatId: m.chatId,
          chatIdentifier: chat?.identifier ?? "",
          chatGuid: chat?.guid ?? "",
          recipient: m.handle || (chat?.identifier ?? ""),
          ...(m.files[0] !== undefined ? { file: m.files[0] } : {}),
          createdAt: m.createdAt,
        };
      });
  }

  /** The message row with this guid, if any. */
  messageByGuid(guid: string): MessageRow | undefined {
    return this.messages().find((m) => m.guid === guid);
  }

  /** Every tapback row (anyone's, adds and removals) on the message `guid`, oldest first. */
  reactionsOn(guid: string): TapbackRow[] {
    return this.messages()
      .filter((m) => isTapbackType(m.associatedMessageType) && stripGuidPrefix(m.associatedMessageGuid) === guid)
      .map((m) => {
        const d = decodeReaction(m.associatedMessageType, m.text);
        return {
          rowid: m.rowid,
          guid: m.guid,
          ...(d.type ? { type: d.type } : {}),
          ...(d.emoji ? { emoji: d.emoji } : {}),
          isFromMe: m.isFromMe,
          add: d.add,
          sender: m.handle,
        };
      });
  }

  /** Every message row, by ROWID. */
  messages(): MessageRow[] {
    return this.sql
      .query<RawMessage, []>(`${MESSAGE_SELECT} ORDER BY m.ROWID`)
      .all()
      .map((r) => ({
        rowid: r.id,
        guid: r.guid,
        text: r.text || decodeAttributedBody(r.body),
        handle: r.handle,
        isFromMe: r.is_from_me === 1,
        chatId: r.chat_id,
        createdAt: new Date(r.date_ms + APPLE_EPOCH_MS),
        destinationCallerId: r.dest,
        associatedMessageType: r.amt,
        associatedMessageGuid: r.amg,
        threadOriginatorGuid: r.tog,
        files: attachmentRows(this.sql, r.id).map((a) => a.filename),
      }));
  }

  /** Chat fields through the (optional, never invalidated) per-process cache. */
  chatInfo(chatId: number): ChatInfo | undefined {
    const cached = this.#chatCache?.get(chatId);
    if (cached) return cached;
    const row = this.chatById(chatId);
    if (!row) return undefined;
    // 0.9 shows a '' display_name as a blank name; 0.15.0+ falls back to the identifier.
    const name = this.modern ? row.displayName || row.identifier : (row.displayName ?? row.identifier);
    const info = { id: row.id, identifier: row.identifier, guid: row.guid, name, service: row.service, participants: row.participants };
    this.#chatCache?.set(chatId, info);
    return info;
  }

  /** `chats.list`: chats with at least one message, newest last message first. */
  listChats(limit: number): ChatPayload[] {
    const rows = this.sql
      .query<{ id: number; identifier: string; name: string; service: string; last_ms: number }, [number]>(
        `SELECT c.ROWID AS id, IFNULL(c.chat_identifier, '') AS identifier, IFNULL(c.display_name, IFNULL(c.chat_identifier, '')) AS name,
           IFNULL(c.service_name, '') AS service, MAX(IFNULL(m.date, 0)) / 1000000 AS last_ms
         FROM chat c JOIN chat_message_join j ON j.chat_id = c.ROWID JOIN message m ON m.ROWID = j.message_id
         GROUP BY c.ROWID ORDER BY MAX(IFNULL(m.date, 0)) DESC LIMIT ?`,
      )
      .all(limit);
    return rows.map((r) => {
      const info = this.chatInfo(r.id);
      const identifier = info?.identifier ?? r.identifier;
      const guid = info?.guid ?? "";
      return {
        id: r.id,
        identifier,
        guid,
        name: info?.name ? info.name : r.name,
        service: info?.service ?? r.service,
        last_message_at: isoFromMs(r.last_ms + APPLE_EPOCH_MS),
        participants: info?.participants ?? [],
        is_group: isGroupChat(identifier, guid),
        ...this.#contactField(identifier, guid),
      };
    });
  }

  /** `messages.history`: filters in SQL before the limit, newest first, tapbacks hidden, reactions always filled. */
  history(q: HistoryQuery): MessagePayload[] {
    const where = ["EXISTS (SELECT 1 FROM chat_message_join j WHERE j.chat_id = ? AND j.message_id = m.ROWID)", NOT_TAPBACK];
    const args: (number | string)[] = [q.chatId];
    if (q.participants?.length) {
      where.push(`LOWER(IFNULL(h.id, '')) IN (${q.participants.map(() => "LOWER(?)").join(", ")})`);
      args.push(...q.participants);
    }
    if (q.startMs !== undefined) {
      where.push("IFNULL(m.date, 0) / 1000000 >= ?");
      args.push(q.startMs - APPLE_EPOCH_MS);
    }
    if (q.endMs !== undefined) {
      where.push("IFNULL(m.date, 0) / 1000000 < ?");
      args.push(q.endMs - APPLE_EPOCH_MS);
    }
    args.push(q.limit);
    const rows = this.sql.prepare<RawMessage, (number | string)[]>(`${MESSAGE_SELECT} WHERE ${where.join(" AND ")} ORDER BY m.date DESC LIMIT ?`).all(...args);
    return rows.map((r) => this.payload(r, { attachments: q.attachments ?? false, reactions: true }));
  }

  /**
   * One watch poll: up to `limit` rows with ROWID > `after`, ascending. `lastRowid` is where the cursor moves,
   * including past URL-preview duplicates that are dropped here.
   */
  messagesAfter(
    after: number,
    o: { chatId?: number; limit: number; includeReactions: boolean; attachments: boolean },
  ): { messages: MessagePayload[]; lastRowid: number } {
    const where = ["m.ROWID > ?"];
    const args: number[] = [after];
    if (o.chatId !== undefined) {
      where.push("EXISTS (SELECT 1 FROM chat_message_join j WHERE j.chat_id = ? AND j.message_id = m.ROWID)");
      args.push(o.chatId);
    }
    if (!o.includeReactions) where.push(NOT_TAPBACK);
    args.push(o.limit);
    const rows = this.sql.query<RawMessage, number[]>(`${MESSAGE_SELECT} WHERE ${where.join(" AND ")} ORDER BY m.ROWID LIMIT ?`).all(...args);
    const messages: MessagePayload[] = [];
    for (const r of rows) {
      if (this.#isUrlDuplicate(r)) continue;
      messages.push(this.payload(r, { attachments: o.attachments, reactions: o.includeReactions }));
    }
    return { messages, lastRowid: rows.at(-1)?.id ?? after };
  }

  #isUrlDuplicate(r: RawMessage): boolean {
    if (r.balloon !== URL_BALLOON) return false;
    const key = JSON.stringify([r.chat_id, r.is_from_me, r.handle || r.dest, r.text]);
    const seen = this.#urlSeen.get(key);
    this.#urlSeen.set(key, r.date_ms);
    return seen !== undefined && Math.abs(r.date_ms - seen) <= 90_000;
  }

  #reactionText(r: NonNullable<InjectOptions["reaction"]>, idx: number): string {
    const target = this.sql.query<{ text: string | null }, [string]>("SELECT text FROM message WHERE guid = ?").get(r.to)?.text ?? "";
    const spec = REACTIONS[idx]!;
    const quoted = `“${target}”`;
    if (spec.type === "custom") return r.remove ? `Removed a ${r.emoji ?? ""} from ${quoted}` : `Reacted ${r.emoji ?? ""} to ${quoted}`;
    return r.remove ? `Removed ${spec.removed} from ${quoted}` : `${spec.verb} ${quoted}`;
  }

  #participants(chatId: number): string[] {
    const ids = this.sql
      .query<{ id: string }, [number]>(
        "SELECT DISTINCT h.id AS id FROM chat_handle_join j JOIN handle h ON h.ROWID = j.handle_id WHERE j.chat_id = ? AND IFNULL(h.id, '') <> ''",
      )
      .all(chatId)
      .map((r) => r.id);
    return [...new Set(ids)].sort();
  }

  /** The RPC Message object of a raw row, with chat fields from the cache and (0.15) the sender's Contacts name. */
  payload(r: RawMessage, o: { attachments: boolean; reactions: boolean }): MessagePayload {
    const info = r.chat_id ? this.chatInfo(r.chat_id) : undefined;
    const senderName = this.modern && r.handle ? this.contactName(r.handle) : undefined;
    const p = messagePayload(this.sql, r, { ...o, senderName }, info);
    if (!p.text && r.body) p.text = decodeAttributedBody(r.body);
    return p;
  }

  #contactField(identifier: string, guid: string): { contact_name?: string } {
    if (!this.modern || isGroupChat(identifier, guid)) return {};
    const name = this.contactName(identifier);
    return name ? { contact_name: name } : {};
  }

  /** Rows after `after` that a watch or messages.after with these filters would still have to read. */
  countAfter(after: number, o: { chatId?: number; includeReactions: boolean }): number {
    const where = ["m.ROWID > ?"];
    const args: number[] = [after];
    if (o.chatId !== undefined) {
      where.push("EXISTS (SELECT 1 FROM chat_message_join j WHERE j.chat_id = ? AND j.message_id = m.ROWID)");
      args.push(o.chatId);
    }
    if (!o.includeReactions) where.push(NOT_TAPBACK);
    return this.sql.query<{ n: number }, number[]>(`SELECT COUNT(*) AS n FROM message m WHERE ${where.join(" AND ")}`).get(...args)?.n ?? 0;
  }
}
