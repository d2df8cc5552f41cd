// Test harness around the imsg simulator: a temp chat.db, an executable `imsg` wrapper usable as `cliPath`,
// and a JSON-RPC pipe to a spawned `imsg rpc`.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimDb, writeSimWrapper } from "../../scripts/sim-db.ts";
import { DEFAULT_SIM_VERSION } from "../../scripts/sim/version.ts";

/** A simulator instance on disk. */
export interface Sim {
  dir: string;
  dbPath: string;
  /** Executable `#!/bin/sh` wrapper: behaves like a real `imsg` bound to this database. */
  cliPath: string;
  /** Test-side connection to the same database (inject inbound rows, inspect sent rows). */
  db: SimDb;
  /** Variables baked into the wrapper as defaults (IMSG_SIM_DB plus opts.env); the caller's env overrides them. */
  env: Record<string, string>;
  /** The imsg behaviour the simulator speaks (IMSG_SIM_VERSION baked into the wrapper, or the simulator default). */
  version: string;
  cleanup(): void;
}

/**
 * Creates a temp dir with an empty chat.db and an `imsg` wrapper; `env` (e.g. IMSG_SIM_FDA) is baked in.
 * `version` picks the imsg behaviour (default: $IMSG_SIM_VERSION, so CI can run a suite in both modes, else the
 * simulator's default); `noDatabase` leaves chat.db uncreated (a missing database).
 */
