// The imsg JSON-RPC client: the one place that spawns imsg. Newline-only framing with a streaming UTF-8
// decoder (readline would split on U+2028/U+2029 inside JSON strings), per-request timeouts, notifications,
// stderr drained, non-JSON stdout treated as diagnostics, Full Disk Access failures raised as a typed error.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { getLog } from "./log.ts";
import { runProcess } from "./proc.ts";
import { clip } from "./text.ts";
import { dataText, firstLine, ImsgPermissionError, ImsgSpawnError, isPermissionText, RpcClosedError, RpcError, RpcTimeoutError } from "./rpc-errors.ts";

/** Per-request timeout when neither the request nor the client sets one (OpenClaw's probe default). */
export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Requests written to one child and not yet answered, at most. imsg 0.14+ answers -32000 "Server busy" beyond
 * 128 outstanding (running plus queued); staying well under leaves room for a wrapper's or a sibling's requests.
 * Further requests wait here, in order, and their timeout starts when they are written.
 */
export const MAX_OUTSTANDING = 32;

// The error classes and their classifier live in rpc-errors.ts; importers keep using this module.
export {
  classifyError,
  classifyRpcError,
  type DatabaseCause,
  databaseCause,
  ImsgPermissionError,
  ImsgSpawnError,
  isPermissionText,
  RpcClosedError,
  RpcError,
  type RpcErrorClass,
  type RpcErrorKind,
  RpcTimeoutError,
} from "./rpc-errors.ts";

/**
 * Splits a byte stream into lines on "\n" only (byte 0x0A never occurs inside a UTF-8 sequence), decoding each
 * whole line once. Only new bytes are scanned, so a long line costs linear time, not a rescan per chunk.
 * Exported for tests: the framing is the part that broke in the field.
 */
export class LineSplitter {
  #decoder = new TextDecoder("utf-8");
  #parts: Uint8Array[] = [];
  #size = 0;
  #discarding = false;
  /** Lines dropped for exceeding maxLine (a child writing without newlines must not grow our memory). */
  overflows = 0;
  /**
   * @param onDrop told once per dropped line, with its full size in bytes, when its end is seen; never its bytes.
   */
  constructor(
    readonly maxLine = 64 * 1024 * 1024,
    readonly onDrop?: (bytes: number) => void,
  ) {}
  push(chunk: Uint8Array): string[] {
    const out: string[] = [];
    let start = 0;
    let i: number;
    while ((i = chunk.indexOf(0x0a, start)) >= 0) {
      this.#add(chunk.subarray(start, i));
      const line = this.#take();
      if (line !== undefined) out.push(line);
      start = i + 1;
    }
    if (start < chunk.length) this.#add(chunk.subarray(start));
    return out;
  }
  end(): string[] {
    const line = this.#size || this.#discarding ? this.#take() : undefined;
    return line === undefined ? [] : [line];
  }
  #add(bytes: Uint8Array): void {
    if (!bytes.length) return;
    this.#size += bytes.length;
    if (this.#discarding) return;
    if (this.#size > this.maxLine) {
      // Drop the oversized line and everything up to its newline; framing resumes at the next line.
      this.#parts = [];
      this.#discarding = true;
      this.overflows++;
      return;
    }
    // Kept, not copied: stream chunks are fresh buffers, and copying a long line chunk by chunk costs GC time.
    this.#parts.push(bytes);
  }
  /** Ends the current line: its text, or undefined when it was dropped. */
  #take(): string | undefined {
    const size = this.#size;
    const parts = this.#parts;
    this.#parts = [];
    this.#size = 0;
    if (this.#discarding) {
      this.#discarding = false;
      this.onDrop?.(size);
      return undefined;
    }
    if (parts.length === 1) return this.#decoder.decode(parts[0]);
    const all = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return this.#decoder.decode(all);
  }
}

/** A JSON-RPC notification from imsg (`message`, `error`). */
export interface Notification {
  method: string;
  params: Record<string, unknown>;
}

/** How to spawn and talk to one `imsg rpc` child. */
export interface RpcOptions {
  cliPath: string;
  dbPath?: string;
  /** Default per-request timeout (probeTimeoutMs). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  onNotification?: (n: Notification) => void;
  /** Log tag, e.g. "rpc:default:watch". */
  tag?: string;
  /** Outstanding requests at most (default MAX_OUTSTANDING). */
  maxOutstanding?: number;
}

interface Pending {
  method: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
}

