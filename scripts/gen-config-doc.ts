#!/usr/bin/env bun
// Writes docs/CONFIG.md from the config schema (src/config-docs.ts describeSchemaKeys), so the reference cannot
// drift: test/docs.test.ts fails when the committed file differs from what this prints.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describeSchemaKeys } from "../src/config-docs.ts";
import { DEFAULTS } from "../src/config-schema.ts";
import { OPENAI_MEDIA_KEYS } from "../src/media.ts";

/** The reference as Markdown. */
export function renderConfigDoc(): string {
  const rows = describeSchemaKeys().map((k) => {
    const cell = (s: string) => s.replace(/\|/g, "\\|");
    const def = k.default === undefined ? "" : `\`${cell(String(k.default))}\``;
    return `| \`${k.key}\` | ${cell(k.type)} | ${def} | ${k.perAccount ? "yes" : "no"} | ${cell(k.description)} |`;
  });
  return [
    "# Configuration reference: `channels.imessage`",
    "",
    "Generated from the schema by `bun scripts/gen-config-doc.ts`; a test fails when this file is out of date.",
    "Keys marked *per account* may also be set under `channels.imessage.accounts.<id>`, overriding the top level",
    "(arrays and objects replace, they do not merge). Unknown keys are errors with a did-you-mean.",
    "",
    "| key | type | default | per account | meaning |",
    "|---|---|---|---|---|",
    ...rows,
    "",
    "Related top-level keys: `channels.defaults.groupPolicy`, `session.dmScope` (`main` | `per-peer` |",
    "`per-channel-peer` | `per-account-channel-peer`), `session.mainKey`, `messages.groupChat.mentionPatterns`,",
    "`messages.groupChat.historyLimit` (integer 0–1000), `messages.responsePrefix`, `commands.config`, `commands.useAccessGroups`,",
    "`bindings`, `agents.list[]` (`id`, `default`, `command` | `openai`,",
    "`timeoutSeconds` (integer 1–86400, default 120), `groupChat.mentionPatterns`).",
    "",
    "Inbound debounce (OpenClaw's keys): `messages.inbound.debounceMs` and, winning over it for this channel,",
    "`messages.inbound.byChannel.imessage` (integer 0–600000 ms; 0 disables). A sender's texts in one chat that",
    "arrive within the window of each other become one agent turn (merged text ≤ 4000 characters); a photo or a",
    `control command flushes the burst at once. Unset, the window is ${DEFAULTS.inboundDebounceMs} ms (OpenClaw has none unless configured;`,
    'docs/BENCHMARKS.md "Inbound debounce" shows why).',
    "",
    "## Media keys of an openai agent: `agents.list[].openai`",
    "",
    "Besides `baseUrl`, `model`, `apiKeyEnv` and `systemPrompt`. Off unless set: a photo or a voice memo reaches the",
    "model only when the agent asks for it. HEIC photos are converted to JPEG with `sips` on macOS and with",
    "`heif-convert` (Debian/Ubuntu package `libheif-examples`) elsewhere — small, built on the libheif every distro",
    "ships, and it decodes the tiled HEICs an iPhone writes, which Debian 12’s ffmpeg (5.1) cannot. Voice memos use imsg's",
    "own CAF → M4A conversion when present, else `afconvert` (macOS) or `ffmpeg` (when installed).",
    "",
    "| key | type | default | meaning |",
    "|---|---|---|---|",
    ...OPENAI_MEDIA_KEYS.map((k) =>
      `| \`${k.key}\` | ${k.type} | ${k.default === undefined ? "" : `\`${k.default}\``} | ${k.description.replace(/\|/g, "\\|")} |`
    ),
    "",
  ].join("\n");
}

if (import.meta.main) {
  const path = join(import.meta.dir, "../docs/CONFIG.md");
  writeFileSync(path, renderConfigDoc());
  console.log(`wrote ${path}`);
}
