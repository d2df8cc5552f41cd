// Documentation that must not drift from the code: docs/CONFIG.md is generated, docs/SPEC.md names every
// command, flag, exit code, config key and probe check the code has.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ArgsDef, CommandDef } from "citty";
import { renderConfigDoc } from "../scripts/gen-config-doc.ts";
import { describeSchemaKeys } from "../src/config-docs.ts";
import { EXIT } from "../src/errors.ts";
import { commands } from "../src/main.ts";

const ROOT = join(import.meta.dir, "..");
const contract = readFileSync(join(ROOT, "docs/SPEC.md"), "utf8");

test("docs/CONFIG.md is generated from the current schema (run: bun scripts/gen-config-doc.ts)", () => {
  expect(readFileSync(join(ROOT, "docs/CONFIG.md"), "utf8")).toBe(renderConfigDoc());
});

test("every channels.imessage key named in docs/SPEC.md §5.1 is in the schema", () => {
  const keys = new Set(describeSchemaKeys().map((k) => k.key));
  const section = contract.match(/## 5\. Configuration[\s\S]*?\n5\.2\./)?.[0] ?? "";
  const named = [...section.matchAll(/`([a-zA-Z]+)`/g)].map((m) => m[1]!).filter((k) => !["imessage", "json", "true", "false"].includes(k));
  expect(named.length).toBeGreaterThan(20);
  // The per-group settings are documented inside the `groups` row of docs/CONFIG.md.
  const config = readFileSync(join(ROOT, "docs/CONFIG.md"), "utf8");
  const nested = (k: string) => new RegExp(`^\\| \`groups\` \\|.*\\b${k}\\?`, "m").test(config);
  const known = (k: string) => keys.has(k) || nested(k) || k === "accounts" || k === "defaultAccount";
  for (const k of named) expect(known(k) ? k : `missing: ${k}`).toBe(k);
});

async function resolve<T>(v: T | (() => T | Promise<T>) | Promise<T> | undefined): Promise<T | undefined> {
  return typeof v === "function" ? await (v as () => T | Promise<T>)() : await v;
}

/** [command path, flags] for every leaf command, loading each command module. */
async function leaves(): Promise<[string, string[]][]> {
  const out: [string, string[]][] = [];
  const walk = async (path: string, cmd: CommandDef<any>) => {
    const subs = await resolve(cmd.subCommands as Record<string, CommandDef<any>> | undefined);
    if (subs) { for (const [n, s] of Object.entries(subs)) await walk(`${path} ${n}`.trim(), s); }
    else {
      const args = ((await resolve(cmd.args as ArgsDef)) ?? {}) as ArgsDef;
      out.push([path, Object.entries(args).filter(([, d]) => d.type !== "positional").map(([n]) => `--${n}`)]);
    }
  };
  for (const [n, c] of Object.entries(commands)) await walk(n, c);
  return out;
}

describe("docs/SPEC.md §2–§3 covers the CLI", async () => {
  const all = await leaves();
  test("there are leaf commands to check (control)", () => expect(all.length).toBeGreaterThanOrEqual(8));
  test.each(all)("`%s` and each of its flags are documented", (path, flags) => {
    expect(contract.includes(`\`${path}`) ? path : `undocumented command: ${path}`).toBe(path);
    const documented = (f: string) => new RegExp(`(^|[\\s\\[\`(|])${f}(?![\\w-])`, "m").test(contract);
    for (const f of flags) expect(documented(f) ? f : `undocumented flag of ${path}: ${f}`).toBe(f);
  });
});

test("every exit code is in the §3.6 table", () => {
  for (const code of Object.values(EXIT)) expect(contract).toMatch(new RegExp(`^\\| ${code} \\|`, "m"));
});

test("every probe check name is in §9", () => {
  const src = readFileSync(join(ROOT, "src/probe.ts"), "utf8");
  const names = new Set([...src.matchAll(/name(?:: | = )"([^"]+)"/g)].map((m) => m[1]!));
  for (const n of ["RPC handshake", "Messages database readable"]) names.add(n);
  expect(names.size).toBeGreaterThanOrEqual(8);
  for (const n of names) expect(contract.includes(`\`${n}\``) ? n : `undocumented check: ${n}`).toBe(n);
});

test("the agent environment variables of §7.2 are the ones the command backend sets", () => {
  const src = readFileSync(join(ROOT, "src/agents.ts"), "utf8");
  const vars = [...new Set([...src.matchAll(/\b(OPENCLAW_[A-Z_]+):/g)].map((m) => m[1]!))];
  expect(vars.length).toBe(4);
  for (const v of vars) expect(contract).toContain(`\`${v}\``);
});