/** How the child ended; `error` is what pending requests were rejected with. */
export interface ExitInfo {
  code: number | null;
  signal: string | null;
  error?: Error;
}

/**
 * After the child exits, how long to wait for its pipes to close. A wrapper's grandchildren (an ssh left
 * behind by a killed `sh`, a pipeline stage) can hold them open indefinitely; `closed` must still resolve.
 */
const EXIT_DRAIN_MS = 250;

/** Spawn failures (no pid) become ImsgSpawnError; anything else passes through. */
function spawnFailure(cliPath: string, e: NodeJS.ErrnoException): Error {
  return new ImsgSpawnError(cliPath, e.code ?? e.message);
}

const STDOUT_MAX_LINE = 2 * 1024 * 1024;

/** stderr lines of imsg that are not a problem for us (0.15: Contacts unavailable or incomplete). */
const BENIGN_STDERR = /^(imsg:\s*)?contacts\b/i;

/** One `imsg rpc` child. No restarts here: the gateway supervises and replaces clients. */
export class RpcClient {
  #child: ChildProcessWithoutNullStreams;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #opts: RpcOptions;
  #closedError?: Error;
  #permission?: ImsgPermissionError;
  #noise: string[] = [];
  /** The last few non-JSON lines (stdout noise or stderr): the likely reason when the child dies. */
  #diag: string[] = [];
  #timedOut = new Set<number>();
  #late = 0;
  #exited = false;
  #active = 0;
  #waiting: (() => void)[] = [];
  readonly closed: Promise<ExitInfo>;
  readonly startedAt = Date.now();

