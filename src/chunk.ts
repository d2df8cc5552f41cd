// Splitting a reply into iMessage-sized chunks. Pure. Joining the chunks loses only whitespace at the
// break points, and every chunk fits the limit (counted in UTF-16 code units, as imsg and OpenClaw do).
import type { ChunkMode } from "./config.ts";

/** Splits text into chunks of at most `limit` UTF-16 units; empty chunks are dropped. */
export function chunkText(text: string, limit: number, mode: ChunkMode = "length"): string[] {
  return mode === "newline" ? chunkByParagraph(text, limit) : chunkByLength(text, limit);
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

// Last newline and last other whitespace that sit outside parentheses, so "(see note 3)" stays together.
function breakpoints(window: string): { newline: number; space: number } {
  let newline = -1;
  let space = -1;
  let depth = 0;
  for (let i = 0; i < window.length; i++) {
    const c = window[i]!;
    if (c === "(") depth++;
    else if (c === ")" && depth > 0) depth--;
    else if (depth === 0 && c === "\n") newline = i;
    else if (depth === 0 && /\s/.test(c)) space = i;
  }
  return { newline, space };
}

function breakIndex(rest: string, limit: number): number {
  // One extra character: whitespace right after the limit lets a word that ends exactly there stay.
  const window = rest.slice(0, limit + 1);
  const { newline, space } = breakpoints(window);
  if (newline > 0) return newline;
  if (space > 0) return space;
  // An unclosed "(" hides every break point; a word boundary anywhere still beats cutting a word.
  const anyNewline = window.lastIndexOf("\n");
  if (anyNewline > 0) return anyNewline;
  const anySpace = window.search(/\s\S*$/);
  if (anySpace > 0) return anySpace;
  // Hard break, moved back one unit so an emoji's surrogate pair stays whole (a pair alone may exceed limit 1).
  if (isHighSurrogate(rest.charCodeAt(limit - 1))) return limit > 1 ? limit - 1 : limit + 1;
  return limit;
}

function chunkByLength(text: string, limit: number): string[] {
  const max = Math.max(1, Math.floor(limit));
  const chunks: string[] = [];
  let rest = text;
  while (rest.length > max) {
    const at = breakIndex(rest, max);
    const chunk = rest.slice(0, at).trimEnd();
    if (chunk) chunks.push(chunk);
    // The whitespace we broke at belongs to neither chunk.
    rest = rest.slice(/\s/.test(rest[at] ?? "") ? at + 1 : at).trimStart();
  }
  if (rest.trim()) chunks.push(rest);
  return chunks;
}

const FENCE = /^\s{0,3}(```|~~~)/;

// Paragraphs split at blank-line runs, except inside ``` / ~~~ fences so a code block stays one piece.
function paragraphs(text: string): string[] {
  const out: string[] = [];
  let current: string[] = [];
  let fence: string | undefined;
  const flush = () => {
    const p = current.join("\n").trimEnd();
    if (p.trim()) out.push(p);
    current = [];
  };
  for (const line of text.split("\n")) {
    const marker = FENCE.exec(line)?.[1];
    if (marker && (fence === undefined || marker === fence)) fence = fence === undefined ? marker : undefined;
    if (fence === undefined && !marker && !line.trim()) flush();
    else current.push(line);
  }
  flush();
  return out;
}

function chunkByParagraph(text: string, limit: number): string[] {
  const normalized = text.replace(/\r\n?/g, "\n");
  return paragraphs(normalized).flatMap((p) => chunkByLength(p, limit));
}

/** Ends a reply that was cut for size (own line, so it is never mistaken for the reply's last words). */
export const TRUNCATION_MARKER = "[… reply truncated]";

/** Where a reply was cut: its length before, and how much of it was kept. */
export interface Truncation {
  chars: number;
  keptChars: number;
  parts: number;
}

// The cut point at most `max` units in: the last whitespace in the final 200 units, never inside a surrogate pair.
function cutIndex(text: string, max: number): number {
  const ws = text.slice(Math.max(0, max - 200), max + 1).search(/\s\S*$/);
  if (ws > 0) return Math.max(0, max - 200) + ws;
  return isHighSurrogate(text.charCodeAt(max - 1)) ? max - 1 : max;
}

/**
 * chunkText under two caps: at most `maxChars` of the text and at most `maxParts` chunks. A cut reply ends with
 * TRUNCATION_MARKER (inside the last chunk when it fits the limit, else as the last chunk). Pure.
 */
export function chunkCapped(
  text: string,
  limit: number,
  mode: ChunkMode,
  caps: { maxChars: number; maxParts: number },
): { chunks: string[]; truncated?: Truncation } {
  const maxParts = Math.max(1, Math.floor(caps.maxParts));
  const overChars = text.length > caps.maxChars;
  // Cut before chunking: a megabyte reply is never split into thousands of chunks only to drop them.
  const kept = overChars ? text.slice(0, cutIndex(text, Math.max(1, caps.maxChars))).trimEnd() : text;
  let chunks = chunkText(kept, limit, mode);
  if (!overChars && chunks.length <= maxParts) return { chunks };
  chunks = chunks.slice(0, maxParts);
  const last = chunks.pop() ?? "";
  const room = limit - TRUNCATION_MARKER.length - 1;
  if (room >= 1) {
    const head = last.length > room ? (chunkText(last, room, "length")[0] ?? "") : last;
    chunks.push(head ? `${head}\n${TRUNCATION_MARKER}` : TRUNCATION_MARKER);
  } else {
    chunks.push(TRUNCATION_MARKER.slice(0, Math.max(1, limit)));
  }
  const keptChars = chunks.reduce((n, c) => n + c.length, 0);
  return { chunks, truncated: { chars: text.length, keptChars, parts: chunks.length } };
}
