// Agent routing (bindings, default agent), session keys, and the two backends: a command run once per
// turn (docs/SPEC.md §7.2) and an OpenAI-compatible /v1/chat/completions endpoint.
import { directivesPrompt, type ReplyDirectives, splitDirectives, type TurnActions } from "./actions.ts";
import type { AgentConfig, Binding, Config } from "./config.ts";
import { getLog } from "./log.ts";
import { type ContentPart, type TurnAttachment, userContent } from "./media.ts";
import type { Peer } from "./policy.ts";
import { runProcess } from "./proc.ts";
import type { ReactionEvent } from "./reactions.ts";
import { clip } from "./text.ts";

/** The agent a binding selects (most specific match wins), else the default agent. Pure. */
export function routeAgent(cfg: Pick<Config, "agents" | "bindings">, accountId: string, peer: Peer): AgentConfig | undefined {
  let best: { agent: AgentConfig; score: number } | undefined;
  for (const b of cfg.bindings) {
    const score = bindingScore(b, accountId, peer);
    if (score < 0) continue;
    const agent = cfg.agents.find((a) => a.id === b.agentId);
    if (agent && (!best || score > best.score)) best = { agent, score };
  }
  return best?.agent ?? defaultAgent(cfg.agents);
}

export function defaultAgent(agents: AgentConfig[]): AgentConfig | undefined {
  return agents.find((a) => a.default) ?? agents[0];
}

function bindingScore(b: Binding, accountId: string, peer: Peer): number {
  const m = b.match ?? {};
  if (m.channel !== undefined && m.channel.toLowerCase() !== "imessage") return -1;
  let score = 0;
  if (m.accountId !== undefined) {
    if (m.accountId !== accountId) return -1;
    score += 1;
  }
  if (m.peer !== undefined) {
    if (m.peer.kind !== peer.kind) return -1;
    const id = m.peer.id.replace(/^chat_id:/i, "");
    if (id !== peer.id) return -1;
    score += 2;
  }
  return score;
}

export type DmScope = Config["session"]["dmScope"];

/** docs/SPEC.md §8.1: groups `agent:<id>:imessage:group:<chat_id>`; DMs follow `session.dmScope`. Pure. */
export function sessionKey(agentId: string, accountId: string, peer: Peer, session: { dmScope: DmScope; mainKey: string }): string {
  if (peer.kind === "group") return `agent:${agentId}:imessage:group:${peer.id}`;
  switch (session.dmScope) {
    case "per-peer":
      return `agent:${agentId}:dm:${peer.id}`;
    case "per-channel-peer":
      return `agent:${agentId}:imessage:dm:${peer.id}`;
    case "per-account-channel-peer":
      return `agent:${agentId}:imessage:${accountId}:dm:${peer.id}`;
    default:
      return `agent:${agentId}:${session.mainKey}`;
  }
}

/** What a backend receives for one turn (the command backend gets exactly this on stdin). */
export interface AgentTurn {
  /** "message": someone wrote; "reaction": a tapback (see `reaction`), an event to note, not a question. */
  event: "message" | "reaction";
  sessionKey: string;
  agentId: string;
  accountId: string;
  chatType: "direct" | "group";
  sender: string;
  /** The sender's Contacts name, when imsg reports one. */
  senderName?: string;
  /** The chat's members (handles), with names where imsg has reported them. */
  participants: { handle: string; name?: string }[];
  /** When the message was sent (ISO 8601). */
  createdAt: string;
  chatId: number;
  chatGuid: string;
  chatName: string;
  messageId: number;
  messageGuid: string;
  /** Guid of the message this one replies to. */
  replyToGuid?: string;
  text: string;
  body: string;
  attachments: TurnAttachment[];
  wasMentioned: boolean;
  commandAuthorized: boolean;
  history: { role: "user" | "assistant"; text: string }[];
  /** The group's systemPrompt (groups.<chat_id|*>.systemPrompt). */
  systemPrompt?: string;
  /** Only for event "reaction". */
  reaction?: ReactionEvent;
  /** The reply directives the gateway will honour this turn (config × backend × this Mac, as last reported). */
  actions: TurnActions;
}

