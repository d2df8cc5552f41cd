// The entry point answers --version and the root --help without citty; its static help must stay what citty
// would print (`--verbose --help` still goes through citty, so comparing the two catches any drift).
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { usage } from "../src/cli.ts";
import { main, rootHelp, VERSION } from "../src/main.ts";

const MAIN = join(import.meta.dir, "../src/main.ts");
const cli = (args: string[], env: Record<string, string | undefined>) => {
  const base: Record<string, string | undefined> = { ...process.env, NO_COLOR: undefined, TERM: undefined, TEST: undefined, CI: undefined };
  const r = spawnSync(process.execPath, [MAIN, ...args], { env: { ...base, ...env } as NodeJS.ProcessEnv, encoding: "utf8" });
  expect(r.status).toBe(0);
  return r.stdout;
};

test("rootHelp equals citty's renderUsage of the root in this process's colour mode", async () => {
  expect(rootHelp(process.env)).toBe(await usage(main));
});

describe("root help: the static fast path prints what citty prints", () => {
  test.each(
    [
      ["plain (NO_COLOR=1)", { NO_COLOR: "1" }, false],
      ["plain (TERM=dumb)", { TERM: "dumb" }, false],
      ["plain (CI)", { CI: "true" }, false],
      ["coloured", { TERM: "xterm-256color" }, true],
    ] as const,
  )("%s", (_name, env, coloured) => {
    const fast = cli(["--help"], env);
    expect(fast).toBe(cli(["--verbose", "--help"], env));
    expect(cli([], env)).toBe(fast);
    expect(cli(["-h"], env)).toBe(fast);
    expect(fast).toContain("gateway|send|pairing|probe|chats");
    expect(fast.includes("\u001B[")).toBe(coloured);
  });
});

test("--version and -v print the version alone", () => {
  expect(cli(["--version"], {})).toBe(`${VERSION}\n`);
  expect(cli(["-v"], {})).toBe(`${VERSION}\n`);
});

test("src/main.ts imports nothing at load time but package.json (types aside): --version/--help stay cheap", () => {
  const src = readFileSync(MAIN, "utf8");
  const value = [...src.matchAll(/^import\s+(?!type\b)[^;]*?from\s+"([^"]+)"/gm)].map((m) => m[1]);
  expect(value).toEqual(["../package.json"]);
});
