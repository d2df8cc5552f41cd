// The only file allowed to look at Bun/Deno globals (every other module runs unchanged under Bun and Deno).
declare const Bun: { version: string } | undefined;
declare const Deno: { version: { deno: string } } | undefined;

export type RuntimeName = "bun" | "deno" | "node";

export function runtimeName(): RuntimeName {
  if (typeof Bun !== "undefined") return "bun";
  if (typeof Deno !== "undefined") return "deno";
  return "node";
}

export function runtimeVersion(): string {
  if (typeof Bun !== "undefined") return Bun.version;
  if (typeof Deno !== "undefined") return Deno.version.deno;
  return process.versions.node ?? "unknown";
}

/** True inside a `bun build --compile` executable. */
export function isCompiled(): boolean {
  const main = process.argv[1] ?? "";
  if (main.startsWith("/$bunfs/") || main.includes("~BUN")) return true;
  if (typeof Deno !== "undefined") return !/deno(\.exe)?$/.test(process.execPath);
  return false;
}

/** argv prefix that re-runs this same CLI (used by `gateway --detach`). */
export function selfCommand(): [string, ...string[]] {
  if (isCompiled()) return [process.execPath];
  if (runtimeName() === "deno") return [process.execPath, "run", "-A", process.argv[1]!];
  return [process.execPath, process.argv[1]!];
}
