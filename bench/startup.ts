#!/usr/bin/env bun
// Startup benchmark: wall time of the compiled linux binary's `--help` and `--version`, with
// `bun run src/main.ts --help` for comparison. Builds the binary first when dist/ lacks it.
// Usage: bun run bench/startup.ts [--runs 60] [--write-docs]
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { binaryName, build, ROOT } from "../scripts/build.ts";

/** Median and 90th percentile (nearest rank) of a sample, in the sample's unit. */
export function stats(samples: number[]): { median: number; p90: number } {
  if (samples.length === 0) throw new Error("no samples");
  const s = [...samples].sort((a, b) => a - b);
  const rank = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  const mid = s.length / 2;
  const median = s.length % 2 ? s[Math.floor(mid)]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, p90: rank(0.9) };
}

/** Wall times (ms) of `runs` sequential runs of a command, after `warmup` unmeasured runs; throws if one fails. */
export function timeRuns(cmd: string, args: string[], runs: number, warmup = 3): number[] {
  const out: number[] = [];
  // NO_COLOR keeps the help output identical between runs; the env is otherwise inherited.
  const env = { ...process.env, NO_COLOR: "1" };
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    if (i >= warmup) out.push(ms);
  }
  return out;
}

/** One measured command. */
export interface Row {
  label: string;
  runs: number;
  median: number;
  p90: number;
}

/** Markdown for the "Startup" section of docs/BENCHMARKS.md. */
export function renderSection(rows: Row[], context: string): string {
  const lines = [
    "## Startup",
    "",
    `Wall time of one process start to exit (\`spawnSync\`), measured by \`bun run bench/startup.ts\`. ${context}`,
    "Target: ≤ 15 ms median for the compiled binary.",
    "",
    "| command | runs | median | p90 |",
    "|---|---|---|---|",
    ...rows.map((r) => `| \`${r.label}\` | ${r.runs} | ${r.median.toFixed(1)} ms | ${r.p90.toFixed(1)} ms |`),
    "",
  ];
  return lines.join("\n");
}

/** Replaces the `## Startup` section of a markdown document (up to the next `## `), or appends it. */
export function replaceSection(doc: string, section: string): string {
  const start = doc.search(/^## Startup[ \t]*$/m);
  if (start < 0) {
    const base = doc.trim() === "" ? "# Benchmarks\n" : doc.replace(/\n*$/, "\n");
    return `${base}\n${section}`;
  }
  const rest = doc.slice(start + 1);
  const next = rest.search(/^## /m);
  const end = next < 0 ? doc.length : start + 1 + next;
  return doc.slice(0, start) + section + (end < doc.length ? "\n" + doc.slice(end) : "");
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const runsAt = argv.indexOf("--runs");
  const runs = runsAt >= 0 ? Number(argv[runsAt + 1]) : 60;
  if (!Number.isInteger(runs) || runs < 1) {
    console.error("startup: --runs needs a positive integer");
    process.exit(2);
  }
  const bin = join(ROOT, "dist", binaryName("linux-x64"));
  if (!existsSync(bin)) {
    console.log(`building ${bin} …`);
    await build({ targets: ["linux-x64"], log: (l) => console.log(`  ${l}`) });
  }
  const bun = process.execPath;
  const main = join(ROOT, "src/main.ts");
  const measure = (label: string, cmd: string, args: string[], n: number): Row => {
    const r = { label, runs: n, ...stats(timeRuns(cmd, args, n)) };
    console.log(`${label.padEnd(44)} median ${r.median.toFixed(1).padStart(6)} ms   p90 ${r.p90.toFixed(1).padStart(6)} ms   (n=${n})`);
    return r;
  };
  const rows = [
    measure("openclaw-imsg-linux-x64 --help", bin, ["--help"], runs),
    measure("openclaw-imsg-linux-x64 --version", bin, ["--version"], runs),
    measure("openclaw-imsg-linux-x64 probe --help", bin, ["probe", "--help"], runs),
    // --no-env-file: measure the source path, not whatever .env the working tree holds.
    measure("bun run src/main.ts --help", bun, ["--no-env-file", "run", main, "--help"], Math.min(runs, 20)),
  ];
  const version = spawnSync(bin, ["--version"], { encoding: "utf8" }).stdout.trim();
  const context = `Binary ${version}, Bun ${Bun.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? "CPU"}, ${new Date().toISOString().slice(0, 10)}.`;
  if (argv.includes("--write-docs")) {
    const docPath = join(ROOT, "docs/BENCHMARKS.md");
    const doc = existsSync(docPath) ? readFileSync(docPath, "utf8") : "";
    writeFileSync(docPath, replaceSection(doc, renderSection(rows, context)));
    console.log(`updated ${docPath}`);
  }
}
