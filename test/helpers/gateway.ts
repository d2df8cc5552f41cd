// Runs the real CLI (gateway, pairing, send, …) as a child process against a simulator, with a fresh state dir.
import { afterEach } from "bun:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createSim, Log, scaled, type Sim } from "./sim.ts";

export const ROOT = resolve(import.meta.dir, "../..");
export const MAIN = join(ROOT, "src/main.ts");
export const AGENT = join(ROOT, "test/fixtures/agent.ts");
const DENO = join(ROOT, "node_modules/.bin/deno");

/** The test process's env minus NODE_ENV (bun test sets it to "test", which would silence consola in children). */
export function childEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const { NODE_ENV: _drop, ...rest } = process.env;
  const env: Record<string, string> = { ...(rest as Record<string, string>), NO_COLOR: "1" };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export type Runtime = "bun" | "deno";

export function cliCommand(runtime: Runtime = "bun"): [string, string[]] {
  return runtime === "deno" ? [DENO, ["run", "-A", MAIN]] : [process.execPath, [MAIN]];
}

/** A temp dir holding config.json and state/. */
export interface Workspace {
  dir: string;
  configPath: string;
  stateDir: string;
  writeConfig(cfg: unknown): void;
  cleanup(): void;
}

export function workspace(): Workspace {
  const dir = mkdtempSync(join(tmpdir(), "oc-imsg-"));
  const configPath = join(dir, "config.json5");
  const stateDir = join(dir, "state");
  return {
    dir,
    configPath,
    stateDir,
    writeConfig(cfg) {
      writeFileSync(configPath, JSON.stringify(cfg, null, 2));
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A config with the simulator as imsg and the fixture agent; `imessage` is merged over the defaults. */
export function baseConfig(cliPath: string, imessage: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return {
    channels: { imessage: { enabled: true, cliPath, dmPolicy: "allowlist", allowFrom: ["+15550001111"], ...imessage } },
    agents: { list: [{ id: "main", default: true, command: [process.execPath, AGENT], timeoutSeconds: 30 }] },
    ...extra,
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion. */
export function runCli(
  args: string[],
  opts: { env?: Record<string, string | undefined>; input?: string; runtime?: Runtime; timeoutMs?: number } = {},
): RunResult {
  const [cmd, pre] = cliCommand(opts.runtime);
  const r = spawnSync(cmd, [...pre, ...args], { env: childEnv(opts.env), input: opts.input, encoding: "utf8", timeout: scaled(opts.timeoutMs ?? 30_000) });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface LogLine {
  level: string;
  tag?: string;
  msg: string;
}

/** Fast supervision for tests; inbound debounce off (a test that wants it sets messages.inbound or this key). */
// settleMs: the simulator writes a sent row at once, so recovery need not wait out the real imsg's 8 s receipt window.
const TEST_TUNING = { debounceMs: 10, inboundDebounceMs: 0, backoffInitialMs: 50, watchdogMs: 2000, shutdownGraceMs: 3000, settleMs: 2000 };

/** A gateway child process with its JSON log lines. */
export class GatewayProc {
  readonly child: ChildProcess;
  readonly logs = new Log<LogLine>();
  readonly exited: Promise<number | null>;
  stderrText = "";

  constructor(ws: Workspace, opts: { args?: string[]; env?: Record<string, string | undefined>; runtime?: Runtime } = {}) {
    const [cmd, pre] = cliCommand(opts.runtime);
    this.child = spawn(cmd, [
      ...pre,
      "gateway",
      "--config",
      ws.configPath,
      "--state-dir",
      ws.stateDir,
      "--log-format",
      "json",
      "--verbose",
      ...(opts.args ?? []),
    ], {
      // A test's own tuning is laid over these (not instead of them), so e.g. the inbound debounce stays off
      // unless a test turns it on.
      env: childEnv({
        ...opts.env,
        OPENCLAW_IMSG_TUNING: JSON.stringify({
          ...TEST_TUNING,
          ...(opts.env?.OPENCLAW_IMSG_TUNING ? JSON.parse(opts.env.OPENCLAW_IMSG_TUNING) : {}),
        }),
      }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let partial = "";
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (c: string) => {
      this.stderrText += c;
      partial += c;
      let nl: number;
      while ((nl = partial.indexOf("\n")) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.logs.push({ level: "raw", msg: line });
        }
      }
    });
    this.child.stdout!.resume();
    this.exited = new Promise((r) => this.child.on("exit", (code) => r(code)));
  }

  /** Resolves when the gateway logged its subscription (count-th time, for restarts of the watch child). */
  subscribed(count = 1, timeoutMs = 15_000): Promise<LogLine[]> {
    return this.logs.waitForCount(count, (l) => l.msg.startsWith("subscribed"), timeoutMs, `subscribed x${count}; logs:\n${this.stderrText}`);
  }

  async stop(timeoutMs = 15_000): Promise<number | null> {
    this.child.kill("SIGTERM");
    const t = setTimeout(() => this.child.kill("SIGKILL"), scaled(timeoutMs));
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }

  async kill(): Promise<void> {
    this.child.kill("SIGKILL");
    await this.exited;
  }
}

/**
 * Simulators, workspaces and gateways that are stopped and removed after each test of the calling file (gateways
 * first). Call once at the top level of a test file.
 */
export function e2eResources() {
  const stops: (() => unknown)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });
  return {
    sim(opts?: Parameters<typeof createSim>[0]): Sim {
      const s = createSim(opts);
      stops.push(() => s.cleanup());
      return s;
    },
    workspace(): Workspace {
      const w = workspace();
      stops.push(() => w.cleanup());
      return w;
    },
    gateway(ws: Workspace, opts?: ConstructorParameters<typeof GatewayProc>[1]): GatewayProc {
      const g = new GatewayProc(ws, opts);
      stops.push(() => g.kill());
      return g;
    },
    /** Anything else to stop after the test (an HTTP server, a scratch dir). */
    track(stop: () => unknown): void {
      stops.push(stop);
    },
  };
}
