// Media understanding end to end: the gateway on the simulator, a loopback OpenAI-compatible server (node:http).
// A JPEG and a HEIC photo reach the model as image parts, a voice memo as transcript text.
import { afterEach, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { join } from "node:path";
import { createSim, type Sim, waitFor } from "../helpers/sim.ts";
import { GatewayProc, type Workspace, workspace } from "../helpers/gateway.ts";

const FIX = join(import.meta.dir, "../fixtures/media");
let sim: Sim | undefined;
let ws: Workspace | undefined;
let gw: GatewayProc | undefined;
let server: Server | undefined;
const chats: any[] = [];
const transcriptions: { model: unknown; name: string }[] = [];

afterEach(async () => {
  if (gw) await gw.kill();
  gw = undefined;
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
  chats.length = 0;
  transcriptions.length = 0;
  sim?.cleanup();
  ws?.cleanup();
});

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function start(openai: Record<string, unknown>) {
  server = createServer(async (req, res) => {
    const b = await body(req);
    res.setHeader("content-type", "application/json");
    if (req.url === "/v1/audio/transcriptions") {
      const form = await new Request("http://x/", { method: "POST", headers: { "content-type": req.headers["content-type"]! }, body: b }).formData();
      transcriptions.push({ model: form.get("model"), name: (form.get("file") as File).name });
      return res.end(JSON.stringify({ text: "pick up milk" }));
    }
    chats.push(JSON.parse(b.toString("utf8")));
    res.end(JSON.stringify({ choices: [{ message: { role: "assistant", content: "seen" } }] }));
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  sim = createSim({ env: { IMSG_SIM_POLL_MS: "50" } });
  ws = workspace();
  const root = join(ws.dir, "Attachments");
  mkdirSync(join(root, "ab"), { recursive: true });
  ws.writeConfig({
    channels: { imessage: { cliPath: sim.cliPath, dmPolicy: "allowlist", allowFrom: ["+15550001111"], includeAttachments: true, attachmentRoots: [root] } },
    agents: { list: [{ id: "chat", default: true, timeoutSeconds: 20, openai: { baseUrl: `http://127.0.0.1:${port}/v1`, model: "vision-test", ...openai } }] },
  });
  gw = new GatewayProc(ws, {});
  await gw.subscribed();
  return (src: string, name: string) => {
    const p = join(root, "ab", name);
    copyFileSync(src, p);
    return p;
  };
}

const sent = () => sim!.db.sent().map((s) => s.text);

describe("media understanding through the gateway", () => {
  test("a JPEG and a HEIC photo reach the model as image_url parts (the HEIC as JPEG)", async () => {
    if (spawnSync("heif-convert", ["--help"]).error) throw new Error("heif-convert is missing: install Debian's libheif-examples (.ci/run does)");
    const put = await start({ vision: true });
    const jpg = put(join(FIX, "gradient.jpg"), "IMG_0001.jpg");
    const heic = put(join(FIX, "gradient.heic"), "IMG_0002.HEIC");
    sim!.db.inject({
      from: "+15550001111",
      text: "what are these",
      attachments: [
        { path: jpg, mimeType: "image/jpeg", transferName: "IMG_0001.jpg" },
        { path: heic, mimeType: "image/heic", transferName: "IMG_0002.HEIC" },
      ],
    });
    await waitFor(() => sent().includes("seen"), 15_000, "reply");
    const content = chats[0].messages.at(-1).content;
    expect(content[0]).toEqual({ type: "text", text: "> what are these" });
    expect(content[1].image_url.url).toBe(`data:image/jpeg;base64,${readFileSync(jpg).toString("base64")}`);
    expect(content[2].image_url.url.startsWith("data:image/jpeg;base64,/9j/")).toBe(true);
    expect(content).toHaveLength(3);
  });

  test("a voice memo reaches /audio/transcriptions and the model sees the transcript", async () => {
    const put = await start({ transcribeModel: "whisper-test" });
    const wavPath = join(ws!.dir, "memo.wav");
    const h = Buffer.alloc(44);
    h.write("RIFF", 0);
    h.writeUInt32LE(36 + 1600, 4);
    h.write("WAVEfmt ", 8);
    h.writeUInt32LE(16, 16);
    h.writeUInt16LE(1, 20);
    h.writeUInt16LE(1, 22);
    h.writeUInt32LE(8000, 24);
    h.writeUInt32LE(16000, 28);
    h.writeUInt16LE(2, 32);
    h.writeUInt16LE(16, 34);
    h.write("data", 36);
    h.writeUInt32LE(1600, 40);
    writeFileSync(wavPath, Buffer.concat([h, Buffer.alloc(1600)]));
    const p = put(wavPath, "Audio Message.wav");
    sim!.db.inject({ from: "+15550001111", attachments: [{ path: p, mimeType: "audio/wav", transferName: "Audio Message.wav" }] });
    await waitFor(() => sent().includes("seen"), 15_000, "reply");
    expect(transcriptions).toEqual([{ model: "whisper-test", name: "Audio Message.wav" }]);
    expect(chats[0].messages.at(-1).content).toBe("<media:audio>\n[voice memo transcript] pick up milk");
  });
});
