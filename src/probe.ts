// The probe: every check a working gateway needs (CONTRACT §7), each with ok, detail and a hint naming the fix.
// It never reports ok for a request that failed, and it is bounded by one overall deadline.
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { checkKnownHost, resolveRemoteHost } from "./attachments.ts";
import type { AgentConfig, Config, ImessageAccount } from "./config.ts";
import { routeAgent } from "./agents.ts";
import { chatsList, messagesHistory, parseVersion, versionSupportsRpc } from "./imsg.ts";
import { readLock } from "./lock.ts";
import { ImsgPermissionError, ImsgSpawnError, RpcClient, RpcTimeoutError, runImsg } from "./rpc.ts";
import { Store } from "./store.ts";
import { readFileSync } from "node:fs";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  hint?: string;
}

export interface AccountReport {
  accountId: string;
  ok: boolean;
  checks: Check[];
}

export interface ProbeOptions {
  stateDir: string;
  timeoutMs: number;
  requireGateway: boolean;
  /** Watch silence (ms) after which a running gateway counts as stale when imsg has newer rows. */
  staleAfterMs?: number;
}

const FDA_HINT =
  "Grant Full Disk Access (System Settings → Privacy & Security → Full Disk Access) to the process that runs imsg: " +
  "your terminal for interactive runs; for launchd the gateway binary; over SSH `sshd-keygen-wrapper` on the Mac. Then restart it. " +
  "Also check that dbPath points at an existing chat.db.";

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

