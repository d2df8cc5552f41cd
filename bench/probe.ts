#!/usr/bin/env bun
// Probe benchmark: how long a healthy `probe` takes against the imsg simulator — in-process (probeAccount alone),
// as the CLI (`bun src/main.ts probe --json`, process start included) and, when sshd is installed, through an
// `exec ssh -T host imsg "$@"` wrapper to a local sshd. Target: well under a second locally.
// Usage: bun run bench/probe.ts [--runs 20]
import { spawnSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { loadConfig, resolveAccount } from "../src/config.ts";
import { probeAccount } from "../src/probe.ts";
import { baseConfig, childEnv, MAIN, workspace } from "../test/helpers/gateway.ts";
import { createSim } from "../test/helpers/sim.ts";
import { sshdAvailable, startSshd } from "../test/helpers/sshd.ts";
import { stats } from "./startup.ts";

/** Wall times (ms) of `runs` CLI probes after one warm-up; throws unless each exits 0. */
function timeCli(configPath: string, stateDir: string, runs: number): number[] {
  const out: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [MAIN, "probe", "--json", "--config", configPath, "--state-dir", stateDir], { env: childEnv(), encoding: "utf8" });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`probe exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
    if (i > 0) out.push(ms);
  }
  return out;
}

function report(label: string, samples: number[]): void {
  const s = stats(samples);
  console.log(`${label.padEnd(46)} median ${s.median.toFixed(1).padStart(7)} ms   p90 ${s.p90.toFixed(1).padStart(7)} ms   (n=${samples.length})`);
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  const runsAt = argv.indexOf("--runs");
  const runs = runsAt >= 0 ? Number(argv[runsAt + 1]) : 20;
  if (!Number.isInteger(runs) || runs < 1) {
    console.error("probe: --runs needs a positive integer");
    process.exit(2);
  }
  console.log(`Bun ${Bun.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? "CPU"}, load ${(await import("node:os")).loadavg()[0]!.toFixed(2)}`);
  const sim = createSim();
  const ws = workspace();
  try {
    for (let i = 0; i < 20; i++) sim.db.inject({ from: `+1555000${String(1000 + i)}`, text: `message ${i}` });
    ws.writeConfig(baseConfig(sim.cliPath));
    const config = loadConfig(ws.configPath);
    const account = resolveAccount(config);
    const inProcess: number[] = [];
    for (let i = 0; i <= runs; i++) {
      const t0 = performance.now();
      const r = await probeAccount(config, account, { stateDir: ws.stateDir, timeoutMs: 10_000, requireGateway: false });
      const ms = performance.now() - t0;
      if (!r.ok) throw new Error(`probe failed: ${JSON.stringify(r.checks)}`);
      if (i > 0) inProcess.push(ms);
    }
    report("probeAccount (in-process)", inProcess);
    report("bun src/main.ts probe --json", timeCli(ws.configPath, ws.stateDir, Math.min(runs, 20)));

    if (sshdAvailable()) {
      const sshd = await startSshd();
      try {
        const wrapper = join(sim.dir, "imsg-ssh");
        writeFileSync(wrapper, `#!/bin/sh\nexec ssh -F ${sshd.sshConfigPath} -T testmac ${sim.cliPath} "$@"\n`);
        chmodSync(wrapper, 0o755);
        ws.writeConfig(baseConfig(wrapper));
        const t0 = performance.now();
        spawnSync("ssh", [...sshd.sshArgs, "testmac", "true"]);
        report("ssh testmac true (connection cost)", [performance.now() - t0]);
        report("probe --json via ssh wrapper", timeCli(ws.configPath, ws.stateDir, Math.min(runs, 10)));
      } finally {
        await sshd.stop();
      }
    }
  } finally {
    sim.cleanup();
    ws.cleanup();
  }
}
