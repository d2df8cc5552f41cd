// Media understanding: pure decisions as tables, and runOpenAiAgent against a real loopback HTTP server
// (node:http) with real files — JPEG and HEIC photos as image_url parts, a voice memo through /audio/transcriptions.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentTurn, runOpenAiAgent } from "../src/agents.ts";
import type { AgentConfig } from "../src/config.ts";
import { parseMessage, toWireMessage } from "../src/imsg.ts";
import { audioCommand, convertedAttachment, heicCommand, mediaAction, planImages, preferred } from "../src/media.ts";

const FIX = join(import.meta.dir, "fixtures/media");
const MB = 1024 * 1024;

describe("media decisions (pure)", () => {
  test.each([
    ["image/jpeg", "IMG_1.jpg", "image"],
    ["image/heic", "IMG_1.HEIC", "heic"],
    ["", "IMG_1.heic", "heic"],
    ["image/tiff", "scan.tiff", "none"],
    ["audio/x-caf", "Audio Message.caf", "audio-convert"],
    ["audio/amr", "memo.amr", "audio-convert"],
    ["audio/mp4", "memo.m4a", "audio"],
    ["audio/mpeg", "song.mp3", "audio"],
    ["audio/wav", "memo.wav", "audio"],
    ["application/pdf", "doc.pdf", "none"],
  ])("%s %s → %s", (mimeType, name, want) => expect(mediaAction({ mimeType, name })).toBe(want as any));

  test.each([
    [[1, 2, 3], 5, 20, [true, true, true], 0],
    [[6, 1], 5, 20, [false, true], 1],
    [[5, 5, 5, 5, 5], 5, 20, [true, true, true, true, false], 1],
  ])("planImages %j (per image %d MB, per turn %d MB)", (sizes, per, turn, send, notes) => {
    const p = planImages(sizes.map((s) => s * MB), per * MB, turn * MB);
    expect(p.send).toEqual(send);
    expect(p.notes).toHaveLength(notes);
  });

  test("converters are argument arrays: sips on macOS, heif-convert / ffmpeg elsewhere", () => {
    expect(heicCommand("darwin", "/a.heic", "/a.jpg")[0]).toBe("sips");
    expect(heicCommand("linux", "/a.heic", "/a.jpg")).toEqual(["heif-convert", ["-q", "85", "/a.heic", "/a.jpg"]]);
    expect(audioCommand("darwin", "/a.caf", "/a.m4a")[0]).toBe("afconvert");
    expect(audioCommand("linux", "/a.caf", "/a.m4a")[0]).toBe("ffmpeg");
  });

  test("imsg's converted_path/converted_mime_type are parsed, round-trip, and are preferred", () => {
    const raw = {
      id: 5,
      is_from_me: false,
      attachments: [{
        original_path: "/x/Audio Message.caf",
        mime_type: "audio/x-caf",
        transfer_name: "Audio Message.caf",
        converted_path: "/x/Audio Message.m4a",
        converted_mime_type: "audio/mp4",
      }],
    };
    const p = parseMessage(raw);
    if (!("message" in p)) throw new Error(p.error);
    const a = p.message.attachments[0]!;
    expect(a).toMatchObject({ convertedPath: "/x/Audio Message.m4a", convertedMimeType: "audio/mp4" });
    expect(convertedAttachment(a)).toMatchObject({ originalPath: "/x/Audio Message.m4a", mimeType: "audio/mp4", transferName: "Audio Message.m4a" });
    const again = parseMessage(toWireMessage(p.message));
    expect("message" in again && again.message.attachments[0]).toMatchObject({ convertedPath: "/x/Audio Message.m4a", convertedMimeType: "audio/mp4" });
    expect(convertedAttachment({ ...a, convertedPath: undefined })).toBeUndefined();
    expect(preferred({ path: "/c/a.caf", mimeType: "audio/x-caf", name: "a.caf", size: 1, convertedPath: "/c/a-1.m4a", convertedMimeType: "audio/mp4" }))
      .toEqual({ path: "/c/a-1.m4a", mimeType: "audio/mp4", name: "a.m4a" });
  });
});

// ---------------------------------------------------------------------------------------------
// A loopback OpenAI-compatible endpoint

type Seen = { path: string; json?: any; form?: any };
let server: Server;
let base: string;
const seen: Seen[] = [];
let transcribeStatus = 200;
let dir: string;

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = await readBody(req);
    if (req.url === "/v1/audio/transcriptions") {
      const form = await new Request("http://x/", { method: "POST", headers: { "content-type": req.headers["content-type"]! }, body }).formData();
      seen.push({ path: req.url, form });
      res.writeHead(transcribeStatus, { "content-type": "application/json" });
      return res.end(transcribeStatus === 200 ? JSON.stringify({ text: "  call me\nwhen you land " }) : "{}");
    }
    const json = JSON.parse(body.toString("utf8"));
    seen.push({ path: req.url!, json });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ choices: [{ message: { role: "assistant", content: "ok" } }] }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  seen.length = 0;
  transcribeStatus = 200;
  dir = mkdtempSync(join(tmpdir(), "media-test-"));
});

