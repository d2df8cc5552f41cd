// Media understanding for the openai backend: photos as image_url parts (HEIC converted to JPEG first), voice
// memos transcribed through the endpoint's /audio/transcriptions. Every failure degrades to the placeholder
// text the turn already has, with a debug log line saying why; nothing here fails a turn.
import { readFile, rename, rm, stat } from "node:fs/promises";
import { posix } from "node:path";
import type { ImsgAttachment } from "./imsg.ts";
import { getLog } from "./log.ts";
import { runProcess } from "./proc.ts";

/** One attachment of a turn; `converted*` is imsg's own conversion (CAF → M4A, GIF → PNG) when it made one. */
export interface TurnAttachment {
  path: string;
  mimeType: string;
  name: string;
  size: number;
  convertedPath?: string;
  convertedMimeType?: string;
}

type OpenAiMedia = { vision?: boolean; transcribeModel?: string; imageMaxMb?: number; turnImagesMaxMb?: number; audioMaxMb?: number };

/** Defaults of the agent's `openai` media keys (the docs table below is rendered from these). */
export const MEDIA_DEFAULTS = { vision: false, imageMaxMb: 5, turnImagesMaxMb: 20, audioMaxMb: 25 } as const;

/** `agents.list[].openai` media keys, for docs/CONFIG.md. */
export const OPENAI_MEDIA_KEYS: { key: string; type: string; default?: string; description: string }[] = [
  {
    key: "vision",
    type: "boolean",
    default: String(MEDIA_DEFAULTS.vision),
    description:
      "send photos to the model as image_url parts (base64 data URIs; HEIC converted to JPEG). Off by default: a text-only model answers a request with image parts with an HTTP error, which would turn every photo into a failed turn; turn it on for a vision model",
  },
  {
    key: "transcribeModel",
    type: "string",
    description:
      "transcribe voice memos with this model through the same endpoint's /audio/transcriptions; the transcript goes into the user text as `[voice memo transcript] …`. Unset: no transcription (audio leaves the machine only when you ask for it)",
  },
  {
    key: "imageMaxMb",
    type: "integer 1–1024",
    default: String(MEDIA_DEFAULTS.imageMaxMb),
    description: "largest image sent (after conversion); a larger one is left out with a note line",
  },
  {
    key: "turnImagesMaxMb",
    type: "integer 1–1024",
    default: String(MEDIA_DEFAULTS.turnImagesMaxMb),
    description: "all images of one turn together; the ones past the cap are left out with a note line",
  },
  {
    key: "audioMaxMb",
    type: "integer 1–1024",
    default: String(MEDIA_DEFAULTS.audioMaxMb),
    description: "largest voice memo sent for transcription (OpenAI's own limit is 25 MB)",
  },
];

const MB = 1024 * 1024;
const CONVERT_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------------
// Kinds (pure)

const extOf = (name: string) => posix.extname(name).toLowerCase();

/** HEIC/HEIF by MIME type or file extension (Messages sometimes reports an empty or generic type). */
export function isHeic(mimeType: string, name: string): boolean {
  return /^image\/hei[cf](-sequence)?$/i.test(mimeType) || [".heic", ".heif"].includes(extOf(name));
}

const IMAGE_OK = new Set(["image/jpeg", "image/png", "image/webp", "image/gif"]);
const AUDIO_OK: Record<string, string> = {
  "audio/mpeg": ".mp3",
  "audio/mp3": ".mp3",
  "audio/mp4": ".m4a",
  "audio/m4a": ".m4a",
  "audio/x-m4a": ".m4a",
  "audio/wav": ".wav",
  "audio/x-wav": ".wav",
  "audio/wave": ".wav",
  "audio/ogg": ".ogg",
  "audio/webm": ".webm",
  "audio/flac": ".flac",
  "audio/x-flac": ".flac",
};

/** What to do with one attachment for the model. Pure. */
export function mediaAction(a: { mimeType: string; name: string }): "image" | "heic" | "audio" | "audio-convert" | "none" {
  const m = a.mimeType.toLowerCase();
  if (isHeic(m, a.name)) return "heic";
  if (IMAGE_OK.has(m)) return "image";
  if (m in AUDIO_OK) return "audio";
  // CAF (voice memos), AMR, 3GPP: the transcription endpoint accepts none of them.
  if (m.startsWith("audio/") || [".caf", ".amr"].includes(extOf(a.name))) return "audio-convert";
  return "none";
}

/** The file to use: imsg's converted file when it made one, else the original. Pure. */
export function preferred(a: TurnAttachment): { path: string; mimeType: string; name: string } {
  if (a.convertedPath && a.convertedMimeType) {
    const ext = AUDIO_OK[a.convertedMimeType.toLowerCase()] ?? (a.convertedMimeType === "image/png" ? ".png" : extOf(a.convertedPath));
    return { path: a.convertedPath, mimeType: a.convertedMimeType, name: `${posix.basename(a.name, extOf(a.name))}${ext}` };
  }
  return { path: a.path, mimeType: a.mimeType, name: a.name };
}

