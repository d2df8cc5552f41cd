// stdout/stderr of the simulator: JSON lines escaped like Foundation, chatter, benchmark traces.
import { appendFileSync } from "node:fs";

const TRACE = process.env.IMSG_SIM_TRACE;
/** Benchmark timing: epoch ms with sub-ms precision (timeOrigin + now), comparable across processes. */
export function trace(entry: Record<string, unknown>): void {
  if (TRACE) appendFileSync(TRACE, JSON.stringify({ ...entry, t: performance.timeOrigin + performance.now() }) + "\n");
}

let lastWrite: Promise<void> = Promise.resolve();
/** Writes one stdout line; the promise lets exit wait for the pipe (Bun truncates on exit otherwise). */
export function writeLine(line: string): void {
  lastWrite = new Promise((res) => process.stdout.write(line + "\n", () => res()));
}
export async function exit(code: number): Promise<never> {
  await lastWrite;
  process.exit(code);
}
export function chatter(msg: string): void {
  if (process.env.IMSG_SIM_STDERR === "1") process.stderr.write(`imsg-sim: ${msg}\n`);
}
/** RPC output: Foundation escapes forward slashes; inside JSON text "/" only occurs in strings. */
export function emit(obj: unknown): void {
  writeLine(JSON.stringify(obj).replaceAll("/", "\\/"));
}
