// Argument fragments shared by every command, and the per-command setup they drive.
import type { ArgsDef } from "citty";
import { resolve } from "node:path";
import { UsageError } from "../errors.ts";
import { expandHome } from "../paths.ts";

/** docs/SPEC.md §2: accepted by every subcommand. */
export const globalArgs = {
  config: { type: "string", description: "JSON5 config file (default $OPENCLAW_CONFIG_PATH or ~/.openclaw/openclaw.json)", valueHint: "path" },
  "state-dir": { type: "string", description: "Where state lives (default $OPENCLAW_STATE_DIR or ~/.openclaw)", valueHint: "dir" },
  verbose: { type: "boolean", description: "Debug logs, including why each dropped message was dropped" },
  "log-format": { type: "string", description: "Log format on stderr: pretty | json", valueHint: "pretty|json" },
} as const satisfies ArgsDef;

export const jsonArg = {
  json: { type: "boolean", description: "Print a JSON document on stdout" },
} as const satisfies ArgsDef;

export const accountArg = {
  account: { type: "string", description: "Account id (channels.imessage.accounts.<id>)", valueHint: "id" },
} as const satisfies ArgsDef;

export interface GlobalOptions {
  configPath: string;
  stateDir: string;
  verbose: boolean;
  logFormat: "pretty" | "json";
}

/** Resolves docs/SPEC.md §2 defaults and configures logging. Call first in every command's run(). */
export async function setupGlobals(args: Record<string, unknown>): Promise<GlobalOptions> {
  const fmt = (args["log-format"] as string | undefined) ?? "pretty";
  if (fmt !== "pretty" && fmt !== "json") throw new UsageError(`--log-format must be "pretty" or "json", got "${fmt}"`);
  const configPath = resolve(expandHome(str(args.config, "--config") ?? process.env.OPENCLAW_CONFIG_PATH ?? "~/.openclaw/openclaw.json"));
  const stateDir = resolve(expandHome(str(args["state-dir"], "--state-dir") ?? process.env.OPENCLAW_STATE_DIR ?? "~/.openclaw"));
  const verbose = args.verbose === true;
  const { configureLogging } = await import("../log.ts");
  configureLogging({ verbose, format: fmt });
  return { configPath, stateDir, verbose, logFormat: fmt };
}

/** A string flag's value; "" (flag given without a value) is a usage error, not a silent default. */
export function str(v: unknown, flag: string): string | undefined {
  if (v === undefined || v === null || v === false) return undefined;
  if (typeof v !== "string" || v === "") throw new UsageError(`${flag} needs a value`);
  return v;
}

/** A positive integer flag. */
export function int(v: unknown, flag: string, min = 1): number | undefined {
  const s = str(v, flag);
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s) || Number(s) < min) throw new UsageError(`${flag} must be an integer ≥ ${min}, got "${s}"`);
  return Number(s);
}

/** Every value of a repeatable flag (`--file a --file b`, `--file=a`), which citty collapses to the last. */
export function multi(rawArgs: string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === "--") break;
    if (a === `--${flag}`) {
      const v = rawArgs[i + 1];
      if (v === undefined || v.startsWith("--")) throw new UsageError(`--${flag} needs a value`);
      out.push(v);
      i++;
    } else if (a.startsWith(`--${flag}=`)) out.push(a.slice(flag.length + 3));
  }
  return out;
}

/** Writes a JSON document to stdout. Never follow with process.exit (Bun truncates piped output at 64 KiB). */
export function printJson(doc: unknown): void {
  process.stdout.write(JSON.stringify(doc, null, 2) + "\n");
}

/**
 * The optional leading channel word of `pairing …` commands (`pairing approve [imessage] <CODE>`):
 * strips it when present and returns the remaining `rest` positionals; any other channel is an error.
 */
export function splitChannel(positionals: string[], rest: number): string[] {
  let pos = positionals;
  if (pos.length > rest || (rest === 0 && pos.length > 0)) {
    const ch = pos[0]!;
    if (ch.toLowerCase() !== "imessage") throw new UsageError(`unknown channel "${ch}": only "imessage" is supported`);
    pos = pos.slice(1);
  }
  if (pos.length > rest) throw new UsageError(`unexpected argument "${pos[rest]}"`);
  return pos;
}

/** Loads the config and resolves one account (`--account`, else defaultAccount). Errors are ConfigErrors (exit 2). */
export async function loadAccount(g: GlobalOptions, accountId?: string) {
  const { loadConfig, resolveAccount } = await import("../config.ts");
  const config = loadConfig(g.configPath);
  return { config, account: resolveAccount(config, accountId) };
}

/** Renders rows as aligned columns (plain text: output may be piped or read over SSH). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
