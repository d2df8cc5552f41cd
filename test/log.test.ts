// Log redaction: handles shortened to their last 4 characters, previews single-line and bounded (pure).
import { describe, expect, test } from "bun:test";
import { preview, redact } from "../src/log.ts";

describe("redact", () => {
  const rows: [string | undefined | null, string][] = [
    ["+15550001111", "***1111"],
    ["+1 (555) 000-2222", "***2222"],
    ["user@example.com", "***.com"],
    ["abcd", "***"],
    ["", "(none)"],
    [undefined, "(none)"],
    [null, "(none)"],
    ["chat123456", "***3456"],
  ];
  test.each(rows)("redact(%p) → %p", (handle, expected) => {
    expect(redact(handle)).toBe(expected);
  });
  test("a phone number never survives whole", () => {
    for (const h of ["+15550001111", "15550001111", "+44 20 7946 0000"]) expect(redact(h)).not.toContain(h.replace(/\D/g, "").slice(0, 6));
  });
});

describe("preview", () => {
  test("control characters become spaces, the text is trimmed and clipped", () => {
    expect(preview("  a\nb\tc\u0000d  ")).toBe("a b c d");
    expect(preview(undefined)).toBe("");
    const long = preview("x".repeat(500), 60);
    expect(long.length).toBeLessThanOrEqual(61);
    expect(long.endsWith("…")).toBe(true);
  });
});