/** Runs every check for one account. */
export async function probeAccount(config: Config, account: ImessageAccount, opts: ProbeOptions): Promise<AccountReport> {
  const deadline = Date.now() + opts.timeoutMs;
  const left = () => Math.max(1, deadline - Date.now());
  const checks: Check[] = [{ name: "config valid", ok: true, detail: config.path }];
  const add = (c: Check) => checks.push(c);

  // imsg binary
  const bin = findExecutable(account.cliPath);
  add(
    bin
      ? { name: "imsg binary found", ok: true, detail: bin }
      : {
          name: "imsg binary found",
          ok: false,
          detail: `${account.cliPath} not found${account.cliPath.includes("/") ? "" : " on PATH"} or not executable`,
          hint: "Install imsg on the Mac (`brew install steipete/tap/imsg`) or set channels.imessage.cliPath to its absolute path or to your SSH wrapper (chmod +x).",
        },
  );

  let newest: number | undefined;
  if (bin) {
    // rpc support and version
    const help = await runImsg(bin, ["rpc", "--help"], left());
    const helpOut = `${help.stdout}\n${help.stderr}`;
    const first = help.stdout.split("\n").find((l) => l.trim())?.trim() ?? "";
    const ver = await runImsg(bin, ["--version"], left());
    const v3 = parseVersion(ver.stdout);
    const vtext = v3 ? v3.join(".") : "unknown version";
    if (help.timedOut) {
      add({ name: "rpc supported", ok: false, detail: "`rpc --help` did not answer in time", hint: "If cliPath is an SSH wrapper, check that `ssh -T host imsg rpc --help` works non-interactively (BatchMode, keys)." });
    } else if (first.startsWith("imsg rpc") && (!v3 || versionSupportsRpc(v3))) {
      add({ name: "rpc supported", ok: true, detail: `imsg ${vtext}` });
    } else if ((v3 && !versionSupportsRpc(v3)) || /unknown (sub)?command/i.test(helpOut) || /^imsg \d/.test(first)) {
      add({ name: "rpc supported", ok: false, detail: `imsg ${vtext} has no \`rpc\` command (needs 0.3.0 or newer)`, hint: "Update imsg: `brew upgrade steipete/tap/imsg`." });
    } else {
      const out = (help.stdout + help.stderr).trim().split("\n").slice(0, 3).join(" | ");
      add({
        name: "rpc supported",
        ok: false,
        detail: `\`${account.cliPath} rpc --help\` failed (exit ${help.code ?? help.signal})${out ? `: ${out}` : ""}`,
        hint: "Run the same command by hand; for an SSH wrapper make sure it ends with `imsg \"$@\"` and that ssh needs no prompt.",
      });
    }

    // RPC handshake and database access
    const client = RpcClient.start({ cliPath: bin, dbPath: account.dbPath, timeoutMs: left(), tag: "probe" });
    try {
      const chats = await chatsList(client, 1, left());
      add({ name: "RPC handshake", ok: true, detail: `chats.list answered (${chats.length} chat${chats.length === 1 ? "" : "s"})` });
      add({ name: "Messages database readable", ok: true, detail: account.dbPath ?? "~/Library/Messages/chat.db" });
      const c = chats[0] as { id?: number } | undefined;
      if (c && typeof c.id === "number") newest = (await messagesHistory(client, c.id, { limit: 1 }, left()).catch(() => []))[0]?.id;
    } catch (e) {
      if (e instanceof ImsgPermissionError) {
        add({ name: "RPC handshake", ok: true, detail: "imsg answered (with a database error)" });
        add({ name: "Messages database readable", ok: false, detail: "imsg reports it cannot open the Messages database", hint: FDA_HINT });
      } else if (e instanceof RpcTimeoutError) {
        add({
          name: "RPC handshake",
          ok: false,
          detail: `chats.list did not answer within ${opts.timeoutMs} ms`,
          hint: "A wrapper must pass bytes through unbuffered: use `exec ssh -T host imsg \"$@\"` (no pipes through other tools). On the Mac, a first run may be waiting for a Contacts permission prompt.",
        });
        add({ name: "Messages database readable", ok: false, detail: "not checked: no RPC answer" });
      } else {
        add({
          name: "RPC handshake",
          ok: false,
          detail: (e as Error).message,
          hint: e instanceof ImsgSpawnError ? "Check cliPath." : "Run `imsg rpc` by hand to see its error; update imsg if it is older than 0.3.0.",
        });
        add({ name: "Messages database readable", ok: false, detail: "not checked: no RPC answer" });
      }
    } finally {
      client.kill();
      await client.closed;
    }
  }

  // remote attachments
  if (account.includeAttachments) {
    const r = resolveRemoteHost(account, (p) => readFileSync(p, "utf8"));
    if (r.host) {
      const known = await checkKnownHost(r.host);
      add(
        known
          ? { name: "remoteHost valid and known", ok: true, detail: `${r.host} (${r.source}), host key in known_hosts` }
          : {
              name: "remoteHost valid and known",
              ok: false,
              detail: `${r.host} (${r.source}) has no host key in ~/.ssh/known_hosts; SCP uses StrictHostKeyChecking=yes`,
              hint: `Connect once by hand to trust it: \`ssh ${r.host} true\` (or \`ssh-keyscan ${r.host.split("@").pop()} >> ~/.ssh/known_hosts\` after checking the fingerprint).`,
            },
      );
    } else if (account.remoteHost || (account.cliPath.includes("/") && existsSync(account.cliPath) && !findExecutable("imsg"))) {
      add({ name: "remoteHost valid and known", ok: false, detail: r.reason ?? "no remote host", hint: 'Set channels.imessage.remoteHost to "host" or "user@host".' });
    }
    add({ name: "attachment roots valid", ok: true, detail: `local: ${account.attachmentRoots.join(", ")}; remote: ${account.remoteAttachmentRoots.join(", ")}` });
  }

  // agent backend
  const agents = agentsFor(config, account.accountId);
  if (!agents.length) add({ name: "agent backend reachable", ok: false, detail: "no agent configured", hint: "Add agents.list with a command or openai backend." });
  for (const a of agents) add(await checkAgent(a, left()));

  // gateway
  add(gatewayCheck(account, opts, newest));
  const ok = checks.every((c) => c.ok || (c.name === "gateway running" && !opts.requireGateway));
  return { accountId: account.accountId, ok, checks };
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
    return exe
      ? { name, ok: true, detail: `agent "${a.id}": command ${exe}` }
      : { name, ok: false, detail: `agent "${a.id}": ${a.command[0]} not found or not executable`, hint: "Fix agents.list[].command[0] (absolute path, chmod +x)." };
  }
  const o = a.openai!;
  if (o.apiKeyEnv && !process.env[o.apiKeyEnv]) {
    return { name, ok: false, detail: `agent "${a.id}": ${o.apiKeyEnv} is not set in this environment`, hint: `Export ${o.apiKeyEnv} for the gateway (launchd: EnvironmentVariables in the plist).` };
  }
  const url = `${o.baseUrl.replace(/\/+$/, "")}/models`;
  try {
    const headers: Record<string, string> = o.apiKeyEnv ? { authorization: `Bearer ${process.env[o.apiKeyEnv]}` } : {};
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    if (res.status >= 500 || res.status === 401 || res.status === 403) {
      return { name, ok: false, detail: `agent "${a.id}": ${url} answered HTTP ${res.status}`, hint: res.status >= 500 ? "The model server is failing." : "Check the API key." };
    }
    return { name, ok: true, detail: `agent "${a.id}": ${o.baseUrl} answered (HTTP ${res.status})` };
  } catch (e) {
    return { name, ok: false, detail: `agent "${a.id}": cannot reach ${o.baseUrl}: ${(e as Error).message}`, hint: "Start the model server or fix openai.baseUrl." };
  }
}