/**
 * The converter for HEIC → JPEG. macOS: `sips`, part of the system. Elsewhere: `heif-convert` from Debian's
 * libheif-examples — small, on the same libheif every distro ships, and it decodes the tiled (grid) HEICs an
 * iPhone writes, which Debian 12’s ffmpeg (5.1) cannot; ffmpeg is far heavier too. Pure.
 */
export function heicCommand(platform: string, src: string, dest: string): [string, string[]] {
  if (platform === "darwin") return ["sips", ["-s", "format", "jpeg", "-s", "formatOptions", "85", "-Z", "4096", src, "--out", dest]];
  return ["heif-convert", ["-q", "85", src, dest]];
}

/** CAF/AMR → M4A (AAC): macOS's own `afconvert`; elsewhere ffmpeg, when installed. Pure. */
export function audioCommand(platform: string, src: string, dest: string): [string, string[]] {
  if (platform === "darwin") return ["afconvert", ["-f", "m4af", "-d", "aac", src, dest]];
  return ["ffmpeg", ["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", src, "-vn", "-c:a", "aac", "-f", "mp4", dest]];
}

/** Which images fit the caps, in order; the rest get a note line. Pure. */
export function planImages(sizes: readonly number[], imageMax: number, turnMax: number): { send: boolean[]; notes: string[] } {
  let total = 0;
  const send: boolean[] = [];
  const notes: string[] = [];
  for (const s of sizes) {
    const fmt = (n: number) => `${(Math.ceil((n / MB) * 10) / 10).toFixed(1)} MB`; // rounded up: never "1.0 over 1.0"
    if (s > imageMax) {
      send.push(false);
      notes.push(`[image not sent: ${fmt(s)} is over the ${fmt(imageMax)} limit]`);
    } else if (total + s > turnMax) {
      send.push(false);
      notes.push(`[image not sent: the images of this message are over the ${fmt(turnMax)} limit]`);
    } else {
      total += s;
      send.push(true);
    }
  }
  return { send, notes };
}

/**
 * An attachment record for imsg's converted file, fetched like any attachment (same roots, same size cap);
 * undefined when imsg made none. Pure.
 */
export function convertedAttachment(a: ImsgAttachment): ImsgAttachment | undefined {
  if (!a.convertedPath || !a.convertedMimeType) return undefined;
  const stem = posix.basename(a.transferName || a.originalPath, extOf(a.transferName || a.originalPath));
  return { ...a, originalPath: a.convertedPath, mimeType: a.convertedMimeType, transferName: `${stem}${extOf(a.convertedPath)}`, totalBytes: 0 };
}

type Fetched = { ok: true; path: string; mimeType: string; name: string; size: number } | { ok: false; reason: string };

/** Fetches originals and imsg's converted files in one call; each result carries its converted file, if any. */
export async function fetchWithConverted(
  atts: readonly ImsgAttachment[],
  fetch: (list: ImsgAttachment[]) => Promise<Fetched[]>,
): Promise<{ result: Fetched; converted?: { path: string; mimeType: string } }[]> {
  const conv = atts.map(convertedAttachment);
  const extra = conv.filter((c): c is ImsgAttachment => c !== undefined);
  const res = await fetch([...atts, ...extra]);
  let j = atts.length;
  return atts.map((_, i) => {
    const result = res[i]!;
    if (!conv[i]) return { result };
    const c = res[j++]!;
    if (!c.ok) getLog("media").debug(`imsg's converted file not used: ${c.reason}`);
    return { result, ...(c.ok ? { converted: { path: c.path, mimeType: c.mimeType } } : {}) };
  });
}

// ---------------------------------------------------------------------------------------------
// Conversion (I/O)

/** One converter run; ok, or why not (stderr's last lines, bounded). */
async function run(cmd: string, args: string[], timeoutMs: number, signal?: AbortSignal): Promise<{ ok: true } | { ok: false; reason: string }> {
  const r = await runProcess(cmd, args, { timeoutMs, signal });
  if (r.aborted) return { ok: false, reason: `${cmd} cancelled` };
  if (r.spawnError) return { ok: false, reason: r.spawnError === "ENOENT" ? `${cmd} is not installed` : `${cmd}: ${r.spawnError}` };
  if (r.timedOut) return { ok: false, reason: `${cmd} timed out after ${timeoutMs} ms` };
  if (r.code === 0) return { ok: true };
  return { ok: false, reason: `${cmd} exited with ${r.code ?? r.signal}: ${r.stderr.trim().split("\n").slice(-2).join(" | ").slice(0, 300)}` };
}

