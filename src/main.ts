#!/usr/bin/env bun
// Entry point: a citty root with lazily loaded subcommands. Kept free of heavy imports so
// `--help` and `--version` answer fast from the compiled binary.
import { defineCommand, renderUsage, runCommand, type ArgsDef, type CommandDef } from "citty";
import pkg from "../package.json" with { type: "json" };
import { closest } from "./suggest.ts";

declare const __VERSION__: string | undefined;
export const VERSION: string = typeof __VERSION__ === "string" ? __VERSION__ : pkg.version;

type Loader = () => Promise<{ default: CommandDef<any> }>;

/** Static meta for help; the command module is imported only when it runs or its own help is asked for. */
function lazy(name: string, description: string, load: Loader, group = false): CommandDef<any> {
  const mod = () => load().then((m) => m.default);
  const def: CommandDef<any> = {
    meta: { name, description },
    args: async () => ((await mod()).args ?? {}) as ArgsDef,
    run: async (ctx) => (await mod()).run?.(ctx as any),
  };
  if (group) def.subCommands = async () => (await mod()).subCommands as Record<string, CommandDef<any>>;
  return def;
}

export const commands: Record<string, CommandDef<any>> = Object.assign(Object.create(null), {
  gateway: lazy("gateway", "Run the iMessage gateway in the foreground", () => import("./commands/gateway.ts")),
  send: lazy("send", "Send a message or file to a chat or handle", () => import("./commands/send.ts")),
  pairing: lazy("pairing", "List, approve and revoke DM pairing requests", () => import("./commands/pairing.ts"), true),
  probe: lazy("probe", "Check everything a working gateway needs", () => import("./commands/probe.ts")),
  chats: lazy("chats", "List chats (ids for groups, allowFrom and groupAllowFrom)", () => import("./commands/chats.ts")),
});

export const main = defineCommand({
  meta: { name: "openclaw-imsg", version: VERSION, description: "iMessage channel for an AI agent, driving `imsg rpc`" },
  subCommands: commands,
});

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

async function resolveChain(argv: string[]): Promise<Resolved> {
  const { UsageError } = await import("./errors.ts");
  const chain: CommandDef<any>[] = [main];
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

/** Citty accepts unknown flags silently; we refuse them with a suggestion (CONTRACT §2). */
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


export async function run(argv: string[]): Promise<number> {
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  try {
    const { chain, argv: ordered, leafArgs } = await resolveChain(argv);
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
    await runCommand(main, { rawArgs: ordered });
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

if (import.meta.main) {
  process.exitCode = await run(process.argv.slice(2));
}
