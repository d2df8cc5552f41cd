// watch.subscribe / watch.unsubscribe: change events (debounced) plus a fallback poll drive each
// subscription's polls (docs/IMSG-PROTOCOL.md "Watch"). 0.15 adds buffer_limit and the terminal watch.overflow,
// and retries rows not yet joined to a chat before dropping them.
import { type FSWatcher, watch } from "node:fs";
import { basename, dirname } from "node:path";
import type { SimDb } from "../sim-db.ts";
import { MODERN, POLL_MS, STALL_AFTER, UNJOINED_RETRIES, UNJOINED_RETRY_MS } from "./env.ts";
import { chatter, emit, trace } from "./output.ts";
import { boolParam, checkKeys, debounceParam, type Handled, intParam, invalidParams, isoParam, type Json, type Params, strArrayParam } from "./rpc.ts";

const BATCH_LIMIT = 100;
const WATCH_KEYS = [
  "chat_id",
  "since_rowid",
  "participants",
  "start",
  "end",
  "attachments",
  "convert_attachments",
  "include_reactions",
  "debounce_ms",
  "debounceMs",
  "buffer_limit",
  "bufferLimit",
];
let notified = 0;

interface Subscription {
  id: number;
  chatId?: number;
  cursor: number;
  participants: string[];
  startMs?: number;
  endMs?: number;
  attachments: boolean;
  includeReactions: boolean;
  debounceMs: number;
  /** 0.15: rows one wake-up may deliver before the stream ends with watch.overflow. */
  bufferLimit: number;
  /** 0.15: polls spent waiting for the unjoined row at cursor+1 to get its chat. */
  unjoinedTries: number;
  timer?: ReturnType<typeof setTimeout>;
  dead: boolean;
}

/** All subscriptions of the process: change events (debounced) and a fallback poll drive their polls. */
export class WatchHub {
  #subs = new Map<number, Subscription>();
  #nextId = 1;
  #fsWatcher?: FSWatcher;
  #interval?: ReturnType<typeof setInterval>;

  constructor(private readonly db: SimDb) {}

  subscribe(p: Params): Handled {
    checkKeys("watch.subscribe", p, WATCH_KEYS);
    const chatId = intParam(p.chat_id, "chat_id");
    if (MODERN && chatId !== undefined && chatId <= 0) throw invalidParams("chat_id must be a positive integer");
    const since = intParam(p.since_rowid, "since_rowid");
    const participants = strArrayParam(p.participants, "participants");
    const debounceMs = debounceParam(p);
    const startMs = isoParam(p.start, "start");
    const endMs = isoParam(p.end, "end");
    const bufferLimit = intParam(p.buffer_limit ?? p.bufferLimit, "buffer_limit") ?? 256;
    if (MODERN && (bufferLimit < 1 || bufferLimit > 4096)) throw invalidParams("buffer_limit must be an integer between 1 and 4096");
    const sub: Subscription = {
      id: this.#nextId++,
      chatId,
      // Omitted/0 → current max (new rows only); negative → replay everything; else exclusive.
      cursor: since === undefined || since === 0 ? this.db.maxRowid() : Math.max(since, 0),
      participants: participants.map((x) => x.toLowerCase()),
      startMs,
      endMs,
      attachments: boolParam(p.attachments, "attachments") ?? false,
      includeReactions: boolParam(p.include_reactions, "include_reactions") ?? false,
      debounceMs,
      bufferLimit,
      unjoinedTries: 0,
      dead: false,
    };
    this.#subs.set(sub.id, sub);
    this.#start();
    const result: Record<string, Json> = MODERN ? { subscription: sub.id, buffer_limit: bufferLimit } : { subscription: sub.id };
    return { result, after: () => this.#poll(sub) };
  }

  unsubscribe(id: number): void {
    const sub = this.#subs.get(id);
    if (!sub) return;
    clearTimeout(sub.timer);
    sub.dead = true;
    this.#subs.delete(id);
  }

  close(): void {
    for (const s of this.#subs.values()) this.unsubscribe(s.id);
    this.#fsWatcher?.close();
    clearInterval(this.#interval);
  }

  #start(): void {
    if (this.#interval) return;
    this.#interval = setInterval(() => {
      for (const s of this.#subs.values()) this.#poll(s);
    }, POLL_MS);
    const base = basename(this.db.path);
    try {
      // The directory, not the file: writers touch chat.db-wal / -shm (kqueue watches all three in imsg).
      this.#fsWatcher = watch(dirname(this.db.path), (_event, file) => {
        if (file && !String(file).startsWith(base)) return;
        for (const s of this.#subs.values()) {
          if (s.dead || s.timer) continue;
          s.timer = setTimeout(() => {
            s.timer = undefined;
            this.#poll(s);
          }, s.debounceMs);
        }
      });
    } catch (err) {
      chatter(`fs.watch unavailable (${err instanceof Error ? err.message : err}); fallback poll only`);
    }
  }

