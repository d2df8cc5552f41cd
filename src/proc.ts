// The one bounded one-shot child-process runner: argument array (never a shell), a deadline, capped output
// decoded as streaming UTF-8, and a process group of its own so a timeout or abort kills every descendant.
// Long-lived children (the imsg rpc client) are not run here.
import { spawn } from "node:child_process";
import { posix } from "node:path";
import { getLog } from "./log.ts";

/** The caps every one-shot run shares (bytes and milliseconds). */
export const PROC_LIMITS = {
  /** An agent's reply is the largest output we read; more than this is cut (and logged). */
  maxStdoutBytes: 1024 * 1024,
  /** Enough for the tail of an error report. */
  maxStderrBytes: 16 * 1024,
  /** After SIGTERM to the group, SIGKILL follows this long later. */
  killGraceMs: 1000,
  /** After the child exits, settle once its pipes were quiet this long (a straggler may hold them open). */
  exitDrainMs: 250,
} as const;

/** Options for `runProcess`. */
export interface RunOptions {
  timeoutMs: number;
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Aborting kills the process group like a timeout does. */
  signal?: AbortSignal;
  /** Told the child's pid once it runs (a journal can then wait for that very process after a crash). */
  onSpawn?: (pid: number) => void;
}

/** Outcome of `runProcess`; it never rejects. */
export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  aborted: boolean;
  /** Set when the command could not be started (no pid): `ENOENT`, `EACCES`, … or the message. */
  spawnError?: string;
  /** Output beyond the caps was dropped. */
  stdoutCut: boolean;
  stderrCut: boolean;
}

/** Accumulates a pipe as UTF-8 across chunk boundaries, up to `max` bytes. */
class CappedText {
  #decoder = new TextDecoder();
  #bytes = 0;
  text = "";
  cut = false;
  constructor(private readonly max: number) {}
  push(chunk: Uint8Array): void {
    if (this.cut) return;
    const room = this.max - this.#bytes;
    const take = chunk.byteLength > room ? chunk.subarray(0, room) : chunk;
    this.#bytes += take.byteLength;
    this.text += this.#decoder.decode(take, { stream: true });
    // A character split by the cut stays in the decoder and is dropped, never shown as U+FFFD.
    if (take !== chunk) this.cut = true;
  }
  end(): string {
    if (!this.cut) this.text += this.#decoder.decode();
    return this.text;
  }
}

/** Sends `sig` to the whole process group led by `pid`; a group already gone is fine. */
function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    /* ESRCH: nothing left in the group */
  }
}

/**
 * Runs `cmd args` once with the PROC_LIMITS caps. On timeout or abort the child's process group gets SIGTERM,
 * then SIGKILL after killGraceMs, so grandchildren that ignore SIGTERM do not outlive the run.
 */
export function runProcess(cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const log = getLog("proc");
  return new Promise((resolve) => {
    const out = new CappedText(PROC_LIMITS.maxStdoutBytes);
    const err = new CappedText(PROC_LIMITS.maxStderrBytes);
    let timedOut = false;
    let aborted = false;
    let killing = false;
    let settled = false;
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    const child = spawn(cmd, [...args], {
      stdio: [opts.input !== undefined ? "pipe" : "ignore", "pipe", "pipe"],
      env: opts.env ?? process.env,
      detached: true,
    });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    const kill = () => {
      if (killing || child.pid === undefined) return;
      killing = true;
      killGroup(child.pid, "SIGTERM");
      // Not unref'd: the group must be gone even when the caller exits right after settling.
      const pid = child.pid;
      setTimeout(() => killGroup(pid, "SIGKILL"), PROC_LIMITS.killGraceMs);
    };
    const onAbort = () => {
      aborted = true;
      kill();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, opts.timeoutMs);
    const done = (r: Pick<RunResult, "code" | "signal" | "spawnError">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drainTimer);
      opts.signal?.removeEventListener("abort", onAbort);
      const result: RunResult = { ...r, stdout: out.end(), stderr: err.end(), timedOut, aborted, stdoutCut: out.cut, stderrCut: err.cut };
      const name = posix.basename(cmd);
      if (out.cut) log.warn(`output of ${name} cut at ${PROC_LIMITS.maxStdoutBytes} bytes; the rest was dropped`);
      if (err.cut) log.debug(`stderr of ${name} cut at ${PROC_LIMITS.maxStderrBytes} bytes`);
      resolve(result);
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort);
    // After the exit, output still in the pipes keeps arriving (a busy machine reads it late): each chunk restarts
    // the drain wait, so only pipes that go quiet while held open by a straggler are cut short.
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const settleSoon = () => {
      clearTimeout(drainTimer);
      drainTimer = setTimeout(() => {
        child.stdout!.destroy();
        child.stderr!.destroy();
        done(exited!);
      }, PROC_LIMITS.exitDrainMs);
    };
    child.stdout!.on("data", (c: Uint8Array) => {
      out.push(c);
      if (exited) settleSoon();
    });
    child.stderr!.on("data", (c: Uint8Array) => {
      err.push(c);
      if (exited) settleSoon();
    });
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (child.pid === undefined) done({ code: null, signal: null, spawnError: e.code ?? e.message });
    });
    // A straggler outside the group (or one that survives until SIGKILL) may keep the pipes open: settle once
    // they have been quiet for exitDrainMs after the exit.
    child.on("exit", (code, signal) => {
      exited = { code, signal };
      settleSoon();
    });
    child.on("close", (code, signal) => done({ code, signal }));
    if (opts.input !== undefined) {
      child.stdin!.on("error", () => {
        /* the child may exit without reading stdin; its exit status decides */
      });
      child.stdin!.end(opts.input);
    }
  });
}
