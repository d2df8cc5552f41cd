#!/usr/bin/env bun
// `npm run demo`: runs the real gateway against the bundled imsg simulator with a demo agent, plays a short
// scripted conversation (pairing, an approved DM, a group with and without a mention, a long reply that is
// chunked) and prints the transcript. Everything lives in a temp dir that is removed at the end.
import { DEMO_AGENT, SimSession } from "./sim-session.ts";

const s = new SimSession("openclaw-imsg-demo-");
const STRANGER = "+15550001111";
const FRIEND = "+15550002222";
s.writeConfig({
  channels: {
    imessage: {
      enabled: true,
      cliPath: s.cliPath,
      dmPolicy: "pairing",
      groupPolicy: "allowlist",
      groupAllowFrom: [STRANGER, FRIEND],
      groups: { "*": { requireMention: true } },
      textChunkLimit: 120,
      chunkMode: "newline",
    },
  },
  messages: { groupChat: { mentionPatterns: ["@claw\\b"] } },
  agents: { list: [{ id: "main", default: true, command: [process.execPath, DEMO_AGENT] }] },
});

const out = (t: string) => process.stdout.write(t + "\n");

/** Prints the gateway's next `n` replies (is_from_me rows). */
async function replies(n: number): Promise<string[]> {
  const fresh = await s.nextSent(n);
  for (const r of fresh) out(`  ← bot: ${r.text.replace(/\n/g, "\n         ")}`);
  return fresh.map((r) => r.text);
}

function say(from: string, text: string, group?: { identifier: string; name: string; participants: string[] }) {
  out(`\n  → ${from}${group ? ` in "${group.name}"` : ""}: ${text}`);
  return s.db.inject({ from, text, group });
}

try {
  await s.start();
  out("openclaw-imsg demo: gateway running against the imsg simulator\n");

  out('1. A stranger writes. dmPolicy is "pairing": they get a code, the agent sees nothing.');
  say(STRANGER, "hi, is this the bot?");
  const [pairing] = await replies(1);
  const code = /Pairing code: ([A-Z2-9]{8})/.exec(pairing!)?.[1];
  if (!code) throw new Error("demo: no pairing code in the reply");
  out(`\n2. The owner approves it: openclaw-imsg pairing approve imessage ${code.toLowerCase()}`);
  out(s.cli("pairing", "list").stdout.replace(/^/gm, "  "));
  out("  " + s.cli("pairing", "approve", "imessage", code.toLowerCase()).stdout.trim());

  out("\n3. Now their DMs reach the agent (DMs share the main session).");
  say(STRANGER, "hello again");
  await replies(1);
  say(STRANGER, "still there?");
  await replies(1);

  const group = { identifier: "chat424242", name: "Weekend plans", participants: [STRANGER, FRIEND] };
  out("\n4. In a group, messages without a mention are kept as context, not answered.");
  const r = say(FRIEND, "pizza or tacos?", group);
  await s.until(() => s.settled(r), "the no-mention drop");
  out("  (no reply: no mention)");
  say(STRANGER, "@claw settle this", group);
  await replies(1);

  out("\n5. A long reply is split into parts (textChunkLimit 120, chunkMode newline).");
  say(STRANGER, "tell me a story");
  await replies(5);

  out(`\n${s.db.sent().length} messages sent, state in a temp dir. Try it yourself: npm run try (README "Try it without a Mac").`);
} finally {
  await s.close();
}
