import { describe, expect, test } from "bun:test";
import { chunkCapped, chunkText, TRUNCATION_MARKER } from "../src/chunk.ts";
import type { ChunkMode } from "../src/config.ts";

const FENCE = "```";

describe("chunkText", () => {
  const rows: [name: string, text: string, limit: number, mode: ChunkMode, expected: string[]][] = [
    ["short text is one chunk", "hello world", 4000, "length", ["hello world"]],
    ["empty text gives no chunks", "", 10, "length", []],
    ["blank text gives no chunks", "  \n ", 10, "length", []],
    ["text exactly at the limit is one chunk", "abcde", 5, "length", ["abcde"]],
    ["9000 letters split 4000/4000/1000", "a".repeat(9000), 4000, "length", ["a".repeat(4000), "a".repeat(4000), "a".repeat(1000)]],
    ["breaks at the last newline in the window", "one two\nthree four", 12, "length", ["one two", "three four"]],
    ["newline beats a later space", "aa\nbb cc dd", 10, "length", ["aa", "bb cc dd"]],
    ["breaks at the last space when there is no newline", "alpha beta gamma", 12, "length", ["alpha beta", "gamma"]],
    ["whitespace just past the window is consumed", "abcd efgh", 4, "length", ["abcd", "efgh"]],
    ["hard break inside a long word", "abcdefghij", 4, "length", ["abcd", "efgh", "ij"]],
    ["spaces inside parentheses are not break points", "see (a b c d e) next", 12, "length", ["see", "(a b c d e)", "next"]],
    ["a word ending exactly at the limit stays in the chunk", "words words words", 11, "length", ["words words", "words"]],
    ["a newline right after the limit is a break point", "aaa bbb\nccc", 7, "length", ["aaa bbb", "ccc"]],
    ["unclosed parenthesis still breaks at a space, not mid-word", "(aaa bbbbbb", 8, "length", ["(aaa", "bbbbbb"]],
    ["runs of whitespace at a break vanish", "aaa     \n\n   bbb", 5, "length", ["aaa", "bbb"]],
    ["emoji at the boundary is not split", "abc😀def", 4, "length", ["abc", "😀de", "f"]],
    ["emoji pair exactly at the limit stays", "ab😀cd", 4, "length", ["ab😀", "cd"]],
    ["limit 1 keeps a surrogate pair whole", "😀", 1, "length", ["😀"]],
    ["newline mode: each paragraph is its own chunk", "para one\n\npara two\n \n\npara three", 4000, "newline", ["para one", "para two", "para three"]],
    ["newline mode: CRLF is normalized", "one\r\n\r\ntwo", 4000, "newline", ["one", "two"]],
    ["newline mode: single newlines do not split", "line one\nline two", 4000, "newline", ["line one\nline two"]],
    ["newline mode: blank lines inside a fence do not split", `intro\n\n${FENCE}js\na();\n\nb();\n${FENCE}\n\noutro`, 4000, "newline", [
      "intro",
      `${FENCE}js\na();\n\nb();\n${FENCE}`,
      "outro",
    ]],
    ["newline mode: tilde fences count too", "x\n\n~~~\n1\n\n2\n~~~", 4000, "newline", ["x", "~~~\n1\n\n2\n~~~"]],
    ["newline mode: an unterminated fence runs to the end", `a\n\n${FENCE}\n1\n\n2`, 4000, "newline", ["a", `${FENCE}\n1\n\n2`]],
    ["newline mode: an over-long paragraph falls back to length", "short\n\nwords words words", 11, "newline", ["short", "words words", "words"]],
  ];
  for (const [name, text, limit, mode, expected] of rows) test(name, () => expect(chunkText(text, limit, mode)).toEqual(expected));

  test("mode defaults to length", () => expect(chunkText("aaaa bbbb", 4)).toEqual(["aaaa", "bbbb"]));
});

// Deterministic pseudo-random text so a failure reproduces.
function* rng(seed: number): Generator<number> {
  let x = seed;
  for (;;) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    yield x / 2 ** 31;
  }
}

const PIECES = ["word", "a", "longerwordhere", " ", " ", "\n", "\n\n", "(", ")", "😀", "é", "```", "\t", "x".repeat(30)];

// Every violation names its input, so a failing case can be copied into the table above.
function violations(mode: ChunkMode, seed: number, cases: number): string[] {
  const random = rng(seed);
  const next = () => random.next().value as number;
  const found: string[] = [];
  for (let i = 0; i < cases; i++) {
    const text = Array.from({ length: 5 + Math.floor(next() * 120) }, () => PIECES[Math.floor(next() * PIECES.length)]).join("");
    const limit = 2 + Math.floor(next() * 40);
    const chunks = chunkText(text, limit, mode);
    const where = `${JSON.stringify(text)} limit=${limit}`;
    if (chunks.join("").replace(/\s/g, "") !== text.replace(/\s/g, "")) found.push(`lost non-whitespace: ${where}`);
    for (const c of chunks) {
      if (c.length > limit) found.push(`chunk over limit: ${where}`);
      if (!c.trim()) found.push(`empty chunk: ${where}`);
      if (/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(c)) found.push(`split surrogate pair: ${where}`);
    }
  }
  return found;
}

describe("chunkText properties (300 generated texts per mode)", () => {
  for (const mode of ["length", "newline"] as const) {
    test(`${mode}: only break whitespace is lost, chunks fit, no empty chunk, no split surrogate pair`, () => {
      expect(violations(mode, 7, 300)).toEqual([]);
    });
  }
});

describe("chunkCapped: the reply size caps", () => {
  const caps = (maxChars: number, maxParts: number) => ({ maxChars, maxParts });
  test("under both caps nothing changes and nothing is reported", () => {
    expect(chunkCapped("alpha beta gamma", 12, "length", caps(100, 5))).toEqual({ chunks: ["alpha beta", "gamma"] });
  });
  const rows: [name: string, text: string, limit: number, maxChars: number, maxParts: number, parts: number][] = [
    ["too many parts: cut to maxParts", "word ".repeat(200), 40, 100_000, 3, 3],
    ["too many characters: cut at a word before maxChars", "word ".repeat(200), 4000, 100, 5, 1],
    ["5 MB of one letter: one cut, no scan of the rest", "x".repeat(5_000_000), 4000, 4000, 5, 1],
    ["a limit too small for the marker: the marker is the last part", "word ".repeat(50), 10, 100_000, 2, 2],
  ];
  test.each(rows)("%s", (_n, text, limit, maxChars, maxParts, parts) => {
    const r = chunkCapped(text, limit, "length", caps(maxChars, maxParts));
    expect(r.chunks).toHaveLength(parts);
    expect(r.chunks.every((c) => c.length <= limit)).toBe(true);
    expect(r.chunks.join("\n").length).toBeLessThanOrEqual(maxChars + TRUNCATION_MARKER.length + parts);
    expect(r.truncated).toMatchObject({ chars: text.length, parts });
    if (limit > TRUNCATION_MARKER.length) expect(r.chunks.at(-1)!.endsWith(`\n${TRUNCATION_MARKER}`)).toBe(true);
  });
  test("a cut never splits an emoji's surrogate pair", () => {
    const r = chunkCapped("😀".repeat(100), 4000, "length", caps(51, 5));
    expect(r.chunks[0]).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
  });
});