/** Converts next to the source (the per-session media cache); the result path, or undefined (logged). */
async function convert(kind: "heic" | "audio", src: string, platform: string = process.platform, signal?: AbortSignal): Promise<string | undefined> {
  const dest = posix.join(posix.dirname(src), `${posix.basename(src, extOf(src))}.${kind === "heic" ? "jpg" : "m4a"}`);
  const tmp = `${dest}.part${kind === "heic" ? ".jpg" : ".m4a"}`;
  const [cmd, args] = kind === "heic" ? heicCommand(platform, src, tmp) : audioCommand(platform, src, tmp);
  const r = await run(cmd, args, CONVERT_TIMEOUT_MS, signal);
  try {
    if (!r.ok) throw new Error(r.reason);
    if ((await stat(tmp)).size === 0) throw new Error(`${cmd} wrote an empty file`);
    await rename(tmp, dest);
    return dest;
  } catch (e) {
    await rm(tmp, { force: true });
    getLog("media").debug(`cannot convert ${posix.basename(src)} (${kind}): ${(e as Error).message}`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The user message

export type ContentPart = { type: "text"; text: string } | { type: "image_url"; image_url: { url: string } };

export interface MediaContext {
  /** The endpoint base (…/v1) and the request headers (authorization), shared with the chat request. */
  baseUrl: string;
  headers: Record<string, string>;
  signal: AbortSignal;
  platform?: string;
}

/**
 * The user message content: the body, plus transcripts and notes, plus image parts when vision is on.
 * A plain string when there is no image, so text-only turns look exactly as before.
 */
export async function userContent(o: OpenAiMedia, body: string, atts: readonly TurnAttachment[], ctx: MediaContext): Promise<string | ContentPart[]> {
  const log = getLog("media");
  const vision = o.vision ?? MEDIA_DEFAULTS.vision;
  const images: { data: Buffer; mimeType: string }[] = [];
  const lines: string[] = [];
  for (const a of atts) {
    let f = preferred(a);
    let action = mediaAction(f);
    try {
      if ((action === "image" || action === "heic") && vision) {
        if (action === "heic") {
          const jpg = await convert("heic", f.path, ctx.platform, ctx.signal);
          if (!jpg) continue;
          f = { path: jpg, mimeType: "image/jpeg", name: posix.basename(jpg) };
        }
        images.push({ data: await readFile(f.path), mimeType: f.mimeType });
      } else if ((action === "audio" || action === "audio-convert") && o.transcribeModel) {
        if (action === "audio-convert") {
          const m4a = await convert("audio", f.path, ctx.platform, ctx.signal);
          if (!m4a) continue;
          f = { path: m4a, mimeType: "audio/mp4", name: `${posix.basename(f.name, extOf(f.name))}.m4a` };
          action = "audio";
        }
        const max = (o.audioMaxMb ?? MEDIA_DEFAULTS.audioMaxMb) * MB;
        const size = (await stat(f.path)).size;
        if (size > max) {
          lines.push(`[voice memo not transcribed: over the ${o.audioMaxMb ?? MEDIA_DEFAULTS.audioMaxMb} MB limit]`);
          continue;
        }
        const text = await transcribe(o.transcribeModel, await readFile(f.path), f, ctx);
        if (text) lines.push(`[voice memo transcript] ${text}`);
      }
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      log.debug(`media of ${a.name} not passed to the model: ${(e as Error).message}`);
    }
  }
  const plan = planImages(
    images.map((i) => i.data.byteLength),
    (o.imageMaxMb ?? MEDIA_DEFAULTS.imageMaxMb) * MB,
    (o.turnImagesMaxMb ?? MEDIA_DEFAULTS.turnImagesMaxMb) * MB,
  );
  const text = [body, ...lines, ...plan.notes].filter(Boolean).join("\n");
  const parts: ContentPart[] = images.filter((_, i) => plan.send[i]).map((i) => ({
    type: "image_url",
    image_url: { url: `data:${i.mimeType};base64,${i.data.toString("base64")}` },
  }));
  return parts.length ? [{ type: "text", text }, ...parts] : text;
}

const MAX_TRANSCRIPT = 8000;

/** POST /audio/transcriptions (multipart); the transcript text. Throws on HTTP or protocol errors. */
async function transcribe(model: string, data: Buffer, f: { mimeType: string; name: string }, ctx: MediaContext): Promise<string> {
  const form = new FormData();
  form.append("model", model);
  form.append("file", new Blob([new Uint8Array(data)], { type: f.mimeType }), f.name);
  const { "content-type": _json, ...headers } = ctx.headers;
  const url = `${ctx.baseUrl.replace(/\/+$/, "")}/audio/transcriptions`;
  const res = await fetch(url, { method: "POST", headers, body: form, signal: ctx.signal });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status} from ${url}`);
  }
  // The endpoint is untrusted: a transcript response past this size is refused, not buffered.
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const c of (res.body ?? []) as AsyncIterable<Uint8Array>) {
    if ((size += c.byteLength) > 256 * 1024) throw new Error("transcription response too large");
    chunks.push(c);
  }
  const body = Buffer.concat(chunks).toString("utf8");
  let text: unknown;
  try {
    text = (JSON.parse(body) as { text?: unknown }).text;
  } catch {
    throw new Error("transcription response is not JSON");
  }
  if (typeof text !== "string") throw new Error("transcription response has no text");
  // The transcript is untrusted model output placed in the user's turn: one line, bounded.
  return text.replace(/\s+/g, " ").trim().slice(0, MAX_TRANSCRIPT);
}
