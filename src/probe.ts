// The probe: every check a working gateway needs (docs/SPEC.md §9), each with ok, detail and a hint naming the fix.
// It never reports ok for a request that failed, and it is bounded by one overall deadline: the checks run side
// by side within the limit minus a shutdown reserve, so a hung imsg cannot starve the others.
import { accessSync, closeSync, constants, openSync, readSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { checkKnownHost, mentionsSsh, resolveRemoteHost } from "./ssh.ts";
import type { AgentConfig, Config, ImessageAccount } from "./config.ts";
import { routeAgent } from "./agents.ts";
import { type ImsgInfo, imsgInfo } from "./capabilities.ts";
import { chatsList, initialize, messagesHistory, parseVersion, versionSupportsRpc } from "./imsg.ts";
import { dmSessionMayBeShared, SHARED_SESSION_FIX, SHARED_SESSION_WARNING } from "./policy.ts";
import { classifyError, type CommandResult, ImsgPermissionError, ImsgSpawnError, RpcClient, RpcTimeoutError, runImsg } from "./rpc.ts";
import { GATEWAY_NOT_REQUIRED, gatewayCheck } from "./probe-gateway.ts";
import { newestRowid } from "./watch.ts";

export { ADVANCED, type Advanced, describeImsgInfo, type ImsgInfo, imsgInfo, UNDISCOVERABLE } from "./capabilities.ts";

/** One probe check as printed in the JSON report (docs/SPEC.md §4.1). */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
  /** Passes, but needs attention (a privacy consequence of the config); shown as `warn` with its hint. */
  warning?: boolean;
}

/** Every check of one account; ok when every check is ok. */
export interface AccountReport {
  accountId: string;
  ok: boolean;
  checks: Check[];
  /** What imsg says about itself; only from imsg with `initialize`/`status` (0.14+). Informational. */
  imsg?: ImsgInfo;
}

/** How one account is probed. */
export interface ProbeOptions {
  stateDir: string;
  /** Overall time limit; the probe ends near it even when imsg hangs. */
  timeoutMs: number;
  requireGateway: boolean;
  /** Watch silence (ms) after which a running gateway counts as stale when imsg has newer rows. */
  staleAfterMs?: number;
}

/** What cliPath is: an SSH wrapper script, another script, or a binary. Hints differ for each. */
export type CliKind = "ssh" | "script" | "binary";

// Appended to a non-ok "gateway running" detail when --require-gateway was not given (the check then passes).

const DEFAULT_DB = "~/Library/Messages/chat.db";

const FDA_WHO = "Grant Full Disk Access (System Settings → Privacy & Security → Full Disk Access) to the process that runs imsg and its parent: " +
  "your terminal for interactive runs; for launchd the gateway binary; over SSH `sshd-keygen-wrapper` on the Mac.";

// imsg before 0.14 cannot tell a wrong path from missing access, and needs a restart after the grant.
const FDA_HINT = `${FDA_WHO} Then restart it. Also check that dbPath points at an existing chat.db.`;

// imsg 0.14+ says which it is, and reopens the database by itself once access is granted.
const FDA_ONLY_HINT = `${FDA_WHO} The running imsg picks it up by itself.`;
const DBPATH_HINT =
  "No chat.db at that path: fix channels.imessage.dbPath (or remove it for ~/Library/Messages/chat.db) so it names the Messages database on the Mac that runs imsg.";