export function createSim(opts: { env?: Record<string, string>; selfHandle?: string; version?: string; noDatabase?: boolean } = {}): Sim {
  const dir = mkdtempSync(join(tmpdir(), "imsg-sim-"));
  const dbPath = join(dir, "chat.db");
  const version = opts.version ?? opts.env?.IMSG_SIM_VERSION ?? process.env.IMSG_SIM_VERSION ?? DEFAULT_SIM_VERSION;
  const modern = version !== "0.9.0";
  // A lazily opened test-side connection keeps `noDatabase` sims without a file until the test creates one.
  let db: SimDb | undefined = opts.noDatabase ? undefined : new SimDb(dbPath, { selfHandle: opts.selfHandle, modern });
  const env: Record<string, string> = {
    IMSG_SIM_DB: dbPath,
    IMSG_SIM_VERSION: version,
    ...(opts.selfHandle ? { IMSG_SIM_SELF: opts.selfHandle } : {}),
    ...opts.env,
  };
  const cliPath = join(dir, "imsg");
  writeSimWrapper(cliPath, env, { version });
  return {
    dir,
    dbPath,
    cliPath,
    get db() {
      db ??= new SimDb(dbPath, { selfHandle: opts.selfHandle, modern });
      return db;
    },
    env,
    version,
    cleanup() {
      db?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A deadline for a test on this machine: `ms` times TEST_TIMEOUT_SCALE (default 1; set 2–4 on a slow or busy
 * box). Every helper deadline goes through it; deadlines are upper bounds, a passing wait returns at the event.
 */
export function scaled(ms: number): number {
  const f = Number(process.env.TEST_TIMEOUT_SCALE ?? "1");
  return Math.round(ms * (Number.isFinite(f) && f > 0 ? f : 1));
}

/** Polls `fn` until it returns a truthy value (returned) or the (scaled) deadline passes (throws). */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 5000, what = "condition"): Promise<NonNullable<Awaited<T>>> {
  timeoutMs = scaled(timeoutMs);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<Awaited<T>>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** An append-only list whose waiters are woken on every push. */
export class Log<T> {
  readonly items: T[] = [];
  #waiters = new Set<() => void>();

  /** Appends an item and wakes waiters. */
  push(item: T): void {
    this.items.push(item);
    for (const w of this.#waiters) w();
  }

  /** Resolves with the first item (already seen or future) matching `pred`; rejects at the deadline. */
  waitFor(pred: (item: T, index: number) => boolean, timeoutMs = 5000, what = "a matching item"): Promise<T> {
    return this.waitForCount(1, pred, timeoutMs, what).then((xs) => xs[0]!);
  }

  /** Resolves once `n` items match `pred`, with those items in order. */
  waitForCount(n: number, pred: (item: T, index: number) => boolean = () => true, timeoutMs = 5000, what = `${n} items`): Promise<T[]> {
    timeoutMs = scaled(timeoutMs);
    return new Promise((resolve, reject) => {
      const check = () => {
        const hits = this.items.filter(pred);
        if (hits.length < n) return false;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve(hits.slice(0, n));
        return true;
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (have ${this.items.length} items)`));
      }, timeoutMs);
      if (!check()) this.#waiters.add(check);
    });
  }
}

/** A JSON-RPC error object as imsg sends it. */
export interface RpcErrorObject {
  code: number;
  message: string;
  /** A string, or (imsg 0.15 typed errors) an object such as {retry_safe, disposition, …}. */
  data?: any;
}
/** A response envelope (has an `id` key, possibly null). */
export interface RpcResponse {
  jsonrpc: "2.0";
  id: unknown;
  result?: any;
  error?: RpcErrorObject;
}
/** A notification envelope (no `id`). */
export interface RpcNotification {
  jsonrpc: "2.0";
  method: string;
  params: any;
}

/** Error thrown by `RpcPipe.call` for an error response. */
export class RpcCallError extends Error {
  constructor(readonly error: RpcErrorObject) {
    super(`${error.code} ${error.message}: ${typeof error.data === "object" ? JSON.stringify(error.data) : (error.data ?? "")}`);
  }
}

/** `<cliPath> rpc [args]` over real pipes, with every stdout line recorded. */
export class RpcPipe {
  readonly child: ChildProcessWithoutNullStreams;
  /** Every stdout line, JSON or not, in arrival order. */
  readonly lines = new Log<string>();
  /** Envelopes with an `id` key (responses and errors). */
  readonly responses = new Log<RpcResponse>();
  readonly notifications = new Log<RpcNotification>();
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  stderr = "";
  #nextId = 1;
  #partial = "";

  constructor(cliPath: string, opts: { args?: string[]; env?: Record<string, string> } = {}) {
    this.child = spawn(cliPath, ["rpc", ...(opts.args ?? [])], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...opts.env } });
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (chunk: string) => {
      this.#partial += chunk;
      let nl: number;
      while ((nl = this.#partial.indexOf("\n")) >= 0) {
        this.#onLine(this.#partial.slice(0, nl));
        this.#partial = this.#partial.slice(nl + 1);
      }
    });
    this.child.stderr.setEncoding("utf8");
    this.child.stderr.on("data", (c: string) => (this.stderr += c));
    // An EPIPE after the child died is the crash tests' expected outcome, not a test-process error.
    this.child.stdin.on("error", () => {});
    this.exited = new Promise((res) => this.child.on("exit", (code) => res(code)));
  }

  #onLine(line: string): void {
    this.lines.push(line);
    let v: any;
    try {
      v = JSON.parse(line);
    } catch {
      return;
    }
    if (v && typeof v === "object" && "id" in v) this.responses.push(v as RpcResponse);
    else if (v && typeof v === "object" && typeof v.method === "string") this.notifications.push(v as RpcNotification);
  }

  /** Writes one raw line (a string as is, anything else JSON-encoded). */
  write(line: unknown): void {
    this.child.stdin.write((typeof line === "string" ? line : JSON.stringify(line)) + "\n");
  }

  /** Sends a request with a fresh numeric id and resolves with its response envelope. */
  request(method: string, params?: unknown, timeoutMs = 5000): Promise<RpcResponse> {
    const id = this.#nextId++;
    this.write({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) });
    return this.responses.waitFor((r) => r.id === id, timeoutMs, `response to ${method} (id ${id}); stderr: ${this.stderr}`);
  }

  /** Like `request`, but resolves with `result` and throws RpcCallError on an error response. */
  async call(method: string, params?: unknown, timeoutMs = 5000): Promise<any> {
    const r = await this.request(method, params, timeoutMs);
    if (r.error) throw new RpcCallError(r.error);
    return r.result;
  }

  /** `message` notifications' messages for one subscription (or all), in arrival order. */
  messages(subscription?: number): any[] {
    return this.notifications.items
      .filter((n) => n.method === "message" && (subscription === undefined || n.params.subscription === subscription))
      .map((n) => n.params.message);
  }

  /** Closes stdin and waits for exit; kills the child (and returns null) if it outlives the deadline. */
  async close(timeoutMs = 5000): Promise<number | null> {
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), scaled(timeoutMs));
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** Kills the child at once (for hung simulators) and waits for it. */
  async kill(): Promise<void> {
    this.child.kill("SIGKILL");
    await this.exited;
  }
}
