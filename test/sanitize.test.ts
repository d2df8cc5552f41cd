import { describe, expect, test } from "bun:test";
import { looksReflected, normalizeForEcho, sanitizeOutbound } from "../src/sanitize.ts";

const FENCE = "```";

describe("sanitizeOutbound", () => {
  const rows: [name: string, input: string, expected: string][] = [
    ["plain text is only trimmed", "  Hello there.  ", "Hello there."],
    ["thinking block is removed with its content", "<thinking>plan the reply</thinking>Sure, 3pm works.", "Sure, 3pm works."],
    ["thought block is removed", "<thought>\nhmm\n</thought>\n\nDone.", "Done."],
    ["namespaced think tag is removed", "<mm:think>secret</mm:think>Answer", "Answer"],
    ["tag names are case-insensitive", "<THINKING>x</Thinking>ok", "ok"],
    ["several blocks go", "<think>a</think>one <think>b</think>two", "one two"],
    ["an unclosed thinking tag hides the rest", "Answer first.\n<thinking>and then leaking", "Answer first."],
    ["an orphan closing tag hides what came before", "reasoning about it</think>\n\nThe answer is 4.", "The answer is 4."],
    ["relevant_memories block is removed", "<relevant_memories>\n- likes tea\n</relevant_memories>\nTea it is.", "Tea it is."],
    ["final is unwrapped", "<final>The answer.</final>", "The answer."],
    ["namespaced final is unwrapped", "<x:final>Yes</x:final>", "Yes"],
    ["separators are dropped", "Part one\n+#+#+#+#\nPart two", "Part one\n\nPart two"],
    ["assistant to=final is dropped", "assistant to=final Here you go", "Here you go"],
    ["trailing turn markers are dropped", "All set.\nuser:", "All set."],
    ["stacked trailing markers are dropped", "All set.\n\nassistant:\nSystem: ", "All set."],
    ["a turn word inside a sentence stays", "Ask the user: what next?", "Ask the user: what next?"],
    ["bold is unwrapped", "This is **important** now", "This is important now"],
    ["bold italic is unwrapped", "***very*** good", "very good"],
    ["italic at word edges is unwrapped", "an *emphasised* word.", "an emphasised word."],
    ["multiplication stays", "2*3*4 = 24", "2*3*4 = 24"],
    ["list stars stay", "* one\n* two", "* one\n* two"],
    ["headings lose their markers", "# Title\n## Sub ##\ntext", "Title\nSub\ntext"],
    ["hashtags stay", "#weekend plans", "#weekend plans"],
    ["inline code is untouched", "run `**not bold**` and `# not heading`", "run `**not bold**` and `# not heading`"],
    ["fenced code is untouched", `${FENCE}\n# comment\n**x**\n\n\n\ny\n${FENCE}`, `${FENCE}\n# comment\n**x**\n\n\n\ny\n${FENCE}`],
    ["tags inside code are untouched", "use `<thinking>` tags", "use `<thinking>` tags"],
    ["a thinking block containing code goes entirely", `<thinking>${FENCE}\ncode\n${FENCE}</thinking>Done`, "Done"],
    ["URLs are untouched", "see https://example.com/a*b*c/#top and **this**", "see https://example.com/a*b*c/#top and this"],
    ["a bold URL loses only the stars", "**https://example.com/x**", "https://example.com/x"],
    ["three or more newlines collapse to two", "a\n\n\n\nb\n \n \n \nc", "a\n\nb\n\nc"],
    ["CRLF becomes LF", "a\r\nb", "a\nb"],
    ["a reply that was only reasoning becomes empty", "<thinking>only this</thinking>", ""],
  ];
  for (const [name, input, expected] of rows) test(name, () => expect(sanitizeOutbound(input)).toBe(expected));

  test("sanitizing twice changes nothing more", () => {
    for (const [, input] of rows) expect(sanitizeOutbound(sanitizeOutbound(input))).toBe(sanitizeOutbound(input));
  });
});

describe("looksReflected", () => {
  const rows: [name: string, text: string, expected: boolean][] = [
    ["separator", "hello +#+#+#+# world", true],
    ["short separator", "+#+#", true],
    ["assistant to=final", "assistant to=final hi", true],
    ["thinking tag", "<thinking>x</thinking>", true],
    ["closing thought tag alone", "done</thought>", true],
    ["namespaced think tag", "<mm:think>", true],
    ["final tag", "<final>answer</final>", true],
    ["relevant_memories tag", "<relevant_memories>", true],
    ["ACP error", "ACP error (ACP_TIMEOUT): gave up", true],
    ["missing API key error", "Missing API key for openai on the gateway.", true],
    ["marker inside inline code", "type `<final>` to finish", false],
    ["marker inside a fenced block", `${FENCE}\n+#+#+#+#\n<thinking>\n${FENCE}`, false],
    ["partial final tag", "<final draft is attached", false],
    ["partial thought tag", "a <thought experiment", false],
    ["thought with a following word is no tag", "<thought experiment>", false],
    ["plain words", "I was thinking about dinner", false],
    ["ordinary message", "See you at 5 + bring snacks #party", false],
  ];
  for (const [name, text, expected] of rows) test(name, () => expect(looksReflected(text)).toBe(expected));
});

describe("normalizeForEcho", () => {
  const rows: [name: string, text: string, expected: string][] = [
    ["CRLF becomes LF", "a\r\nb", "a\nb"],
    ["leading BOM goes", "\ufeffhello", "hello"],
    ["leading replacement and object characters go", "\ufffd\ufffc hi", "hi"],
    ["leading control characters go", "\u0001\u0002hi", "hi"],
    ["inner characters stay", "a\ufffcb", "a\ufffcb"],
    ["decomposed accents compose (NFC)", "cafe\u0301", "caf\u00e9"],
    ["surrounding whitespace goes", "  hi \n", "hi"],
  ];
  for (const [name, text, expected] of rows) test(name, () => expect(normalizeForEcho(text)).toBe(expected));
});
