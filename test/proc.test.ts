import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { PROC_LIMITS, runProcess } from "../src/proc.ts";
import { waitFor } from "./helpers/sim.ts";

/** Pids of live processes whose command line contains `marker` (read from /proc: Linux test hosts). */
function pidsWith(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8");
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      // A zombie (state Z) has exited; only its parent's wait is missing.
      if (cmd.includes(marker) && !/^\d+ \(.*\) Z/.test(stat)) out.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

describe("runProcess", () => {
  test("exit code, stdout, stderr and stdin", async () => {
    const r = await runProcess("sh", ["-c", "cat; echo err >&2; exit 3"], { timeoutMs: 10_000, input: "hello\n" });
    expect(r).toMatchObject({ code: 3, stdout: "hello\n", stderr: "err\n", timedOut: false, aborted: false, stdoutCut: false });
  });

  test("a command that does not exist is a spawnError, not a rejection", async () => {
    const r = await runProcess("/nonexistent/openclaw-proc-test", [], { timeoutMs: 5000 });
    expect(r.spawnError).toBe("ENOENT");
    expect(r.code).toBeNull();
  });

  test("multi-byte characters split across pipe chunks decode intact (no U+FFFD)", async () => {
    // 120k characters of 2-, 3- and 4-byte UTF-8, written in odd-sized pieces so chunk edges split characters.
    const script =
      `const s = "é€😀".repeat(40000); const b = Buffer.from(s); for (let i = 0; i < b.length; i += 4093) process.stdout.write(b.subarray(i, i + 4093));`;
    const r = await runProcess(process.execPath, ["-e", script], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("\uFFFD");
    expect(r.stdout).toBe("é€😀".repeat(40000));
  });

  test("stdout beyond the cap is cut and reported, without a broken last character", async () => {
    const n = PROC_LIMITS.maxStdoutBytes; // 3-byte characters: the cap falls inside one
    const r = await runProcess(process.execPath, ["-e", `process.stdout.write("€".repeat(${n}))`], { timeoutMs: 30_000 });
    expect(r.stdoutCut).toBe(true);
    expect(r.stdout).not.toContain("\uFFFD");
    expect(Buffer.byteLength(r.stdout)).toBeLessThanOrEqual(n);
    expect(Buffer.byteLength(r.stdout)).toBeGreaterThan(n - 3);
  });

  test("a timeout kills the whole process group, including grandchildren that ignore SIGTERM", async () => {
    const marker = `${30 + Math.floor(Math.random() * 1000) / 1000 + 0.0001}`;
    const r = await runProcess("sh", ["-c", `trap '' TERM; sleep ${marker} & sleep ${marker} & wait`], { timeoutMs: 500 });
    expect(r.timedOut).toBe(true);
    await waitFor(() => pidsWith(`sleep\u0000${marker}`).length === 0, 10_000, "no orphaned sleep");
    expect(pidsWith(`sleep\u0000${marker}`)).toEqual([]);
  });

  test("an abort kills the group like a timeout", async () => {
    const marker = `${40 + Math.floor(Math.random() * 1000) / 1000 + 0.0001}`;
    const ctl = new AbortController();
    const p = runProcess("sh", ["-c", `sleep ${marker} & wait`], { timeoutMs: 60_000, signal: ctl.signal });
    await waitFor(() => pidsWith(`sleep\u0000${marker}`).length > 0, 10_000, "sleep started");
    ctl.abort();
    const r = await p;
    expect(r.aborted).toBe(true);
    expect(r.timedOut).toBe(false);
    await waitFor(() => pidsWith(`sleep\u0000${marker}`).length === 0, 10_000, "no orphaned sleep");
  });
});
