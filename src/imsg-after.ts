// imsg 0.14+ `messages.after`: rows after a ROWID cursor in exact order (undefined on 0.9, which lacks it).
import { type ImsgMessage, isMethodNotFound, objectResult, parseMessage } from "./imsg.ts";
import type { RpcClient } from "./rpc.ts";

/** One page of `messages.after`: rows after the cursor in exact ROWID order. */
export interface MessagesAfterPage {
  messages: ImsgMessage[];
  /** The cursor for the next page (imsg's next_rowid; the request's cursor when nothing came). */
  nextRowid: number;
  hasMore: boolean;
  /** Entries dropped because they did not parse (the caller logs them). */
  malformed: number;
}

/** `messages.after` options (sent snake_case); `limit` is 1–500. */
export interface MessagesAfterParams {
  sinceRowid: number;
  chatId?: number;
  limit: number;
  attachments?: boolean;
  includeReactions?: boolean;
}

/** `messages.after` (0.14+): rows with ROWID > sinceRowid; undefined on an imsg without it (0.9). */
export async function messagesAfter(client: RpcClient, p: MessagesAfterParams, timeoutMs?: number): Promise<MessagesAfterPage | undefined> {
  const params: Record<string, unknown> = { since_rowid: p.sinceRowid, limit: p.limit };
  if (p.chatId !== undefined) params.chat_id = p.chatId;
  if (p.attachments !== undefined) params.attachments = p.attachments;
  if (p.includeReactions !== undefined) params.include_reactions = p.includeReactions;
  let raw: unknown;
  try {
    raw = await client.request("messages.after", params, { timeoutMs });
  } catch (e) {
    if (isMethodNotFound(e)) return undefined;
    throw e;
  }
  const r = objectResult("messages.after", raw);
  if (!Array.isArray(r.messages)) throw new Error("imsg messages.after: result has no messages array");
  const messages: ImsgMessage[] = [];
  let malformed = 0;
  for (const m of r.messages) {
    const parsed = parseMessage(m);
    if ("message" in parsed) messages.push(parsed.message);
    else malformed++;
  }
  const last = messages.reduce((n, m) => Math.max(n, m.id), p.sinceRowid);
  const nextRowid = typeof r.next_rowid === "number" && Number.isInteger(r.next_rowid) ? r.next_rowid : last;
  return { messages, nextRowid, hasMore: r.has_more === true, malformed };
}
