// Logs at info level and above never carry a message body or a whole handle (only its last 4 characters), whatever
// happens to the message: answered, pairing-challenged, dropped, or answered in a group.
import { expect, test } from "bun:test";
import { waitFor } from "../helpers/sim.ts";
import { baseConfig, e2eResources } from "../helpers/gateway.ts";

const e2e = e2eResources();
const OWNER = "+15550001111";
const STRANGER = "+15550002222";
const MEMBER = "user@example.com";

test("info logs: no message text, no whole handle; debug logs keep the reasons", async () => {
  const sim = e2e.sim({ env: { IMSG_SIM_POLL_MS: "50" } });
  const ws = e2e.workspace();
  ws.writeConfig(baseConfig(sim.cliPath, { dmPolicy: "pairing", groupPolicy: "open", groups: { "*": { requireMention: false } } }));
  const gw = e2e.gateway(ws);
  await gw.subscribed();
  sim.db.inject({ from: OWNER, text: "owner secret alpha" });
  sim.db.inject({ from: STRANGER, text: "stranger secret bravo" });
  sim.db.inject({ group: { identifier: "chat900", name: "Team", participants: [OWNER, MEMBER] }, from: MEMBER, text: "member secret charlie" });
  await waitFor(() => sim.db.sent().length >= 3 ? true : undefined, 20_000, "the reply, the pairing code and the group reply");
  expect(await gw.stop()).toBe(0);

  const visible = gw.logs.items.filter((l) => l.level !== "debug" && l.level !== "trace" && l.level !== "verbose");
  expect(visible.length).toBeGreaterThan(0);
  const text = visible.map((l) => JSON.stringify(l)).join("\n");
  for (const secret of ["alpha", "bravo", "charlie"]) expect(text).not.toContain(secret);
  for (const handle of [OWNER, STRANGER, MEMBER, OWNER.slice(1), STRANGER.slice(1)]) expect(text).not.toContain(handle);
  // The replies are logged at info with the redacted handle, so a user still sees where they went.
  expect(text).toContain("***1111");
});
