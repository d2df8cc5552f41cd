// Small pure text helpers shared by many modules (a leaf: imports nothing from src/).

// Zero-width characters, bidi controls, word joiners and the BOM: invisible when rendered, so they let
// "@cl\u200baw" dodge a mention pattern or a pasted "+1555\u200e…" look like an allowlisted handle.
const INVISIBLE_CLASS = "[\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u206f\\ufeff]";
const INVISIBLE_ONE = new RegExp(INVISIBLE_CLASS);
const INVISIBLE_ALL = new RegExp(INVISIBLE_CLASS, "g");

/** True when `s` contains an invisible character (see INVISIBLE_CLASS). */
export function hasInvisible(s: string): boolean {
  return INVISIBLE_ONE.test(s);
}

/** `s` with every invisible character removed. */
export function stripInvisible(s: string): string {
  return s.replace(INVISIBLE_ALL, "");
}

/** `s` cut to `max` characters with a trailing `…` when it was longer (for log lines and reasons). */
export function clip(s: string, max = 300): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