  #poll(s: Subscription): void {
    if (s.dead) return;
    if (STALL_AFTER !== undefined && notified >= STALL_AFTER) return;
    try {
      if (MODERN) return this.#pollModern(s);
      const { messages, lastRowid } = this.db.messagesAfter(s.cursor, {
        chatId: s.chatId,
        limit: BATCH_LIMIT,
        includeReactions: s.includeReactions,
        attachments: s.attachments,
      });
      s.cursor = lastRowid;
      for (const m of messages) this.#deliver(s, m);
    } catch (err) {
      // The subscription dies but stays in the table, so unsubscribe still answers ok.
      s.dead = true;
      clearTimeout(s.timer);
      emit({ jsonrpc: "2.0", method: "error", params: { subscription: s.id, error: { message: err instanceof Error ? err.message : String(err) } } });
    }
  }

  // Filters apply after the fetch; the cursor has already moved past rows they drop.
  #deliver(s: Subscription, m: ReturnType<SimDb["payload"]>): boolean {
    if (s.participants.length && !s.participants.includes(m.sender.toLowerCase())) return false;
    const t = Date.parse(m.created_at);
    if (s.startMs !== undefined && t < s.startMs) return false;
    if (s.endMs !== undefined && t >= s.endMs) return false;
    emit({ jsonrpc: "2.0", method: "message", params: { subscription: s.id, message: m } });
    notified++;
    trace({ k: "n", id: m.id, text: m.text });
    return true;
  }

  /**
   * 0.15: one wake-up drains the backlog up to buffer_limit rows; more than that ends the stream with one terminal
   * watch.overflow naming the last delivered row. An unjoined row holds the cursor for a few quick retries, then
   * is dropped (fail-closed), never emitted with chat_id 0.
   */
  #pollModern(s: Subscription): void {
    let delivered = 0;
    for (;;) {
      const { messages, lastRowid } = this.db.messagesAfter(s.cursor, {
        chatId: s.chatId,
        limit: BATCH_LIMIT,
        includeReactions: s.includeReactions,
        attachments: s.attachments,
      });
      if (lastRowid === s.cursor) return;
      for (const m of messages) {
        if (m.chat_id === 0) {
          if (s.unjoinedTries++ < UNJOINED_RETRIES) {
            clearTimeout(s.timer);
            s.timer = setTimeout(() => ((s.timer = undefined), this.#poll(s)), UNJOINED_RETRY_MS);
            return;
          }
          chatter(`dropping row ${m.id}: not joined to a chat`);
          s.unjoinedTries = 0;
          s.cursor = m.id;
          continue;
        }
        if (delivered >= s.bufferLimit) {
          s.dead = true;
          clearTimeout(s.timer);
          this.#subs.delete(s.id);
          emit({
            jsonrpc: "2.0",
            method: "watch.overflow",
            params: { subscription: s.id, resume_after_rowid: s.cursor, reason: "buffer_limit_exceeded", terminal: true },
          });
          return;
        }
        s.unjoinedTries = 0;
        s.cursor = m.id;
        if (this.#deliver(s, m)) delivered++;
      }
      s.cursor = Math.max(s.cursor, lastRowid);
    }
  }
}
