#!/usr/bin/env bun
// `npm run bench`: every benchmark in turn; each prints its own figures.
import { spawnSync } from "node:child_process";
import { join } from "node:path";

for (const b of ["startup.ts", "probe.ts", "gateway.ts", "debounce.ts"]) {
  const file = join(import.meta.dir, b);
  if (!(await Bun.file(file).exists())) continue;
  console.log(`\n== ${b}`);
  const r = spawnSync(process.execPath, [file, ...process.argv.slice(2)], { stdio: "inherit" });
  if (r.status !== 0) process.exitCode = 1;
}
