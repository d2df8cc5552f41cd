import { describe, expect, test } from "bun:test";
import { clip, hasInvisible, stripInvisible } from "../src/text.ts";

describe("invisible characters (one set for handles, targets and mentions)", () => {
  const rows: [name: string, ch: string][] = [
    ["zero-width space", "\u200B"],
    ["zero-width non-joiner", "\u200C"],
    ["zero-width joiner", "\u200D"],
    ["left-to-right mark", "\u200E"],
    ["right-to-left mark", "\u200F"],
    ["bidi override", "\u202E"],
    ["word joiner", "\u2060"],
    ["zero-width no-break space (BOM)", "\uFEFF"],
  ];
  for (const [name, ch] of rows) {
    test(name, () => {
      expect(hasInvisible(`cl${ch}aw`)).toBe(true);
      expect(stripInvisible(`@cl${ch}aw`)).toBe("@claw");
    });
  }
  test("visible text is untouched", () => {
    expect(hasInvisible("+15550001111 é€😀")).toBe(false);
    expect(stripInvisible("+15550001111 é€😀")).toBe("+15550001111 é€😀");
  });
});

describe("clip", () => {
  const rows: [s: string, max: number | undefined, out: string][] = [
    ["short", undefined, "short"],
    ["x".repeat(300), undefined, "x".repeat(300)],
    ["x".repeat(301), undefined, `${"x".repeat(300)}…`],
    ["abcdef", 3, "abc…"],
  ];
  for (const [s, max, out] of rows) test(`${s.length} chars, max ${max ?? 300}`, () => expect(clip(s, max)).toBe(out));
});
