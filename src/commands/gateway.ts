import { defineCommand } from "citty";
import { CliError, EXIT, UsageError } from "../errors.ts";
import { globalArgs, multi, setupGlobals, str } from "./_shared.ts";

export default defineCommand({
  meta: { name: "gateway", description: "Run the iMessage gateway in the foreground until SIGINT/SIGTERM" },
  args: {
    ...globalArgs,
    account: { type: "string", description: "Run only this account (repeatable); default: every enabled account", valueHint: "id" },
    "if-not-running": { type: "boolean", description: "Exit 0 quietly when a live gateway already holds the lock (for cron)" },
    replace: { type: "boolean", description: "Ask the running gateway to stop (SIGTERM), wait for its lock, take over" },
    detach: { type: "boolean", description: "Run in the background; return once subscribed (needs --log-file)" },
    "log-file": { type: "string", description: "Log file for --detach (rotated at 10 MB)", valueHint: "path" },
  },
  async run({ args, rawArgs }) {
    const g = await setupGlobals(args);
    const accounts = multi(rawArgs, "account");
    const logFile = str(args["log-file"], "--log-file");
    if (args.detach && !logFile) throw new UsageError("--detach needs --log-file <path>");
    if (args.replace && args["if-not-running"]) throw new UsageError("use --replace or --if-not-running, not both");
    const { loadConfig } = await import("../config.ts");
    const config = loadConfig(g.configPath);
    const ops = await import("../daemon.ts");
    if (args["if-not-running"] && ops.runningGateway(g.stateDir)) return;
    if (args.replace) await ops.replaceRunning(g.stateDir);
    if (args.detach) {
      await ops.detach(rawArgs, logFile!, g.stateDir);
      return;
    }
    const { Gateway } = await import("../gateway.ts");
    const { LockedError } = await import("../lock.ts");
    let gw: ReturnType<typeof Gateway.start>;
    try {
      gw = Gateway.start({ config, stateDir: g.stateDir, accounts, tuning: tuningFromEnv() });
    } catch (e) {
      if (e instanceof LockedError) {
        if (args["if-not-running"]) return;
        throw new CliError(e.message, EXIT.locked, "Stop it first, or use --replace (take over) or --if-not-running (exit quietly).");
      }
      throw new CliError((e as Error).message, e instanceof CliError ? e.exitCode : EXIT.failed);
    }
    await ops.untilSignal();
    await gw.stop();
    // Everything is stopped and recorded; a stray handle (a wedged child's pipe) must not keep launchd waiting.
    setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
  },
});

/** OPENCLAW_IMSG_TUNING: a JSON object of GatewayTuning overrides, for tests and benchmarks (not for users). */
function tuningFromEnv(): Record<string, number> | undefined {
  const raw = process.env.OPENCLAW_IMSG_TUNING;
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as unknown;
    if (v && typeof v === "object" && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "number")) return v as Record<string, number>;
  } catch {
    /* fall through */
  }
  throw new UsageError("OPENCLAW_IMSG_TUNING must be a JSON object of numbers");
}
