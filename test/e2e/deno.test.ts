// The same source under Deno: `deno run -A src/main.ts` answers a DM end to end and prints the same help.
import { expect, test } from "bun:test";
import { waitFor } from "../helpers/sim.ts";
import { baseConfig, e2eResources, runCli } from "../helpers/gateway.ts";

const e2e = e2eResources();

test("deno: --help and --version match bun's", () => {
  const b = runCli(["--help"]);
  const d = runCli(["--help"], { runtime: "deno" });
  expect(d.code).toBe(0);
  expect(d.stdout).toBe(b.stdout);
  expect(runCli(["--version"], { runtime: "deno" }).stdout).toBe(runCli(["--version"]).stdout);
  expect(runCli(["chats", "--nope"], { runtime: "deno" }).code).toBe(2);
});

test("deno: a DM reaches the agent and the reply is sent", async () => {
  const sim = e2e.sim({ env: { IMSG_SIM_POLL_MS: "50" } });
  const ws = e2e.workspace();
  ws.writeConfig(baseConfig(sim.cliPath));
  const gw = e2e.gateway(ws, { runtime: "deno" });
  await gw.subscribed(1, 30_000);
  sim.db.inject({ from: "+15550001111", text: "hello from deno" });
  await waitFor(() => sim.db.sent().some((s) => s.text === "echo: hello from deno"), 15_000, "reply");
  expect(await gw.stop()).toBe(0);
  expect(sim.db.sent()).toHaveLength(1);
}, 60_000);