const agent = (openai: Record<string, unknown> = {}): AgentConfig => ({
  id: "v",
  default: true,
  timeoutSeconds: 20,
  openai: { baseUrl: base, model: "m", ...openai },
});
const turn = (attachments: AgentTurn["attachments"], body: string): AgentTurn => ({
  event: "message",
  participants: [],
  createdAt: "2026-01-01T00:00:00.000Z",
  sessionKey: "agent:v:main",
  agentId: "v",
  accountId: "default",
  chatType: "direct",
  sender: "+15550001111",
  chatId: 1,
  chatGuid: "iMessage;-;+15550001111",
  chatName: "",
  messageId: 1,
  messageGuid: "G1",
  text: "",
  body,
  attachments,
  wasMentioned: false,
  commandAuthorized: false,
  history: [],
  actions: { react: false, emoji: false, replyTo: false },
});
const att = (src: string | Buffer, name: string, mimeType: string, extra: Partial<AgentTurn["attachments"][number]> = {}) => {
  const path = join(dir, name);
  if (typeof src === "string" && existsSync(src)) copyFileSync(src, path);
  else writeFileSync(path, src);
  return { path, mimeType, name, size: readFileSync(path).byteLength, ...extra };
};
const chat = () => seen.find((s) => s.path === "/v1/chat/completions")!.json;
const userMsg = () => chat().messages.at(-1);

/** A short real WAV (PCM 8 kHz mono, a tone) — made up, no recording. */
function wav(): Buffer {
  const n = 800;
  const data = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) data.writeInt16LE(Math.round(8000 * Math.sin(i / 4)), i * 2);
  const h = Buffer.alloc(44);
  h.write("RIFF", 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write("WAVEfmt ", 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(16000, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write("data", 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

describe("runOpenAiAgent with media", () => {
  test("vision on: a JPEG photo arrives as an image_url part with its exact bytes as a data URI", async () => {
    const a = att(join(FIX, "gradient.jpg"), "IMG_0001.jpg", "image/jpeg");
    await runOpenAiAgent(agent({ vision: true }), turn([a], "look"));
    const u = userMsg();
    expect(u.content[0]).toEqual({ type: "text", text: "look" });
    expect(u.content[1]).toEqual({
      type: "image_url",
      image_url: { url: `data:image/jpeg;base64,${readFileSync(join(FIX, "gradient.jpg")).toString("base64")}` },
    });
  });

  test("vision off (the default): the photo is not sent, the user message stays plain text", async () => {
    const a = att(join(FIX, "gradient.jpg"), "IMG_0001.jpg", "image/jpeg");
    await runOpenAiAgent(agent(), turn([a], "<media:image>"));
    expect(userMsg()).toEqual({ role: "user", content: "<media:image>" });
  });

  test("a HEIC photo arrives converted to JPEG; the JPEG is kept next to the original in the cache", async () => {
    const which = spawnSync("heif-convert", ["--help"]);
    if (which.error) throw new Error("heif-convert is missing: install Debian's libheif-examples (apt-get install libheif-examples); .ci/run does");
    const a = att(join(FIX, "gradient.heic"), "IMG_0002.heic", "image/heic");
    await runOpenAiAgent(agent({ vision: true }), turn([a], "<media:image>"));
    const url: string = userMsg().content[1].image_url.url;
    expect(url.startsWith("data:image/jpeg;base64,")).toBe(true);
    const bytes = Buffer.from(url.slice("data:image/jpeg;base64,".length), "base64");
    expect([...bytes.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
    expect(readFileSync(join(dir, "IMG_0002.jpg"))).toEqual(bytes);
  });

  test("an image over the per-image cap is not sent and a note line says so", async () => {
    const a = att(Buffer.concat([readFileSync(join(FIX, "gradient.jpg")), Buffer.alloc(MB + 10)]), "big.jpg", "image/jpeg");
    await runOpenAiAgent(agent({ vision: true, imageMaxMb: 1 }), turn([a], "big one"));
    expect(userMsg().content).toBe("big one\n[image not sent: 1.1 MB is over the 1.0 MB limit]");
  });

  test("a voice memo reaches /audio/transcriptions (model, file) and the transcript is in the chat request", async () => {
    const a = att(wav(), "memo.wav", "audio/wav");
    await runOpenAiAgent(agent({ transcribeModel: "whisper-test" }), turn([a], "<media:audio>"));
    const t = seen.find((s) => s.path === "/v1/audio/transcriptions")!;
    expect(t.form!.get("model")).toBe("whisper-test");
    const f = t.form!.get("file") as File;
    expect(f.name).toBe("memo.wav");
    expect(Buffer.from(await f.arrayBuffer()).equals(wav())).toBe(true);
    expect(userMsg().content).toBe("<media:audio>\n[voice memo transcript] call me when you land");
  });

  test("imsg's converted M4A is what gets transcribed, not the CAF", async () => {
    const conv = att("m4a-bytes", "Audio Message-1.m4a", "audio/mp4");
    const a = att("caf-bytes", "Audio Message.caf", "audio/x-caf", { convertedPath: conv.path, convertedMimeType: "audio/mp4" });
    await runOpenAiAgent(agent({ transcribeModel: "whisper-test" }), turn([a], "<media:audio>"));
    const f = seen.find((s) => s.path === "/v1/audio/transcriptions")!.form!.get("file") as File;
    expect(f.name).toBe("Audio Message.m4a");
    expect(await f.text()).toBe("m4a-bytes");
  });

  test("a transcription HTTP error does not fail the turn: the placeholder stays", async () => {
    transcribeStatus = 500;
    const a = att(wav(), "memo.wav", "audio/wav");
    const r = await runOpenAiAgent(agent({ transcribeModel: "whisper-test" }), turn([a], "<media:audio>"));
    expect(r.text).toBe("ok");
    expect(userMsg().content).toBe("<media:audio>");
  });

  test("no transcribeModel: audio never leaves the machine", async () => {
    const a = att(wav(), "memo.wav", "audio/wav");
    await runOpenAiAgent(agent(), turn([a], "<media:audio>"));
    expect(seen.map((s) => s.path)).toEqual(["/v1/chat/completions"]);
  });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));
