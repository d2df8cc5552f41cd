// Simulator settings read once per process: the imsg version it speaks and the IMSG_SIM_* knobs
// (docs/IMSG-PROTOCOL.md "Simulator controls").
import { DEFAULT_SELF } from "../sim-db.ts";

import { DEFAULT_SIM_VERSION, SIM_VERSIONS } from "./version.ts";

export function envInt(name: string): number | undefined {
  const v = process.env[name];
  return v && /^\d+$/.test(v) ? Number(v) : undefined;
}

/** Numeric compare of dotted versions; unparsable parts count as 0. */
export function versionAtLeast(v: string, min: string): boolean {
  const a = v.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const b = min.split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== b[i]) return (a[i] ?? 0) > b[i]!;
  return true;
}

/**
 * `--imsg-version X` / `--imsg-version=X` anywhere on the command line (the flag wins over IMSG_SIM_VERSION; the last
 * one wins, so a caller's flag beats the one a test wrapper pins).
 */
function flagVersion(argv: string[]): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--imsg-version") found = argv[i + 1];
    else if (a.startsWith("--imsg-version=")) found = a.slice("--imsg-version=".length);
  }
  return found;
}

/** argv without the simulator-only `--imsg-version` flag. */
export function stripVersionFlag(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--imsg-version") i++;
    else if (!argv[i]!.startsWith("--imsg-version=")) out.push(argv[i]!);
  }
  return out;
}

/** The behaviour profile: "0.9.0" or "0.15.6". */
export const SIM_VERSION = flagVersion(process.argv) || process.env.IMSG_SIM_VERSION || DEFAULT_SIM_VERSION;
if (!(SIM_VERSIONS as readonly string[]).includes(SIM_VERSION)) {
  process.stdout.write(`imsg-sim: unsupported --imsg-version ${SIM_VERSION} (use ${SIM_VERSIONS.join(" or ")})\n`);
  process.exit(2);
}
/** True in 0.15.6 mode: strict params, lanes, typed errors, degraded start, buffer_limit, status, messages.after. */
export const MODERN = SIM_VERSION === "0.15.6";
/** Version reported by --version and gating pre-0.9 quirks; IMSG_VERSION overrides it in 0.9 mode. */
export const VERSION = MODERN ? SIM_VERSION : process.env.IMSG_VERSION || SIM_VERSION;
export const SELF = process.env.IMSG_SIM_SELF || DEFAULT_SELF;
export const POLL_MS = envInt("IMSG_SIM_POLL_MS") ?? 5000;
export const STALL_AFTER = envInt("IMSG_SIM_WATCH_STALL_AFTER");
export const HAS_RPC = versionAtLeast(VERSION, "0.3.0");
/** 0.15: how long a send waits for its chat.db row before answering -32001 may_have_completed (real: 8 s). */
export const RECEIPT_WAIT_MS = envInt("IMSG_SIM_RECEIPT_WAIT_MS") ?? 8000;
/** 0.15: outstanding requests admitted before -32000 Server busy (real: 128). */
export const BUSY_LIMIT = envInt("IMSG_SIM_BUSY_LIMIT") ?? 128;
/** 0.15: polls an unjoined (chat_id 0) row is retried before it is dropped, and the pause between them. */
export const UNJOINED_RETRIES = envInt("IMSG_SIM_UNJOINED_RETRIES") ?? 20;
export const UNJOINED_RETRY_MS = envInt("IMSG_SIM_UNJOINED_RETRY_MS") ?? 50;