function gatewayCheck(account: ImessageAccount, opts: ProbeOptions, newest: number | undefined): Check {
  const name = "gateway running";
  const lock = readLock(opts.stateDir);
  let activity = "";
  let cursor: number | undefined;
  let lastEvent: number | undefined;
  if (existsSync(join(opts.stateDir, "state.db"))) {
    try {
      const store = Store.open(opts.stateDir);
      try {
        const a = store.activity(account.accountId);
        cursor = store.getCursor(account.accountId);
        lastEvent = a.lastInboundAt;
        activity = `; last inbound ${a.lastInboundAt ? new Date(a.lastInboundAt).toISOString() : "never"}, last outbound ${a.lastOutboundAt ? new Date(a.lastOutboundAt).toISOString() : "never"}, backlog ${a.backlog}`;
      } finally {
        store.close();
      }
    } catch (e) {
      activity = `; state unreadable: ${(e as Error).message}`;
    }
  }
  if (!lock) {
    return { name, ok: false, detail: `no gateway holds the lock in ${opts.stateDir}${activity}`, hint: "Start it: `openclaw-imsg gateway` (or `--detach --log-file …`, see README for launchd/cron)." };
  }
  if (!lock.accounts?.includes(account.accountId)) {
    return { name, ok: false, detail: `gateway pid ${lock.pid} runs, but not account ${account.accountId}${activity}`, hint: "Restart it with this account enabled." };
  }
  if (!lock.subscribedAt) return { name, ok: false, detail: `gateway pid ${lock.pid} is starting (not subscribed yet)${activity}`, hint: "Check its log for imsg errors." };
  const staleAfter = opts.staleAfterMs ?? 10 * 60_000;
  const silentFor = Date.now() - Math.max(lastEvent ?? 0, lock.subscribedAt);
  if (newest !== undefined && cursor !== undefined && newest > cursor && silentFor > staleAfter) {
    return {
      name,
      ok: false,
      detail: `gateway pid ${lock.pid} is running but its watch is stale: imsg has row ${newest}, the gateway's cursor is ${cursor}, silent for ${Math.round(silentFor / 1000)}s${activity}`,
      hint: "Restart it: `openclaw-imsg gateway --replace`.",
    };
  }
  return { name, ok: true, detail: `pid ${lock.pid}, subscribed since ${new Date(lock.subscribedAt).toISOString()}${activity}` };
}
