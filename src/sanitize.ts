// Outbound text hygiene and the reflection guard. Pure.
// Models leak reasoning tags, channel separators and turn markers; iMessage shows plain text, so markdown
// emphasis is unwrapped. Code and URLs are never touched: they are swapped for placeholders first.

const NS = String.raw`(?:[\w-]+:)?`; // namespaced variants such as <mm:think>
const REASONING = "think|thinking|thought";
const REASONING_BLOCK = new RegExp(String.raw`<\s*${NS}(${REASONING})\s*>[\s\S]*?<\s*/\s*${NS}\1\s*>`, "gi");
// An unclosed opening tag hides everything after it; an orphan closing tag (some models omit the
// opening one) hides everything before it.
const REASONING_UNCLOSED = new RegExp(String.raw`<\s*${NS}(?:${REASONING})\s*>[\s\S]*$`, "i");
const REASONING_ORPHAN_CLOSE = new RegExp(String.raw`^[\s\S]*<\s*/\s*${NS}(?:${REASONING})\s*>`, "i");
const MEMORIES_BLOCK = new RegExp(String.raw`<\s*${NS}relevant_memories\s*>[\s\S]*?(?:<\s*/\s*${NS}relevant_memories\s*>|$)`, "gi");
const MEMORIES_TAG = new RegExp(String.raw`<\s*/?\s*${NS}relevant_memories\s*>`, "gi");
const FINAL_TAG = new RegExp(String.raw`<\s*/?\s*${NS}final\s*>`, "gi");
const SEPARATOR = /(?:\+#){2,}\+?/g;
const ASSISTANT_TO_FINAL = /\bassistant\s+to=final\b/gi;
const TRAILING_TURN_MARKER = /(?:^|\n)[ \t]*(?:user|system|assistant)[ \t]*:\s*$/i;

const FENCED = /(```|~~~)[\s\S]*?(?:\1|$)/g;
const INLINE_CODE = /`[^`\n]+`/g;
const URL = /\bhttps?:\/\/[^\s<>]*[^\s<>*.,;:!?)'"\]]/g;
const PLACEHOLDER = /\uE000(\d+)\uE001/g;

/** Swaps code (and optionally URLs) for placeholders so the rewriting rules cannot reach into them. */
function protect(text: string, patterns: RegExp[]): { text: string; restore: (s: string) => string } {
  const saved: string[] = [];
  let out = text.replace(/[\uE000\uE001]/g, "");
  for (const re of patterns) {
    out = out.replace(re, (m) => `\uE000${saved.push(m) - 1}\uE001`);
  }
  return { text: out, restore: (s) => s.replace(PLACEHOLDER, (_, i: string) => saved[Number(i)] ?? "") };
}

function stripMarkdown(text: string): string {
  return (
    text
      // "# Title" → "Title" (a closing "###" run goes too); "#hashtag" has no space and stays.
      .replace(/^[ \t]{0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/gm, "$1")
      .replace(/\*\*\*(?=\S)([^*\n]*?\S)\*\*\*/g, "$1")
      .replace(/\*\*(?=\S)([^*\n]*?\S)\*\*/g, "$1")
      // Single-star emphasis only at word edges, so "2*3*4" and "* list items" survive.
      .replace(/(^|[\s(["'])\*(?=\S)([^*\n]*?\S)\*(?=$|[\s).,;:!?'"\]])/gm, "$1$2")
  );
}

/**
 * Cleans an agent reply for iMessage: drops reasoning/memory blocks, channel separators and trailing turn
 * markers, unwraps <final>, removes markdown emphasis and heading markers, collapses blank-line runs, trims.
 */
export function sanitizeOutbound(text: string): string {
  const p = protect(text.replace(/\r\n?/g, "\n"), [FENCED, INLINE_CODE, URL]);
  let s = p.text
    .replace(REASONING_BLOCK, "")
    .replace(REASONING_UNCLOSED, "")
    .replace(REASONING_ORPHAN_CLOSE, "")
    .replace(MEMORIES_BLOCK, "")
    .replace(MEMORIES_TAG, "")
    .replace(FINAL_TAG, "")
    .replace(SEPARATOR, "")
    .replace(ASSISTANT_TO_FINAL, "");
  for (let prev = ""; prev !== s;) {
    prev = s;
    s = s.replace(TRAILING_TURN_MARKER, "");
  }
  s = stripMarkdown(s).replace(/\n(?:[ \t]*\n){2,}/g, "\n\n");
  return p.restore(s).trim();
}

const REFLECTION_MARKERS = [
  /(?:\+#){2,}/,
  /\bassistant\s+to=final\b/i,
  new RegExp(String.raw`<\s*/?\s*${NS}(?:${REASONING}|final|relevant_memories)\s*>`, "i"),
  /\bACP error \(ACP_[A-Z0-9_]*\):/,
  /\bMissing API key for \S[^\n]{0,80}? on the gateway\b/i,
];

/**
 * True when inbound text carries assistant markup (our own output reflected back): separators,
 * `assistant to=final`, reasoning/final/memory tags, ACP errors. Markers inside code do not count.
 */
export function looksReflected(text: string): boolean {
  const prose = text.replace(FENCED, " ").replace(INLINE_CODE, " ");
  return REFLECTION_MARKERS.some((re) => re.test(prose));
}

/** Text key for echo matching: LF newlines, no leading control/BOM/replacement characters, NFC, trimmed. */
export function normalizeForEcho(text: string): string {
  return text
    .replace(/\r\n?/g, "\n")
    .replace(/^[\s\u0000-\u001f\u007f-\u009f\ufeff\ufffc\ufffd]+/, "")
    .normalize("NFC")
    .trim();
}
