// The rate guard end to end: a person's fast burst is answered, a bot answering every reply is paused (visibly, with
// one notice) and the owner resumes it, and a stranger's rows never silence the bot for an admitted sender.
import { describe, expect, test } from "bun:test";
import { waitFor } from "../helpers/sim.ts";
import { baseConfig, e2eResources, runCli } from "../helpers/gateway.ts";
import { PAUSE_NOTICE } from "../../src/pauses.ts";

const res = e2eResources();
const OWNER = "+15550001111";
const BOT = "+15550002222";

function setup(imessage: Record<string, unknown> = {}) {
  const sim = res.sim({ env: { IMSG_SIM_POLL_MS: "50" } });
  const ws = res.workspace();
  ws.writeConfig(baseConfig(sim.cliPath, imessage, { session: { dmScope: "per-peer" } }));
  const g = res.gateway(ws);
  const sent = () => sim.db.sent();
  return { sim, ws, g, sent };
}

describe("rate guard", () => {
  test("25 messages in 8 s from one approved person are all answered", async () => {
    const { sim, g, sent } = setup();
    await g.subscribed();
    for (let i = 0; i < 25; i++) {
      sim.db.inject({ from: OWNER, text: `line ${i}` });
      await new Promise((r) => setTimeout(r, 320)); // the burst's own pace, not synchronisation
    }
    await waitFor(() => sent().length >= 25 || undefined, 60_000, "25 replies");
    const texts = sent().map((s) => s.text);
    for (let i = 0; i < 25; i++) expect(texts).toContain(`echo: line ${i}`);
    expect(texts).not.toContain(PAUSE_NOTICE);
    expect(g.logs.items.some((l) => l.msg.includes("rate guard: paused"))).toBe(false);
  }, 90_000);

  test("a bot answering each reply within a second is paused within 20 exchanges; visible; the owner resumes it", async () => {
    const { sim, ws, g, sent } = setup({ dmPolicy: "open", allowFrom: [OWNER, "*"] });
    await g.subscribed();
    // The bot: every reply of ours to it is answered ~100 ms later, until the pause notice arrives.
    let exchanges = 0;
    sim.db.inject({ from: BOT, text: "bot 0" });
    let seen = 0;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      const toBot = sent().filter((s) => s.recipient === BOT || s.chatIdentifier === BOT);
      if (toBot.some((s) => s.text === PAUSE_NOTICE)) break;
      if (toBot.length > seen) {
        seen = toBot.length;
        await new Promise((r) => setTimeout(r, 100));
        sim.db.inject({ from: BOT, text: `bot ${++exchanges}` });
        if (exchanges > 25) break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const toBot = () => sent().filter((s) => s.recipient === BOT || s.chatIdentifier === BOT);
    expect(toBot().filter((s) => s.text === PAUSE_NOTICE)).toHaveLength(1);
    expect(exchanges).toBeLessThanOrEqual(20);
    await g.logs.waitFor((l) => l.msg.includes("rate guard: paused DM ***2222"), 5000);
    // Held, not dropped: a further bot row is journaled as held.
    const held = sim.db.inject({ from: BOT, text: "bot after pause" });
    await g.logs.waitFor((l) => l.msg.startsWith(`hold row ${held.rowid} `), 10_000);
    // Visible to the owner's /status and to probe.
    sim.db.inject({ from: OWNER, text: "/status" });
    const status = await waitFor(() => sent().find((s) => s.text.includes("paused elsewhere: DM ***2222")), 10_000, "/status shows the pause");
    expect(status.text).toMatch(/held/);
    const probe = runCli(["probe", "--config", ws.configPath, "--state-dir", ws.stateDir]);
    expect(probe.stdout + probe.stderr).toContain("paused by the rate guard");
    // The owner resumes it: the held rows are answered once each.
    const before = toBot().length;
    sim.db.inject({ from: OWNER, text: `/resume ${BOT}` });
    await waitFor(() => sent().find((s) => s.text.startsWith("Resumed DM ***2222")), 10_000, "resume reply");
    await waitFor(() => toBot().some((s) => s.text === "echo: bot after pause") || undefined, 10_000, "held row answered");
    expect(toBot().length).toBeGreaterThan(before);
    expect(toBot().filter((s) => s.text === "echo: bot after pause")).toHaveLength(1);
    const probe2 = runCli(["probe", "--config", ws.configPath, "--state-dir", ws.stateDir]);
    expect(probe2.stdout + probe2.stderr).not.toContain("paused by the rate guard");
  }, 120_000);

  test("a stranger's five markup rows in a group leave the owner answered there", async () => {
    const { sim, g, sent } = setup({ groupPolicy: "allowlist", groupAllowFrom: [OWNER], groups: { "*": { requireMention: false } } });
    await g.subscribed();
    const grp = { identifier: "chat5151", participants: [OWNER, "+15550003333"] };
    for (let i = 0; i < 5; i++) {
      const r = sim.db.inject({ from: "+15550003333", text: `<thinking>loop ${i}</thinking>`, group: grp });
      await g.logs.waitFor((l) => l.msg.startsWith(`drop row ${r.rowid} `), 10_000);
    }
    sim.db.inject({ from: OWNER, text: "still there?", group: grp });
    await waitFor(() => sent().find((s) => s.text === "echo: still there?"), 10_000, "owner answered");
    expect(sent().map((s) => s.text)).not.toContain(PAUSE_NOTICE);
  });

  test("five reflected-markup rows from an admitted sender pause that conversation only; /resume skip records the held rows", async () => {
    const { sim, g, sent } = setup({ dmPolicy: "open", allowFrom: [OWNER, "*"] });
    await g.subscribed();
    for (let i = 0; i < 5; i++) {
      const r = sim.db.inject({ from: BOT, text: `<thinking>loop ${i}</thinking>` });
      await g.logs.waitFor((l) => l.msg.startsWith(`drop row ${r.rowid} `), 10_000);
    }
    await waitFor(() => sent().find((s) => s.text === PAUSE_NOTICE), 10_000, "pause notice");
    const blocked = sim.db.inject({ from: BOT, text: "a genuine question" });
    await g.logs.waitFor((l) => l.msg.startsWith(`hold row ${blocked.rowid} `), 10_000);
    sim.db.inject({ from: "+15550004444", text: "someone else" });
    await waitFor(() => sent().find((s) => s.text === "echo: someone else"), 10_000, "other conversation still answered");
    sim.db.inject({ from: OWNER, text: `/resume ${BOT} skip` });
    const r = await waitFor(() => sent().find((s) => s.text.startsWith("Resumed")), 10_000, "resume reply");
    expect(r.text).toContain("1 held message skipped");
    sim.db.inject({ from: BOT, text: "after resume" });
    await waitFor(() => sent().find((s) => s.text === "echo: after resume"), 10_000, "answered again");
    expect(sent().map((s) => s.text)).not.toContain("echo: a genuine question");
  });
});