/** Finds an executable: a path is checked directly, a bare name is searched on PATH. */
export function findExecutable(cliPath: string): string | undefined {
  const candidates = cliPath.includes("/") ? [cliPath] : (process.env.PATH ?? "").split(delimiter).filter(Boolean).map((d) => join(d, cliPath));
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** The part of the time limit kept for shutting imsg down: a quarter of it, at most 500 ms. */
export function shutdownReserveMs(timeoutMs: number): number {
  return Math.min(500, Math.floor(timeoutMs / 4));
}

/** Classifies an executable from its first bytes: `#!` scripts that run ssh, other scripts, binaries. */
export function cliKind(head: string): CliKind {
  if (!head.startsWith("#!") || head.includes("\u0000")) return "binary";
  return mentionsSsh(head) ? "ssh" : "script";
}

/** Reads the start of the file (a wrapper is small; a binary's first bytes are enough to tell). */
function readHead(path: string): string {
  const buf = new Uint8Array(65536);
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    return new TextDecoder().decode(buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)));
  } catch {
    return "";
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** True for a check that passes only because it is not required: the text output shows it as `info`. */
export function isInfo(c: Check): boolean {
  return c.ok && c.detail.endsWith(GATEWAY_NOT_REQUIRED);
}

/** Runs every check for one account. */
export async function probeAccount(config: Config, account: ImessageAccount, opts: ProbeOptions): Promise<AccountReport> {
  const deadline = Date.now() + opts.timeoutMs;
  // Requests and checks get the limit minus the reserve; the reserve covers stopping imsg (and a late answer).
  const reserveMs = shutdownReserveMs(opts.timeoutMs);
  const budgetMs = opts.timeoutMs - reserveMs;
  const bin = findExecutable(account.cliPath);
  const kind = bin ? cliKind(readHead(bin)) : "binary";
  const agents = agentsFor(config, account.accountId);

  const [imsg, remote, agentChecks] = await Promise.all([
    bin ? probeImsg(bin, account, kind, { budgetMs, reserveMs, deadline, limitMs: opts.timeoutMs }) : Promise.resolve<ImsgProbe>({ checks: [] }),
    remoteChecks(account, kind),
    agents.length ? Promise.all(agents.map((a) => checkAgent(a, budgetMs))) : Promise.resolve<Check[]>([{
      name: "agent backend reachable",
      ok: false,
      detail: "no agent configured",
      hint: "Add agents.list with a command or openai backend.",
    }]),
  ]);

  const checks: Check[] = [
    { name: "config valid", ok: true, detail: config.path },
    bin ? { name: "imsg binary found", ok: true, detail: bin } : {
      name: "imsg binary found",
      ok: false,
      detail: `${account.cliPath} not found${account.cliPath.includes("/") ? "" : " on PATH"} or not executable`,
      hint:
        "Install imsg on the Mac (`brew install steipete/tap/imsg`) or set channels.imessage.cliPath to its absolute path or to your SSH wrapper (chmod +x).",
    },
    ...imsg.checks,
    ...remote,
    ...agentChecks,
    privacyCheck(config, account),
    gatewayCheck(account, opts, imsg.newest, imsg.newestExact),
  ];
  return { accountId: account.accountId, ok: checks.every((c) => c.ok), checks, ...(imsg.info ? { imsg: imsg.info } : {}) };
}

/** The imsg checks, the newest row (staleness check) and what imsg 0.14+ reports about itself. */
interface ImsgProbe {
  checks: Check[];
  newest?: number;
  /** True when `newest` is imsg's real newest row (0.14+ messages.after), not a sample. */
  newestExact?: boolean;
  info?: ImsgInfo;
}

/** The probe's time limit split into the part for requests and checks and the part kept for shutdown. */
interface Timing {
  budgetMs: number;
  reserveMs: number;
  deadline: number;
  limitMs: number;
}

/** "rpc supported", "RPC handshake" and "Messages database readable", run side by side. */
async function probeImsg(bin: string, account: ImessageAccount, kind: CliKind, t: Timing): Promise<ImsgProbe> {
  const [help, ver, hs] = await Promise.all([
    runImsg(bin, ["rpc", "--help"], t.budgetMs),
    runImsg(bin, ["--version"], t.budgetMs),
    handshake(bin, account, kind, t),
  ]);
  return { checks: [rpcSupported(account.cliPath, kind, help, ver), ...hs.checks], newest: hs.newest, newestExact: hs.newestExact, info: hs.info };
}

function rpcSupported(cliPath: string, kind: CliKind, help: CommandResult, ver: CommandResult): Check {
  const name = "rpc supported";
  const helpOut = `${help.stdout}\n${help.stderr}`;
  const first = help.stdout.split("\n").find((l) => l.trim())?.trim() ?? "";
  const v3 = parseVersion(ver.stdout);
  const vtext = v3 ? v3.join(".") : "unknown version";
  if (help.timedOut) {
    return {
      name,
      ok: false,
      detail: "`rpc --help` did not answer in time",
      hint: kind === "ssh"
        ? "Check that `ssh -T host imsg rpc --help` works non-interactively (BatchMode=yes, keys, host key in known_hosts)."
        : `Run \`${cliPath} rpc --help\` by hand to see what it waits for.`,
    };
  }
  if (first.startsWith("imsg rpc") && (!v3 || versionSupportsRpc(v3))) return { name, ok: true, detail: `imsg ${vtext}` };
  if ((v3 && !versionSupportsRpc(v3)) || /unknown (sub)?command/i.test(helpOut) || /^imsg \d/.test(first)) {
    return { name, ok: false, detail: `imsg ${vtext} has no \`rpc\` command (needs 0.3.0 or newer)`, hint: "Update imsg: `brew upgrade steipete/tap/imsg`." };
  }
  const out = (help.stdout + help.stderr).trim().split("\n").slice(0, 3).join(" | ");
  const why = help.error ? help.error.message : `exit ${help.code ?? help.signal}`;
  return {
    name,
    ok: false,
    detail: `\`${cliPath} rpc --help\` failed (${why})${out ? `: ${out}` : ""}`,
    hint: kind === "ssh"
      ? `Run \`${cliPath} rpc --help\` by hand: ssh must connect without a prompt (keys, host key in known_hosts) and run imsg on the Mac.`
      : kind === "script"
      ? `Run \`${cliPath} rpc --help\` by hand; a wrapper must end with \`exec /path/to/imsg "$@"\`.`
      : "Run `imsg rpc --help` by hand to see its error; update imsg if it is older than 0.3.0.",
  };
}

/**
 * `initialize` (0.14+; undefined on 0.9) and `chats.list {limit:1}` side by side over a real `imsg rpc`, then the
 * newest row (for the gateway staleness check). The handshake verdict is chats.list's: it needs the database.
 */
async function handshake(bin: string, account: ImessageAccount, kind: CliKind, t: Timing): Promise<ImsgProbe> {
  const { budgetMs, limitMs } = t;
  const start = Date.now();
  const client = RpcClient.start({ cliPath: bin, dbPath: account.dbPath, timeoutMs: budgetMs, tag: "probe" });
  let chats: unknown[] | undefined;
  let error: unknown;
  let newest: number | undefined;
  let newestExact = false;
  // chats.list goes first: a child that dies on its first request must fail it with the exit reason, not with
  // a write error. initialize's failures (timeout, permission, crash) show, better worded, as chats.list's.
  const list = chatsList(client, 1, budgetMs);
  const init = initialize(client, 1, budgetMs).catch(() => undefined);
  try {
    chats = await list;
    const c = chats[0] as { id?: unknown } | undefined;
    const left = start + budgetMs - Date.now();
    if (c && typeof c.id === "number" && left > 0) newest = (await messagesHistory(client, c.id, { limit: 1 }, left).catch(() => []))[0]?.id;
    // 0.14+ can say exactly where the database ends, which shows a cursor left behind by a replaced database.
    if ((await init)?.methods.includes("messages.after")) {
      const rest = start + budgetMs - Date.now();
      if (rest > 0) {
        const exact = await newestRowid(client, rest, true).catch(() => undefined);
        if (exact !== undefined) [newest, newestExact] = [exact, true];
      }
    }
  } catch (e) {
    error = e;
  }
  // Closing stdin ends a healthy imsg, and makes a buffering wrapper flush the answer it held back.
  const grace = Math.min(t.reserveMs, Math.max(0, t.deadline - Date.now()));
  const backstop = setTimeout(() => client.kill(), grace + 100);
  const st = await init;
  await client.stop(grace);
  clearTimeout(backstop);
  const info = st && imsgInfo(st);

  const db = account.dbPath ?? DEFAULT_DB;
  const hs = "RPC handshake";
  const dbName = "Messages database readable";
  const notChecked: Check = { name: dbName, ok: false, detail: "not checked: no RPC answer" };
  if (chats) {
    return {
      checks: [
        { name: hs, ok: true, detail: `chats.list answered (${chats.length} chat${chats.length === 1 ? "" : "s"})` },
        { name: dbName, ok: true, detail: st?.database.path ?? db },
      ],
      newest,
      newestExact,
      info,
    };
  }
  const why = classifyError(error);
  if (why?.kind === "database_unavailable" && !(error instanceof ImsgPermissionError)) {
    // imsg 0.14+ answered -32002 and says whether the file is missing or cannot be opened.
    const hint = why.cause === "missing" ? DBPATH_HINT : why.cause === "permission" ? FDA_ONLY_HINT : FDA_HINT;
    return {
      checks: [
        {
          name: hs,
          ok: false,
          detail: "imsg answered, but it cannot open the Messages database",
          hint: why.cause === "missing" ? "Fix dbPath (see the next check)." : "See the next check.",
        },
        { name: dbName, ok: false, detail: `imsg cannot open the Messages database at ${why.path ?? db}: ${why.detail}`, hint },
      ],
      info,
    };
  }
  if (error instanceof ImsgPermissionError) {
    return {
      checks: [
        {
          name: hs,
          ok: false,
          detail: "imsg answered, but it cannot open the Messages database",
          hint: "Grant Full Disk Access to the process that runs imsg, or fix dbPath (see the next check).",
        },
        { name: dbName, ok: false, detail: `imsg cannot open the Messages database at ${db}`, hint: FDA_HINT },
      ],
    };
  }
  if (error instanceof RpcTimeoutError) {
    const buffered = client.lateReplies > 0;
    return {
      checks: [
        buffered
          ? {
            name: hs,
            ok: false,
            detail: `chats.list answered only after imsg's input was closed: ${account.cliPath} buffers its output (no answer within ${budgetMs} ms)`,
            hint: bufferingHint(kind),
          }
          : { name: hs, ok: false, detail: `chats.list did not answer within ${budgetMs} ms (of the probe's ${limitMs} ms limit)`, hint: hungHint(kind) },
        buffered ? { name: dbName, ok: false, detail: "not checked: the answer came too late", hint: bufferingHint(kind) } : notChecked,
      ],
      info,
    };
  }
  const hint = error instanceof ImsgSpawnError
    ? "Check cliPath: an absolute path, executable (chmod +x), scripts starting with a `#!` line."
    : kind === "ssh"
    ? `Run \`${account.cliPath} rpc\` by hand: ssh must connect without a prompt (keys, host key in known_hosts, BatchMode=yes) and start \`imsg rpc\` on the Mac.`
    : "Run `imsg rpc` by hand to see its error; update imsg if it is older than 0.3.0.";
  return { checks: [{ name: hs, ok: false, detail: (error as Error).message, hint }, notChecked], info };
}

function bufferingHint(kind: CliKind): string {
  const why = "The wrapper holds imsg's output back until it ends (a `$(…)` capture, or a pipe through sed/tee/grep).";
  return kind === "ssh"
    ? `${why} Make its last line exactly \`exec ssh -T host imsg "$@"\` so each answer passes straight through.`
    : `${why} End it with \`exec /path/to/imsg "$@"\` (over SSH: \`exec ssh -T host imsg "$@"\`) so each answer passes straight through.`;
}

function hungHint(kind: CliKind): string {
  const contacts = "On the Mac, a first run may be waiting for a Contacts permission prompt: run `imsg chats` there once in a terminal.";
  return kind === "ssh"
    ? `Check that \`ssh -T host imsg rpc\` runs without any prompt (BatchMode=yes, keys, known host) and that the wrapper uses \`exec ssh -T host imsg "$@"\`. ${contacts}`
    : `imsg accepted the request but never answered. ${contacts} Otherwise raise --timeout-ms (probeTimeoutMs).`;
}

/** "remoteHost valid and known" (only when attachments are fetched over SSH) and "attachment roots valid". */
async function remoteChecks(account: ImessageAccount, kind: CliKind): Promise<Check[]> {
  if (!account.includeAttachments) return [];
  const checks: Check[] = [];
  const name = "remoteHost valid and known";
  if (account.remoteHost?.trim() || kind === "ssh") {
    const r = resolveRemoteHost(account);
    if (!r.host) {
      checks.push({ name, ok: false, detail: r.reason ?? "no remote host", hint: 'Set channels.imessage.remoteHost to "host" or "user@host".' });
    } else if (await checkKnownHost(r.host, undefined, r.sshOptions)) {
      checks.push({ name, ok: true, detail: `${r.host} (${r.source}), host key in known_hosts` });
    } else {
      checks.push({
        name,
        ok: false,
        detail: `${r.host} (${r.source}) has no host key in ~/.ssh/known_hosts; SCP uses StrictHostKeyChecking=yes`,
        hint: `Connect once by hand to trust it: \`ssh ${r.host} true\` (or \`ssh-keyscan ${
          r.host.split("@").pop()
        } >> ~/.ssh/known_hosts\` after checking the fingerprint).`,
      });
    }
  }
  checks.push({
    name: "attachment roots valid",
    ok: true,
    detail: `local: ${account.attachmentRoots.join(", ")}; remote: ${account.remoteAttachmentRoots.join(", ")}`,
  });
  return checks;
}

function agentsFor(config: Config, accountId: string): AgentConfig[] {
  const ids = new Set<string>();
  const d = routeAgent({ agents: config.agents, bindings: [] }, accountId, { kind: "direct", id: "" });
  if (d) ids.add(d.id);
  for (const b of config.bindings) if (!b.match?.accountId || b.match.accountId === accountId) ids.add(b.agentId);
  return config.agents.filter((a) => ids.has(a.id));
}

async function checkAgent(a: AgentConfig, timeoutMs: number): Promise<Check> {
  const name = "agent backend reachable";
  if (a.command) {
    const exe = findExecutable(a.command[0]!);
    return exe ? { name, ok: true, detail: `agent "${a.id}": command ${exe}` } : {
      name,
      ok: false,
      detail: `agent "${a.id}": ${a.command[0]} not found or not executable`,
      hint: "Fix agents.list[].command[0] (absolute path, chmod +x).",
    };
  }
  const o = a.openai!;
  if (o.apiKeyEnv && !process.env[o.apiKeyEnv]) {
    return {
      name,
      ok: false,
      detail: `agent "${a.id}": ${o.apiKeyEnv} is not set in this environment`,
      hint: `Export ${o.apiKeyEnv} for the gateway (launchd: EnvironmentVariables in the plist).`,
    };
  }
  const url = `${o.baseUrl.replace(/\/+$/, "")}/models`;
  try {
    const headers: Record<string, string> = o.apiKeyEnv ? { authorization: `Bearer ${process.env[o.apiKeyEnv]}` } : {};
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    if (res.status >= 500 || res.status === 401 || res.status === 403) {
      return {
        name,
        ok: false,
        detail: `agent "${a.id}": ${url} answered HTTP ${res.status}`,
        hint: res.status >= 500 ? "The model server is failing." : "Check the API key.",
      };
    }
    return { name, ok: true, detail: `agent "${a.id}": ${o.baseUrl} answered (HTTP ${res.status})` };
  } catch (e) {
    return {
      name,
      ok: false,
      detail: `agent "${a.id}": cannot reach ${o.baseUrl}: ${(e as Error).message}`,
      hint: "Start the model server or fix openai.baseUrl.",
    };
  }
}

/** A warning, never a failure: sharing one DM session is the seed's default, but people should know what it means. */
function privacyCheck(config: Config, account: ImessageAccount): Check {
  const name = "DM sessions private";
  if (!dmSessionMayBeShared(config.session.dmScope, account)) return { name, ok: true, detail: `session.dmScope "${config.session.dmScope}"` };
  return { name, ok: true, warning: true, detail: SHARED_SESSION_WARNING, hint: SHARED_SESSION_FIX };
}
