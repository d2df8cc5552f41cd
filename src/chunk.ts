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