export interface AgentReply {
  text: string;
  /** Absolute paths from `MEDIA:` lines (command backend only). */
  media: string[];
  /** `REACT:` / `REPLY-TO:` lines as written, taken out of `text`; resolved by the turn (account.ts). */
  directives?: ReplyDirectives;
  /** Directive lines beyond the first of their kind, removed and not honoured (for the log). */
  extraDirectives?: string[];
}

export class AgentError extends Error {
  constructor(
    message: string,
    /** "cancelled": the caller's signal aborted the turn (shutdown or /stop), not a failure of the agent. */
    readonly kind: "timeout" | "cancelled" | "exit" | "spawn" | "http" | "protocol",
  ) {
    super(message);
    this.name = "AgentError";
  }
}

/**
 * Splits backend output into text, `MEDIA:<absolute path>` lines and reply directives (`REACT:`, `REPLY-TO:`).
 * Relative paths are not media: they stay in the text so nothing is attached by accident. `media: false` (the
 * openai backend: model output is untrusted) leaves MEDIA lines in the text. Pure.
 */
export function parseReply(stdout: string, opts: { media?: boolean } = {}): AgentReply {
  const media: string[] = [];
  const keep: string[] = [];
  for (const line of stdout.replace(/\r\n/g, "\n").split("\n")) {
    const m = opts.media === false ? null : /^MEDIA:(\/.*)$/.exec(line.trim());
    if (m) media.push(m[1]!.trim());
    else keep.push(line);
  }
  const { text, directives, extra } = splitDirectives(keep.join("\n"));
  return {
    text,
    media,
    ...(Object.keys(directives).length ? { directives } : {}),
    ...(extra.length ? { extraDirectives: extra } : {}),
  };
}

/** Runs the command backend once: JSON on stdin, reply on stdout; non-zero exit or timeout → AgentError. */
export async function runCommandAgent(agent: AgentConfig, turn: AgentTurn, signal?: AbortSignal): Promise<AgentReply> {
  // An abort listener added to an already aborted signal never fires: check first.
  if (signal?.aborted) throw new AgentError(`agent "${agent.id}" cancelled`, "cancelled");
  const [cmd, ...args] = agent.command!;
  const r = await runProcess(cmd!, args, {
    timeoutMs: agent.timeoutSeconds * 1000,
    input: JSON.stringify(turn) + "\n",
    signal,
    env: {
      ...process.env,
      OPENCLAW_SESSION_KEY: turn.sessionKey,
      OPENCLAW_AGENT_ID: turn.agentId,
      OPENCLAW_ACCOUNT_ID: turn.accountId,
      OPENCLAW_CHAT_TYPE: turn.chatType,
    },
  });
  if (r.spawnError) throw new AgentError(`cannot start agent "${agent.id}" (${cmd}): ${r.spawnError}`, "spawn");
  if (r.aborted) throw new AgentError(`agent "${agent.id}" cancelled`, "cancelled");
  if (r.timedOut) throw new AgentError(`agent "${agent.id}" timed out after ${agent.timeoutSeconds}s`, "timeout");
  // proc logs the cut too; this line names the agent, so the operator knows whose output was too long.
  if (r.stdoutCut) getLog("agents").warn(`agent "${agent.id}" printed more than the output cap; the reply was cut there`);
  if (r.code === 0) return parseReply(r.stdout);
  // The stderr tail may quote message text and full handles: debug only, never in the error (logged at warn).
  const tail = clip(r.stderr.trim().split("\n").slice(-3).join(" | "));
  if (tail) getLog("agents").debug(`agent "${agent.id}" stderr: ${tail}`);
  throw new AgentError(`agent "${agent.id}" exited with ${r.code !== null ? `code ${r.code}` : `signal ${r.signal}`}`, "exit");
}