  private constructor(opts: RpcOptions) {
    this.#opts = opts;
    const log = getLog(opts.tag ?? "rpc");
    const args = ["rpc", ...(opts.dbPath ? ["--db", opts.dbPath] : [])];
    this.#child = spawn(opts.cliPath, args, { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? process.env });
    let resolveClosed!: (i: ExitInfo) => void;
    this.closed = new Promise((r) => (resolveClosed = r));

    // Far above any reply imsg sends; a longer line is dropped unparsed rather than stall the event loop.
    const out = new LineSplitter(
      STDOUT_MAX_LINE,
      (bytes) => log.warn(`imsg wrote a stdout line of ${bytes} bytes, over the ${STDOUT_MAX_LINE}-byte limit; dropped it`),
    );
    this.#child.stdout.on("data", (c: Uint8Array) => {
      for (const l of out.push(c)) this.#onLine(l);
    });
    this.#child.stdout.on("end", () => {
      for (const l of out.end()) this.#onLine(l);
    });
    const err = new LineSplitter(64 * 1024, (bytes) => log.warn(`imsg wrote a stderr line of ${bytes} bytes; dropped it`));
    const onErrLine = (l: string) => {
      const line = l.trim();
      if (!line) return;
      this.#remember(line);
      if (isPermissionText(line)) this.#raisePermission(line);
      // Newer imsg notes at start that Contacts could not be read: names only, nothing we rely on.
      if (BENIGN_STDERR.test(line)) log.debug(`imsg stderr: ${clip(line)}`);
      else log.warn(`imsg stderr: ${clip(line)}`);
    };
    this.#child.stderr.on("data", (c: Uint8Array) => err.push(c).forEach(onErrLine));
    this.#child.stderr.on("end", () => err.end().forEach(onErrLine));
    // EPIPE on a dead child must reject requests, not crash the process.
    // Once the child has exited, finish() rejects with the exit reason instead.
    this.#child.stdin.on("error", (e) => {
      if (!this.#exited) this.#failAll(new RpcClosedError(`imsg rpc stdin error: ${e.message}`));
    });

    let spawnError: Error | undefined;
    let finished = false;
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    const finish = (code: number | null, signal: string | null) => {
      if (finished) return;
      finished = true;
      this.#exited = true;
      clearTimeout(drainTimer);
      this.#flushNoise();
      const reason = this.#permission ?? spawnError ?? this.#exitError(code, signal);
      this.#failAll(reason);
      resolveClosed({ code, signal, error: reason });
    };
    this.#child.on("error", (e: NodeJS.ErrnoException) => {
      // With a pid the child is running and this is a failed kill(): nothing to reject.
      if (this.#child.pid !== undefined) {
        log.debug(`imsg child error: ${e.message}`);
        return;
      }
      spawnError = spawnFailure(opts.cliPath, e);
      // 'close' does not follow a spawn failure in every runtime.
      finish(null, null);
    });
    this.#child.on("exit", (code, signal) => {
      this.#exited = true;
      // Grandchildren still reading our stdin (ssh under a killed sh) get EOF and unwind.
      this.#child.stdin.destroy();
      drainTimer = setTimeout(() => {
        this.#child.stdout.destroy();
        this.#child.stderr.destroy();
        for (const l of out.end()) this.#onLine(l);
        finish(code, signal);
      }, EXIT_DRAIN_MS);
    });
    this.#child.on("close", (code, signal) => finish(code, signal));
  }

  /** Spawns `<cliPath> rpc [--db <dbPath>]` with an argument array (never a shell). */
  static start(opts: RpcOptions): RpcClient {
    return new RpcClient(opts);
  }

  /** The child's pid; undefined when it could not be spawned. */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** True until the child exits or its stdin breaks. */
  get alive(): boolean {
    return !this.#exited && !this.#closedError;
  }

  /** Set once imsg has reported it cannot read the database; later requests fail fast with it. */
  get permissionError(): ImsgPermissionError | undefined {
    return this.#permission;
  }

  /** Number of requests awaiting a response (a watchdog reads this). */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Responses that arrived after their request had timed out: the signature of a wrapper that buffers output. */
  get lateReplies(): number {
    return this.#late;
  }

  /** Sends one request; rejects with RpcError, RpcTimeoutError, RpcClosedError, ImsgPermissionError or ImsgSpawnError. */
  request<T = unknown>(method: string, params: Record<string, unknown> = {}, opts: { timeoutMs?: number } = {}): Promise<T> {
    const max = Math.max(1, this.#opts.maxOutstanding ?? MAX_OUTSTANDING);
    const slot = this.#active < max ? (this.#active++, undefined) : new Promise<void>((r) => this.#waiting.push(r));
    const run = () => this.#issue<T>(method, params, opts);
    return (slot ? slot.then(run) : run()).finally(() => this.#release());
  }

  /** Hands a freed slot to the oldest waiting request (a queued request inherits it), else frees it. */
  #release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#active--;
  }

  /** Writes one request (holding a slot); rejects fast when the child is known to be unusable. */
  #issue<T>(method: string, params: Record<string, unknown>, opts: { timeoutMs?: number }): Promise<T> {
    if (this.#permission) return Promise.reject(this.#permission);
    if (this.#closedError) return Promise.reject(this.#closedError);
    // A failed spawn reports its cause asynchronously; wait for it rather than guess.
    if (this.#child.pid === undefined) return this.closed.then((i) => Promise.reject(i.error ?? new RpcClosedError("imsg rpc not running")));
    if (this.#exited || !this.#child.stdin.writable) return Promise.reject(new RpcClosedError("imsg rpc not running"));
    const id = this.#nextId++;
    const timeoutMs = opts.timeoutMs ?? this.#opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise<T>((resolve, reject) => {
      const p: Pending = { method, resolve: resolve as (v: unknown) => void, reject };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.#pending.delete(id);
          this.#timedOut.add(id);
          // Bounded: a client that keeps timing out must not grow our memory.
          if (this.#timedOut.size > 256) this.#timedOut.delete(this.#timedOut.values().next().value!);
          reject(new RpcTimeoutError(method, timeoutMs));
        }, timeoutMs);
      }
      this.#pending.set(id, p);
      const frame = JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n";
      this.#child.stdin.write(frame, (e) => {
        // Once the child has exited, its exit reason (permission, spawn, exit code) is the better rejection.
        if (!e || this.#exited) return;
        // stdin is broken for good: no new requests; ones already written may still be answered.
        const err = new RpcClosedError(`imsg rpc write failed (${method}): ${e.message}`);
        this.#closedError ??= err;
        this.#settle(id, err);
      });
    });
  }

  /** Close stdin (imsg exits 0 on EOF), then SIGTERM after `graceMs`, then SIGKILL. */
  async stop(graceMs = 500): Promise<ExitInfo> {
    if (!this.#exited) {
      try {
        this.#child.stdin.end();
      } catch {
        /* already closed */
      }
      const t1 = setTimeout(() => this.#child.kill("SIGTERM"), graceMs);
      const t2 = setTimeout(() => this.#child.kill("SIGKILL"), graceMs + 2000);
      const info = await this.closed;
      clearTimeout(t1);
      clearTimeout(t2);
      return info;
    }
    return this.closed;
  }

  /** Immediate SIGKILL (a hung child that ignores EOF); await `closed` for the outcome. */
  kill(): void {
    if (this.#exited) return;
    this.#child.stdin.destroy();
    this.#child.kill("SIGKILL");
  }

  #exitError(code: number | null, signal: string | null): RpcClosedError {
    const why = code !== null && code !== 0 ? `imsg rpc exited (code ${code})` : signal ? `imsg rpc killed (${signal})` : "imsg rpc closed";
    const last = this.#diag.at(-1);
    return new RpcClosedError(last ? `${why}: ${last}` : why, code, signal);
  }

  #remember(line: string): void {
    this.#diag.push(clip(line));
    if (this.#diag.length > 5) this.#diag.shift();
  }

  #onLine(raw: string): void {
    const line = raw.trim();
    if (!line) return;
    let msg: unknown;
    if (line.startsWith("{")) {
      try {
        msg = JSON.parse(line);
      } catch {
        msg = undefined;
      }
    }
    if (!msg || typeof msg !== "object" || Array.isArray(msg)) {
      this.#noiseLine(line);
      return;
    }
    this.#flushNoise();
    const m = msg as { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: unknown };
    if (typeof m.method === "string" && m.id === undefined) {
      const params = m.params && typeof m.params === "object" ? (m.params as Record<string, unknown>) : {};
      try {
        this.#opts.onNotification?.({ method: m.method, params });
      } catch (e) {
        getLog(this.#opts.tag ?? "rpc").error(`notification handler failed: ${(e as Error).message}`);
      }
      return;
    }
    const id = typeof m.id === "number" ? m.id : typeof m.id === "string" && /^\d+$/.test(m.id) ? Number(m.id) : undefined;
    if (m.error && typeof m.error === "object") {
      const e = m.error as { code?: unknown; message?: unknown; data?: unknown };
      if (typeof e.data === "string" && isPermissionText(e.data)) {
        // Startup-error mode (imsg 0.8.2–0.13): every request gets the banner. Fail everything fast.
        // Object data (0.14+ -32002) is per request and heals once access is granted: it stays an RpcError.
        this.#raisePermission(e.data);
        return;
      }
      const text = dataText(e.data);
      if (id === undefined) {
        getLog(this.#opts.tag ?? "rpc").warn(`imsg error without id: ${String(e.message)}${text ? `: ${firstLine(text)}` : ""}`);
        return;
      }
      const p = this.#pending.get(id);
      this.#settle(id, new RpcError(p?.method ?? "?", typeof e.code === "number" ? e.code : -1, String(e.message ?? "error"), e.data));
      return;
    }
    if (id !== undefined) this.#settle(id, undefined, m.result);
  }

  #settle(id: number, err: Error | undefined, result?: unknown): void {
    const p = this.#pending.get(id);
    if (!p) {
      // A reply after its timeout is dropped, but counted: it tells a hung child from a buffering wrapper.
      if (this.#timedOut.delete(id)) this.#late++;
      return;
    }
    this.#pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(result);
  }

  #noiseLine(line: string): void {
    this.#remember(line);
    if (isPermissionText(line)) this.#raisePermission(line);
    // Bounded: a runaway child must not grow our memory.
    if (this.#noise.length < 64) this.#noise.push(clip(line));
  }

  #flushNoise(): void {
    if (!this.#noise.length) return;
    const text = `imsg wrote non-JSON output on stdout:\n  ${this.#noise.join("\n  ")}`;
    // The legacy Full Disk Access banner is reported through ImsgPermissionError; repeating it is noise.
    if (this.#permission) getLog(this.#opts.tag ?? "rpc").debug(text);
    else getLog(this.#opts.tag ?? "rpc").warn(text);
    this.#noise = [];
  }

  #raisePermission(detail: string): void {
    if (!this.#permission) {
      this.#permission = new ImsgPermissionError(detail);
    }
    this.#failAll(this.#permission);
  }

  #failAll(err: Error): void {
    if (!(err instanceof ImsgPermissionError)) this.#closedError ??= err;
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
  }
}

/** Outcome of a one-shot imsg command. */
export interface CommandResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  error?: ImsgSpawnError | Error;
}

/** Runs a one-shot imsg command (`rpc --help`, `--version`) with a timeout (proc.ts); never throws. */
export async function runImsg(cliPath: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<CommandResult> {
  const r = await runProcess(cliPath, args, { timeoutMs, env });
  const base = { code: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut };
  return r.spawnError !== undefined ? { ...base, error: new ImsgSpawnError(cliPath, r.spawnError) } : base;
}
