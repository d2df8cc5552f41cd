// Documentation that must not drift from the code.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { renderConfigDoc } from "../scripts/gen-config-doc.ts";
import { describeSchemaKeys } from "../src/config-schema.ts";

const ROOT = join(import.meta.dir, "..");

test("docs/CONFIG.md is generated from the current schema (run: bun scripts/gen-config-doc.ts)", () => {
  expect(readFileSync(join(ROOT, "docs/CONFIG.md"), "utf8")).toBe(renderConfigDoc());
});

test("every channels.imessage key of the contract is in the schema reference", () => {
  const keys = new Set(describeSchemaKeys().map((k) => k.key));
  const contract = readFileSync(join(ROOT, "../shared/CONTRACT.md"), "utf8").match(/## 4\. Configuration[\s\S]*?Related top-level keys/)?.[0] ?? "";
  const named = [...contract.matchAll(/`([a-zA-Z]+)`/g)].map((m) => m[1]!).filter((k) => !["imessage", "sms", "auto", "length", "newline", "pairing", "allowlist", "true", "false"].includes(k));
  expect(named.length).toBeGreaterThan(20);
  for (const k of named) expect(keys.has(k) || k === "accounts" || k === "defaultAccount" ? k : `missing: ${k}`).toBe(k);
});
