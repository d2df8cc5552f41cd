// The imsg versions the simulator speaks. No side effects: test helpers and tools import it.

/** The imsg behaviour the simulator speaks unless told otherwise: the imsg people install today. */
export const DEFAULT_SIM_VERSION = "0.15.6";
/** Behaviour profiles the simulator implements. */
export const SIM_VERSIONS = ["0.9.0", "0.15.6"] as const;
export type SimVersion = (typeof SIM_VERSIONS)[number];