/** The model endpoint is untrusted: a reply body larger than this is refused rather than buffered. */
const MAX_HTTP_BODY = 4 * 1024 * 1024;

async function readCapped(res: Response, max: number): Promise<string> {
  if (!res.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += c.byteLength;
    if (size > max) throw new Error(`response larger than ${max} bytes`);
    chunks.push(c);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/**
 * One turn against an OpenAI-compatible endpoint. MEDIA lines are NOT honoured (model output is untrusted); its
 * directives are parsed, and the turn resolves them with the model's narrower limits.
 */
export async function runOpenAiAgent(agent: AgentConfig, turn: AgentTurn, signal?: AbortSignal): Promise<AgentReply> {
  if (signal?.aborted) throw new AgentError(`agent "${agent.id}" cancelled`, "cancelled");
  const o = agent.openai!;
  const messages: { role: string; content: string | ContentPart[] }[] = [];
  const system = [o.systemPrompt, turn.systemPrompt].filter(Boolean).join("\n\n");
  if (system) messages.push({ role: "system", content: system });
  const directives = directivesPrompt(turn.actions);
  if (directives) messages.push({ role: "system", content: directives });
  for (const h of turn.history) messages.push({ role: h.role, content: h.text });
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (o.apiKeyEnv) {
    const key = process.env[o.apiKeyEnv];
    if (!key) throw new AgentError(`agent "${agent.id}": environment variable ${o.apiKeyEnv} is not set`, "http");
    headers.authorization = `Bearer ${key}`;
  }
  const url = `${o.baseUrl.replace(/\/+$/, "")}/chat/completions`;
  // One controller per turn, its timer cleared and its listener removed when the turn ends: AbortSignal.timeout
  // and AbortSignal.any would keep every turn's signal alive for the whole timeout on a busy gateway.
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort();
  }, agent.timeoutSeconds * 1000);
  const onAbort = () => ctl.abort();
  signal?.addEventListener("abort", onAbort);
  let res: Response;
  let body: string;
  try {
    // A tapback is something that happened in the chat, not something the person asked.
    if (turn.event === "reaction") messages.push({ role: "system", content: turn.body });
    else messages.push({ role: "user", content: await userContent(o, turn.body, turn.attachments, { baseUrl: o.baseUrl, headers, signal: ctl.signal }) });
    res = await fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify({ model: o.model, messages, user: turn.sessionKey }),
      signal: ctl.signal,
    });
    body = await readCapped(res, MAX_HTTP_BODY);
  } catch (e) {
    const err = e as Error;
    if (timedOut) throw new AgentError(`agent "${agent.id}": timed out after ${agent.timeoutSeconds}s`, "timeout");
    if (ctl.signal.aborted) throw new AgentError(`agent "${agent.id}" cancelled`, "cancelled");
    throw new AgentError(`agent "${agent.id}": ${err.message}`, "http");
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
  if (!res.ok) throw new AgentError(`agent "${agent.id}": HTTP ${res.status} from ${url}`, "http");
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new AgentError(`agent "${agent.id}": response is not JSON`, "protocol");
  }
  const content = (json as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]?.message?.content;
  if (typeof content !== "string") throw new AgentError(`agent "${agent.id}": no choices[0].message.content in response`, "protocol");
  return parseReply(content, { media: false });
}

/** Runs whichever backend the agent has. */
export function runAgent(agent: AgentConfig, turn: AgentTurn, signal?: AbortSignal): Promise<AgentReply> {
  if (agent.command) return runCommandAgent(agent, turn, signal);
  if (agent.openai) return runOpenAiAgent(agent, turn, signal);
  return Promise.reject(new AgentError(`agent "${agent.id}" has no backend`, "protocol"));
}
