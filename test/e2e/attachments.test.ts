// Attachments through the gateway (local roots): inbound files reach the agent as local paths, outbound MEDIA lines
// become file sends, and everything refused is logged with nothing half-done.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createSim, type Sim, waitFor } from "../helpers/sim.ts";
import { baseConfig, GatewayProc, type Workspace, workspace } from "../helpers/gateway.ts";

let sim: Sim;
let ws: Workspace;
let gw: GatewayProc | undefined;
let agentLog: string;
let root: string;

afterEach(async () => {
  if (gw) await gw.kill();
  gw = undefined;
  sim?.cleanup();
  ws?.cleanup();
});

async function start(imessage: Record<string, unknown> = {}, env: Record<string, string> = {}) {
  sim = createSim({ env: { IMSG_SIM_POLL_MS: "50" } });
  ws = workspace();
  root = join(ws.dir, "Attachments");
  mkdirSync(join(root, "ab"), { recursive: true });
  ws.writeConfig(baseConfig(sim.cliPath, { includeAttachments: true, attachmentRoots: [root], mediaMaxMb: 1, ...imessage }));
  agentLog = join(ws.dir, "agent.jsonl");
  gw = new GatewayProc(ws, { env: { AGENT_LOG: agentLog, ...env } });
  await gw.subscribed();
}
const turns = (): any[] => (existsSync(agentLog) ? readFileSync(agentLog, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
const file = (name: string, bytes: number | string) => {
  const p = join(root, "ab", name);
  writeFileSync(p, typeof bytes === "string" ? bytes : Buffer.alloc(bytes, 7));
  return p;
};

describe("inbound attachments", () => {
  test("an allowed file reaches the agent as a local copy with MIME type, name and size; a photo alone gets a placeholder body", async () => {
    await start();
    const p = file("IMG_0001.jpg", 2048);
    sim.db.inject({ from: "+15550001111", attachments: [{ path: p, mimeType: "image/jpeg", transferName: "IMG_0001.jpg" }] });
    await waitFor(() => turns().length === 1, 10_000, "agent turn");
    const t = turns()[0];
    expect(t.attachments).toHaveLength(1);
    expect(t.attachments[0]).toMatchObject({ mimeType: "image/jpeg", size: 2048 });
    expect(t.attachments[0].path.startsWith(join(ws.stateDir, "media"))).toBe(true);
    expect(readFileSync(t.attachments[0].path)).toEqual(readFileSync(p));
    expect(t.body).toBe("<media:image>");
  });

  test("refused files (outside the roots, symlink, too large, missing) are not given to the agent, which is told", async () => {
    await start();
    const outside = join(ws.dir, "secret.txt");
    writeFileSync(outside, "secret");
    const link = join(root, "ab", "link.txt");
    symlinkSync(outside, link);
    const big = file("big.bin", 2 * 1024 * 1024);
    sim.db.inject({
      from: "+15550001111",
      text: "four bad files",
      attachments: [{ path: outside }, { path: link }, { path: big }, { path: join(root, "ab", "gone.png"), mimeType: "image/png" }],
    });
    await waitFor(() => turns().length === 1, 10_000, "agent turn");
    const t = turns()[0];
    expect(t.attachments).toEqual([]);
    expect(t.body.split("[attachment unavailable]").length - 1).toBe(4);
    expect(existsSync(join(ws.stateDir, "media")) ? readdirSync(join(ws.stateDir, "media"), { recursive: true }).filter((f) => String(f).includes(".")) : [])
      .toEqual([]);
  });

  test("nothing is copied for a message that policy drops", async () => {
    await start();
    const p = file("from-stranger.jpg", 100);
    const r = sim.db.inject({ from: "+15550003333", text: "hi", attachments: [{ path: p, mimeType: "image/jpeg" }] });
    await gw!.logs.waitFor((l) => l.msg.startsWith(`drop row ${r.rowid} `), 10_000);
    expect(existsSync(join(ws.stateDir, "media"))).toBe(false);
  });

  test("with includeAttachments off, an attachment-only message is an empty body and dropped", async () => {
    await start({ includeAttachments: false });
    const p = file("x.jpg", 10);
    const r = sim.db.inject({ from: "+15550001111", attachments: [{ path: p, mimeType: "image/jpeg" }] });
    const l = await gw!.logs.waitFor((x) => x.msg.startsWith(`drop row ${r.rowid} `), 10_000);
    expect(l.msg).toContain("empty body");
  });
});

describe("outbound media", () => {
  test("MEDIA: lines become file sends after the text", async () => {
    const media = join(process.env.TMPDIR ?? "/tmp", `oc-media-${process.pid}.png`);
    writeFileSync(media, Buffer.alloc(512, 1));
    await start({}, { AGENT_MODE: "media", AGENT_MEDIA: media });
    sim.db.inject({ from: "+15550001111", text: "send a pic" });
    await waitFor(() => sim.db.sent().length >= 2, 10_000, "text and file");
    const [text, pic] = sim.db.sent();
    expect(text!.text).toBe("here you go");
    expect(pic!.file).toBeDefined();
    rmSync(media);
  });

  test("a missing or oversized media file is logged and the text is still delivered", async () => {
    await start({}, { AGENT_MODE: "media", AGENT_MEDIA: "/nonexistent/pic.png" });
    sim.db.inject({ from: "+15550001111", text: "send a pic" });
    await waitFor(() => sim.db.sent().length >= 1, 10_000, "text");
    await gw!.logs.waitFor((l) => l.msg.includes("not attaching /nonexistent/pic.png"), 10_000);
    expect(sim.db.sent().map((s) => s.text)).toEqual(["here you go"]);
  });
});
