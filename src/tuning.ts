// The gateway's tunables: timings and limits that are not user configuration. Defaults are the product's;
// tests and benchmarks shorten some (OPENCLAW_IMSG_TUNING).
import { DEFAULTS } from "./config-schema.ts";
import { SETTLE_MS } from "./deliver.ts";
import type { WatchTuning } from "./watch.ts";

/** Tunables; defaults are the product's, tests and benchmarks shorten some. */
export interface GatewayTuning extends WatchTuning {
  /** Text echo window: an inbound row equal to something we sent in this conversation this recently is an echo. */
  echoWindowMs: number;
  maxConcurrentTurns: number;
  /** How long shutdown waits for agent turns before cancelling them (they re-run after a restart). */
  shutdownGraceMs: number;
  /** How long a send interrupted by its child's death gets to land before history is checked. */
  settleMs: number;
  /** The inbound debounce window when messages.inbound configures none (tests run with 0). */
  inboundDebounceMs: number;
}

export const DEFAULT_TUNING: GatewayTuning = {
  backoffInitialMs: 100,
  backoffMaxMs: 60_000,
  stableAfterMs: 60_000,
  watchdogMs: 15_000,
  echoWindowMs: 30_000,
  maxConcurrentTurns: 16,
  shutdownGraceMs: 10_000,
  settleMs: SETTLE_MS,
  inboundDebounceMs: DEFAULTS.inboundDebounceMs,
};
