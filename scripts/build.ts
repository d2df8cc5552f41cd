#!/usr/bin/env bun
// Release build: one self-contained binary per target from src/main.ts, plus a SHA256SUMS file.
// Usage: bun run scripts/build.ts [--target linux-x64|darwin-arm64|darwin-x64]… [--outdir dist]
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";

/** Targets we ship, in build order (the one this box can run first). */
export const TARGETS = ["linux-x64", "darwin-arm64", "darwin-x64"] as const;
export type Target = (typeof TARGETS)[number];

/** Repository root (scripts/..). */
export const ROOT = resolve(import.meta.dir, "..");

/** File name of a target's binary inside the output directory. */
export function binaryName(target: Target): string {
  return `openclaw-imsg-${target}`;
}

/** Commit and cleanliness of a work tree. */
export interface GitState {
  commit: string;
  dirty: boolean;
}

/** `<version>+<commit>[-dirty]`, or `<version>+unknown` when the source is not a git work tree. */
export function versionString(pkgVersion: string, git: GitState | undefined): string {
  if (!git) return `${pkgVersion}+unknown`;
  return `${pkgVersion}+${git.commit}${git.dirty ? "-dirty" : ""}`;
}

/** Reads HEAD's short commit and whether anything (tracked or untracked, not ignored) is uncommitted; undefined outside git. */
export function gitState(root: string): GitState | undefined {
  const git = (...args: string[]) => spawnSync("git", ["-C", root, ...args], { encoding: "utf8" });
  const head = git("rev-parse", "--short", "HEAD");
  if (head.error || head.status !== 0) return undefined;
  const status = git("status", "--porcelain");
  if (status.status !== 0) return undefined;
  // Untracked files count: an untracked source file would be bundled but is not in the commit.
  return { commit: head.stdout.trim(), dirty: status.stdout.trim() !== "" };
}

/** Parsed command line of this script. */
export interface BuildArgs {
  targets: Target[];
  outdir?: string;
}

/** Parses `--target <t>` (repeatable, also `--target=<t>`) and `--outdir <dir>`; no target means all. */
export function parseBuildArgs(argv: string[]): BuildArgs {
  const targets: Target[] = [];
  let outdir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith("--") && a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === "" || (inline === undefined && v.startsWith("--"))) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === "--target") {
      const t = value();
      if (!(TARGETS as readonly string[]).includes(t)) throw new Error(`unknown target "${t}" (expected one of ${TARGETS.join(", ")})`);
      if (!targets.includes(t as Target)) targets.push(t as Target);
    } else if (flag === "--outdir") outdir = value();
    else throw new Error(`unknown argument "${a}" (usage: build.ts [--target ${TARGETS.join("|")}]… [--outdir dir])`);
  }
  return { targets: targets.length ? targets : [...TARGETS], outdir };
}

/** One line in `sha256sum` format (two spaces: text mode, which `sha256sum -c` and `shasum -a 256 -c` read). */
export function sumsLine(sha256: string, name: string): string {
  return `${sha256}  ${name}`;
}

/** Streams a file through SHA-256 (binaries are ~100 MB; no need to hold one in memory). */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (d) => hash.update(d))
      .on("error", reject)
      .on("end", () => resolvePromise(hash.digest("hex")));
  });
}

/** Options of build(). */
export interface BuildOptions {
  targets?: readonly Target[];
  /** Output directory (default `<root>/dist`); created if missing. */
  outdir?: string;
  /** Source tree to build (default the repository this script lives in). */
  root?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** One built binary. */
export interface BuiltBinary {
  target: Target;
  path: string;
  bytes: number;
  sha256: string;
  ms: number;
}

/** What build() produced. */
export interface BuildResult {
  version: string;
  binaries: BuiltBinary[];
  sumsPath: string;
}

/** Builds the binaries and writes `<outdir>/SHA256SUMS` listing exactly the binaries of this run. */
export async function build(opts: BuildOptions = {}): Promise<BuildResult> {
  const root = opts.root ?? ROOT;
  const outdir = resolve(opts.outdir ?? join(root, "dist"));
  const targets = opts.targets ?? TARGETS;
  const log = opts.log ?? (() => {});
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  const version = versionString(pkg.version, gitState(root));
  mkdirSync(outdir, { recursive: true });
  const binaries: BuiltBinary[] = [];
  for (const target of targets) {
    const started = performance.now();
    const path = join(outdir, binaryName(target));
    // Each target bundles into its own staging dir: splitting and sourcemaps write chunk .map files
    // that would otherwise litter dist/. Staging inside outdir keeps the final rename on one filesystem,
    // so dist/ never holds a half-written binary.
    const stage = join(outdir, `.stage-${target}-${process.pid}`);
    rmSync(stage, { recursive: true, force: true });
    try {
      const result = await Bun.build({
        entrypoints: [join(root, "src/main.ts")],
        outdir: stage,
        compile: {
          target: `bun-${target}`,
          outfile: binaryName(target),
          // A compiled binary must not pick up .env or bunfig.toml from whatever directory it runs in.
          autoloadDotenv: false,
          autoloadBunfig: false,
        },
        // = `--production`: minify and inline NODE_ENV (plain --compile inlines "development").
        minify: true,
        define: { __VERSION__: JSON.stringify(version), "process.env.NODE_ENV": JSON.stringify("production") },
        // Bytecode needs ESM for main.ts's top-level await; splitting keeps lazy subcommands out of startup.
        bytecode: true,
        format: "esm",
        splitting: true,
        sourcemap: "linked",
        throw: false,
      });
      if (!result.success) {
        throw new Error(`build for ${target} failed:\n${result.logs.map((l) => String(l)).join("\n")}`);
      }
      renameSync(join(stage, binaryName(target)), path);
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
    const built: BuiltBinary = { target, path, bytes: statSync(path).size, sha256: await sha256File(path), ms: Math.round(performance.now() - started) };
    binaries.push(built);
    log(`${basename(path)}  ${(built.bytes / 2 ** 20).toFixed(1)} MiB  ${built.ms} ms`);
  }
  const sumsPath = join(outdir, "SHA256SUMS");
  const names = binaries.map((b) => ({ name: basename(b.path), sha256: b.sha256 })).sort((a, b) => a.name.localeCompare(b.name));
  const text = names.map((b) => sumsLine(b.sha256, b.name)).join("\n") + "\n";
  writeFileSync(`${sumsPath}.tmp`, text);
  renameSync(`${sumsPath}.tmp`, sumsPath);
  return { version, binaries, sumsPath };
}

if (import.meta.main) {
  let args: BuildArgs;
  try {
    args = parseBuildArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`build: ${(err as Error).message}`);
    process.exit(2);
  }
  try {
    const started = performance.now();
    const res = await build({ targets: args.targets, outdir: args.outdir, log: (l) => console.log(l) });
    console.log(`version ${res.version}; ${res.binaries.length} binaries and ${res.sumsPath} in ${Math.round(performance.now() - started)} ms`);
  } catch (err) {
    console.error(`build: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
