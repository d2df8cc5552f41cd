#!/usr/bin/env bun
// Entry point. `--version` and the root `--help` answer from this file alone, with no static imports but
// package.json: loading citty and consola costs more CPU than the whole start of an empty binary
// (docs/BENCHMARKS.md). Everything else loads ./cli.ts, and a command's module only when it runs.
import type { ArgsDef, CommandDef } from "citty";
import pkg from "../package.json" with { type: "json" };

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

const NAME = "openclaw-imsg";
const DESCRIPTION = "iMessage channel for an AI agent, driving `imsg rpc`";

/** The root command (citty's defineCommand is the identity, so a plain object needs no import). */
export const main: CommandDef<any> = { meta: { name: NAME, version: VERSION, description: DESCRIPTION }, subCommands: commands };

/**
 * The root help exactly as citty's renderUsage(main) prints it, built without loading citty; a test holds the
 * two equal. `color` follows citty's rule: off for NO_COLOR=1, TERM=dumb, TEST or CI.
 */
export function rootHelp(env: Record<string, string | undefined> = process.env): string {
  const plain = env.NO_COLOR === "1" || env.TERM === "dumb" || !!env.TEST || !!env.CI;
  const c = (open: number, close = 39) => (t: string) => (plain ? t : `\u001B[${open}m${t}\u001B[${close}m`);
  const [cyan, gray, heading] = [c(36), c(90), (t: string) => c(4, 24)(c(1, 22)(t))];
  const names = Object.keys(commands);
  const rows = names.map((n) => [cyan(n), String((commands[n]!.meta as { description?: string }).description)] as const);
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  return [
    gray(`${DESCRIPTION} (${NAME} v${VERSION})`),
    "",
    `${heading("USAGE")} ${cyan(`${NAME} ${names.join("|")}`)}`,
    "",
    heading("COMMANDS"),
    "",
    rows.map(([n, d]) => `  ${n.padStart(w0)}    ${d.padEnd(w1)}`).join("\n"),
    "",
    `Use ${cyan(`${NAME} <command> --help`)} for more information about a command.`,
  ].join("\n");
}

/**
 * Exit code of one CLI invocation. The two fast paths print with console.log: Bun builds the process.stdout
 * stream lazily, and building it costs more CPU than starting the binary (docs/BENCHMARKS.md).
 */
export async function run(argv: string[]): Promise<number> {
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
    console.log(VERSION);
    return 0;
  }
  if (argv.length === 0 || (argv.length === 1 && (argv[0] === "--help" || argv[0] === "-h"))) {
    console.log(rootHelp());
    return 0;
  }
  const { runCli } = await import("./cli.ts");
  return runCli(main, argv);
}

if (import.meta.main) {
  process.exitCode = await run(process.argv.slice(2));
}
