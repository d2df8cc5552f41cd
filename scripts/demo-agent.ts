#!/usr/bin/env bun
export {};
// The demo's agent (command backend): a friendly echo that remembers the conversation length and tells a
// long story on request, so the demo shows sessions and chunking without any model.
const turn = JSON.parse(await new Response(Bun.stdin.stream()).text());
const text: string = turn.text ?? "";
if (/story/i.test(text)) {
  const lines = [
    "Once upon a time a Mac mini sat in a closet, forwarding messages to an agent.",
    "It never answered a message twice, because it wrote everything down before acting.",
    "It never answered strangers either: they got a pairing code and waited for the owner.",
    "When the power went out, it picked up exactly where it had stopped.",
    "The end.",
  ];
  process.stdout.write(lines.join("\n\n") + "\n");
} else {
  const n = turn.history.filter((h: { role: string }) => h.role === "user").length + 1;
  const where = turn.chatType === "group" ? `in ${turn.chatName || "the group"}` : "in our DM";
  process.stdout.write(`You said "${text}" (message ${n} ${where}).\n`);
}
