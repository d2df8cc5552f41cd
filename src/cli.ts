// Everything the entry point defers: argv resolution over the lazy command tree, flag checking, citty's run
// and error reporting. Loaded only by commands that do work, so `--version` and `--help` skip citty entirely.
import { type ArgsDef, type CommandDef, renderUsage, runCommand } from "citty";
import { closest } from "./suggest.ts";

// Flags that take a value, recognised before the subcommand name too (`--config x gateway`).
const GLOBAL_VALUE_FLAGS = new Set(["--config", "--state-dir", "--log-format"]);
const GLOBAL_BOOL_FLAGS = new Set(["--verbose"]);

async function resolveSubCommands(cmd: CommandDef<any>): Promise<Record<string, CommandDef<any>> | undefined> {
  const s = cmd.subCommands;
  return (typeof s === "function" ? await s() : await s) as Record<string, CommandDef<any>> | undefined;
}

async function resolveArgs(cmd: CommandDef<any>): Promise<ArgsDef> {
  const a = cmd.args;
  return ((typeof a === "function" ? await a() : await a) ?? {}) as ArgsDef;
}

interface Resolved {
  chain: CommandDef<any>[];
  /** argv with the global flags seen before the subcommand name moved after it. */
  argv: string[];
  /** argv that belongs to the leaf command. */
  leafArgs: string[];
}

async function resolveChain(root: CommandDef<any>, argv: string[]): Promise<Resolved> {
  const { UsageError } = await import("./errors.ts");
  const chain: CommandDef<any>[] = [root];
  const hoisted: string[] = [];
  const path: string[] = [];
  let i = 0;
  for (;;) {
    const subs = await resolveSubCommands(chain[chain.length - 1]!);
    if (!subs) break;
    // Global flags may precede the subcommand name.
    while (i < argv.length) {
      const a = argv[i]!;
      if (GLOBAL_VALUE_FLAGS.has(a)) {
        hoisted.push(a, argv[i + 1] ?? "");
        i += 2;
      } else if (GLOBAL_BOOL_FLAGS.has(a) || [...GLOBAL_VALUE_FLAGS].some((f) => a.startsWith(`${f}=`))) {
        hoisted.push(a);
        i += 1;
      } else break;
    }
    const name = argv[i];
    if (name === undefined || name.startsWith("-")) break;
    const sub = subs[name];
    if (!sub) {
      const suggestion = closest(name, Object.keys(subs));
      throw new UsageError(`Unknown command "${name}"`, suggestion ? `Did you mean "${suggestion}"?` : `Commands: ${Object.keys(subs).join(", ")}`);
    }
    path.push(name);
    chain.push(sub);
    i++;
  }
  const leafArgs = [...argv.slice(i), ...hoisted];
  return { chain, argv: [...path, ...leafArgs], leafArgs };
}

/** Citty accepts unknown flags silently; we refuse them with a suggestion (docs/SPEC.md §2). */
async function checkFlags(cmd: CommandDef<any>, leafArgs: string[]): Promise<void> {
  const { UsageError } = await import("./errors.ts");
  const defs = await resolveArgs(cmd);
  const known = new Set<string>();
  const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  for (const [name, def] of Object.entries(defs)) {
    if (def.type === "positional") continue;
    const alias = (def as { alias?: string | string[] }).alias;
    const names = [name, kebab(name), ...(alias ? ([] as string[]).concat(alias) : [])];
    for (const n of names) {
      known.add(n);
      if (def.type === "boolean") known.add(`no-${n}`);
    }
  }
  for (const a of leafArgs) {
    if (a === "--") break;
    if (!a.startsWith("-") || a === "-") continue;
    if (/^-\d/.test(a)) continue; // a negative number is a value
    const name = a.replace(/^--?/, "").split("=")[0]!;
    if (!known.has(name)) {
      const s = closest(name, [...known].filter((k) => !k.startsWith("no-")));
      throw new UsageError(`Unknown option ${a.split("=")[0]}`, s ? `Did you mean --${s}?` : undefined);
    }
  }
}

/** Help text of `cmd` as citty renders it (the entry point's static root help must equal this for the root). */
export function usage(cmd: CommandDef<any>, parent?: CommandDef<any>): Promise<string> {
  return renderUsage(cmd, parent);
}

/** Runs argv against the command tree under `root`; resolves to the exit code (docs/SPEC.md §3.1). */
export async function runCli(root: CommandDef<any>, argv: string[]): Promise<number> {
  try {
    const { chain, argv: ordered, leafArgs } = await resolveChain(root, argv);
    const leaf = chain[chain.length - 1]!;
    if (leafArgs.includes("--help") || leafArgs.includes("-h") || (chain.length === 1 && argv.length === 0)) {
      process.stdout.write((await renderUsage(leaf, chain[chain.length - 2])) + "\n");
      return 0;
    }
    if (await resolveSubCommands(leaf)) {
      const { UsageError } = await import("./errors.ts");
      const names = Object.keys((await resolveSubCommands(leaf))!);
      throw new UsageError(`Missing subcommand`, `Use one of: ${names.join(", ")} (see --help)`);
    }
    await checkFlags(leaf, leafArgs);
    await runCommand(root, { rawArgs: ordered });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    return report(err);
  }
}

async function report(err: unknown): Promise<number> {
  const { CliError } = await import("./errors.ts");
  const { getLog, isVerbose } = await import("./log.ts");
  const log = getLog("openclaw-imsg");
  if (err instanceof CliError) {
    log.error(err.message + (err.hint ? `\n  hint: ${err.hint}` : ""));
    return err.exitCode;
  }
  // citty's own argument errors (missing positional, bad enum) are usage errors.
  if (err instanceof Error && err.name === "CLIError") {
    log.error(err.message);
    return 2;
  }
  log.error(isVerbose() && err instanceof Error ? (err.stack ?? err.message) : err instanceof Error ? err.message : String(err));
  return 1;
}
