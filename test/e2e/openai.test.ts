// The openai backend against a real HTTP server on loopback: request shape, session history, errors.
import { afterEach, describe, expect, test } from "bun:test";
import { createSim, type Sim, waitFor } from "../helpers/sim.ts";
import { GatewayProc, type Workspace, workspace } from "../helpers/gateway.ts";
import { ERROR_REPLY } from "../../src/turn.ts";

let sim: Sim;
let ws: Workspace;
let gw: GatewayProc | undefined;
let server: ReturnType<typeof Bun.serve> | undefined;
const requests: { auth: string | null; body: any }[] = [];
let behaviour: "ok" | "500" | "hang" = "ok";

afterEach(async () => {
  if (gw) await gw.kill();
  gw = undefined;
  server?.stop(true);
  requests.length = 0;
  behaviour = "ok";
  sim?.cleanup();
  ws?.cleanup();
});

async function start(agent: Record<string, unknown> = {}, env: Record<string, string | undefined> = {}, imessage: Record<string, unknown> = {}) {
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const body = (await req.json()) as any;
      requests.push({ auth: req.headers.get("authorization"), body });
      if (behaviour === "500") return new Response("model exploded", { status: 500 });
      if (behaviour === "hang") await new Promise((r) => setTimeout(r, 5000));
      const last = (body.messages.at(-1).content as string).replace(/^> /gm, "");
      return Response.json({ choices: [{ message: { role: "assistant", content: `model says: ${last}` } }] });
    },
  });
  sim = createSim({ env: { IMSG_SIM_POLL_MS: "50" } });
  ws = workspace();
  ws.writeConfig({
    channels: { imessage: { cliPath: sim.cliPath, dmPolicy: "allowlist", allowFrom: ["+15550001111"], ...imessage } },
    agents: {
      list: [
        {
          id: "chat",
          default: true,
          timeoutSeconds: 1,
          openai: {
            baseUrl: `http://127.0.0.1:${server.port}/v1`,
            model: "llama-test",
            apiKeyEnv: "TEST_OPENAI_KEY",
            systemPrompt: "You are terse.",
            ...agent,
          },
        },
      ],
    },
  });
  gw = new GatewayProc(ws, { env: { TEST_OPENAI_KEY: "sk-test-123", ...env } });
  await gw.subscribed();
}

const sent = () => sim.db.sent().map((s) => s.text);

describe("openai backend", () => {
  test("sends model, system prompt, session history and the bearer key; the answer is delivered", async () => {
    await start();
    sim.db.inject({ from: "+15550001111", text: "first" });
    await waitFor(() => sent().includes("model says: first"), 10_000, "first reply");
    sim.db.inject({ from: "+15550001111", text: "second" });
    await waitFor(() => sent().includes("model says: second"), 10_000, "second reply");
    expect(requests).toHaveLength(2);
    expect(requests[0]!.auth).toBe("Bearer sk-test-123");
    expect(requests[1]!.body.model).toBe("llama-test");
    expect(requests[1]!.body.messages).toEqual([
      { role: "system", content: "You are terse." },
      { role: "user", content: "> first" },
      { role: "assistant", content: "model says: first" },
      { role: "user", content: "> second" },
    ]);
  });

  test("MEDIA: lines from a model are not attached (model output is untrusted)", async () => {
    await start();
    sim.db.inject({ from: "+15550001111", text: "MEDIA:/etc/passwd" });
    await waitFor(() => sent().length === 1, 10_000, "reply");
    expect(sim.db.sent()[0]!.file).toBeUndefined();
  });

  test("an HTTP error sends only the fixed error notice to the chat", async () => {
    await start();
    behaviour = "500";
    sim.db.inject({ from: "+15550001111", text: "fail please" });
    await gw!.logs.waitFor((l) => l.msg.includes("HTTP 500"), 10_000);
    await waitFor(() => sent().length === 1 || undefined, 10_000, "the notice");
    expect(sent()).toEqual([ERROR_REPLY]);
  });

  test("a model that does not answer within timeoutSeconds gets the fixed notice, nothing else", async () => {
    await start();
    behaviour = "hang";
    sim.db.inject({ from: "+15550001111", text: "slow" });
    await gw!.logs.waitFor((l) => l.msg.includes("timed out after 1s"), 10_000);
    await waitFor(() => sent().length === 1 || undefined, 10_000, "the notice");
    expect(sent()).toEqual([ERROR_REPLY]);
  });

  test("a missing API key variable is reported and nothing is sent", async () => {
    await start({}, { TEST_OPENAI_KEY: undefined });
    sim.db.inject({ from: "+15550001111", text: "hello" });
    await gw!.logs.waitFor((l) => l.msg.includes("TEST_OPENAI_KEY is not set"), 10_000);
    expect(requests).toHaveLength(0);
    await waitFor(() => sent().length === 1 || undefined, 10_000, "the notice");
    expect(sent()).toEqual([ERROR_REPLY]);
  });

  test("with a directive available the model gets one line naming it; its REACT line is taken out of the reply", async () => {
    // No bridge in the simulator: reactFallback alone makes standard tapbacks available, threads are not.
    await start({}, {}, { reactFallback: true });
    sim.db.inject({ from: "+15550001111", text: "hi\nREACT: like\nMEDIA:/etc/passwd" });
    await waitFor(() => sent().length === 1 || undefined, 10_000, "reply");
    expect(requests[0]!.body.messages.filter((m: any) => m.role === "system").map((m: any) => m.content)).toEqual([
      "You are terse.",
      'Besides your text you may: to react to the message you answer with a tapback, write a line "REACT: <kind>" (love, like, dislike, laugh, emphasize, question). These lines are removed from what is sent.',
    ]);
    // The model echoes the lines back: the REACT line is taken out, the MEDIA line stays text (never a file).
    expect(sent()).toEqual(["model says: hi\nMEDIA:/etc/passwd"]);
    expect(sim.db.sent()[0]!.file).toBeUndefined();
  });

  test("a group's systemPrompt is added for that group", async () => {
    await start({}, {}, { groupPolicy: "open", groups: { "*": { requireMention: false, systemPrompt: "Group rules apply." } } });
    sim.db.inject({ from: "+15550001111", text: "hi group", group: { identifier: "chat777", participants: ["+15550001111"] } });
    await waitFor(() => requests.length === 1, 10_000, "request");
    expect(requests[0]!.body.messages[0]).toEqual({ role: "system", content: "You are terse.\n\nGroup rules apply." });
  });
});
