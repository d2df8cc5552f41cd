// Operating the gateway under cron and launchd: --if-not-running, --replace, --detach, signals.
import { spawn } from "node:child_process";
import { chmodSync, closeSync, openSync, readFileSync, statSync } from "node:fs";
import { CliError, EXIT } from "./errors.ts";
import { type LockInfo, readLock } from "./lock.ts";
import { getLog } from "./log.ts";
import { until } from "./queues.ts";
import { selfCommand } from "./runtime.ts";

/** The live gateway holding the lock on this state dir, if any. */
export function runningGateway(stateDir: string): LockInfo | undefined {
  return readLock(stateDir);
}

/** SIGTERMs the lock holder and waits for the lock to be free (it finishes in-flight replies first). */
export async function replaceRunning(stateDir: string, timeoutMs = 60_000): Promise<void> {
  const holder = readLock(stateDir);
  if (!holder) return;
  getLog("gateway").info(`asking the running gateway (pid ${holder.pid}) to stop`);
  try {
    process.kill(holder.pid, "SIGTERM");
  } catch {
    return; // already gone
  }
  const freed = await until(() => (readLock(stateDir) ? undefined : true), timeoutMs);
  if (!freed) {
    throw new CliError(
      `gateway pid ${holder.pid} did not stop within ${timeoutMs / 1000}s`,
      EXIT.failed,
      `Check its log; kill it with \`kill ${holder.pid}\`.`,
    );
  }
}

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      getLog("gateway").info(`${sig} received: finishing in-flight replies and stopping`);
      resolve(sig);
    };
    const onInt = () => on("SIGINT");
    const onTerm = () => on("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
}

/** Drops the flags that only the launcher understands. */
export function childArgs(rawArgs: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === "--detach" || a === "--replace" || a === "--if-not-running") continue;
    if (a === "--log-file") {
      i++;
      continue;
    }
    if (a.startsWith("--log-file=")) continue;
    out.push(a);
  }
  return out;
}

/**
 * Starts the gateway in the background, logging to `logFile`, and returns once it is subscribed; if it exits
 * first, its last log lines become the error.
 */
export async function detach(rawArgs: string[], logFile: string, stateDir: string, timeoutMs = 60_000): Promise<void> {
  // Fail early on an unwritable log file, in this process where the user sees it.
  try {
    closeSync(openSync(logFile, "a", 0o600));
    chmodSync(logFile, 0o600); // an existing log may have been created wider; it holds handles and errors
  } catch (e) {
    throw new CliError(`cannot write --log-file ${logFile}: ${(e as Error).message}`, EXIT.usage);
  }
  const [cmd, ...pre] = selfCommand();
  const child = spawn(cmd, [...pre, "gateway", ...childArgs(rawArgs)], {
    detached: true,
    stdio: "ignore",
    env: { ...process.env, OPENCLAW_IMSG_LOG_FILE: logFile },
  });
  let exited: number | null | undefined;
  child.on("exit", (code) => (exited = code ?? 1));
  const ok = await until(() => {
    if (exited !== undefined) return false;
    const l = readLock(stateDir);
    return l && l.pid === child.pid && l.subscribedAt ? true : undefined;
  }, timeoutMs);
  if (ok) {
    child.unref();
    process.stdout.write(`gateway started in the background (pid ${child.pid}); logging to ${logFile}\n`);
    return;
  }
  const tail = logTail(logFile, 5);
  if (exited === undefined) child.kill("SIGTERM");
  const code = exited === EXIT.locked ? EXIT.locked : exited === EXIT.usage ? EXIT.usage : EXIT.failed;
  throw new CliError(`the gateway did not start${exited !== undefined ? ` (exit ${exited})` : " in time"}${tail ? `:\n${tail}` : ""}`, code);
}

function logTail(path: string, lines: number): string {
  try {
    const st = statSync(path);
    const buf = readFileSync(path, "utf8").slice(-Math.min(st.size, 4096));
    return buf.trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}
