// The errors of the imsg RPC client, and the one classifier that says what an imsg error means for the caller
// (retry, look before re-sending, restart the child, fix the setup). Re-exported by rpc.ts.
// imsg 0.9 sends `data` as a string; 0.14+ sends typed errors with object data (docs/IMSG-PROTOCOL.md).

/** A JSON-RPC error response from imsg; `data` is kept as received (string on 0.9, often an object on 0.14+). */
export class RpcError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    readonly rpcMessage: string,
    readonly data?: unknown,
  ) {
    const text = dataText(data);
    super(`imsg ${method} failed: ${rpcMessage} (code ${code})${text ? `: ${firstLine(text)}` : ""}`);
    this.name = "RpcError";
  }
  /** What this error means for the caller (see classifyRpcError). */
  get classified(): RpcErrorClass {
    return classifyRpcError(this.code, this.data);
  }
}

/** No response within the request's timeout (the child may be hung or the wrapper buffering). */
export class RpcTimeoutError extends Error {
  constructor(
    readonly method: string,
    readonly timeoutMs: number,
  ) {
    super(`imsg rpc timeout (${method}) after ${timeoutMs} ms`);
    this.name = "RpcTimeoutError";
  }
}

/** The child is gone (exited, killed, stdin broken) or was never running. */
export class RpcClosedError extends Error {
  constructor(
    message: string,
    readonly exitCode?: number | null,
    readonly signal?: string | null,
  ) {
    super(message);
    this.name = "RpcClosedError";
  }
}

/**
 * imsg ≤ 0.13 cannot read the Messages database: Full Disk Access is missing (or the --db path does not exist).
 * Those versions fail every request of the child alike; 0.14+ answers a per-request -32002 instead (RpcError).
 */
export class ImsgPermissionError extends Error {
  constructor(readonly detail: string) {
    super("imsg cannot read the Messages database (Full Disk Access missing, or dbPath does not exist)");
    this.name = "ImsgPermissionError";
  }
}

/** The imsg binary could not be started at all. */
export class ImsgSpawnError extends Error {
  constructor(
    readonly cliPath: string,
    readonly errno: string,
  ) {
    super(errno === "ENOENT" ? `imsg not found: ${cliPath}` : `cannot start ${cliPath}: ${errno}`);
    this.name = "ImsgSpawnError";
  }
}

const PERMISSION_RE = /(permission\s+error|authorization\s+denied|full\s+disk\s+access)/i;

export function firstLine(s: string): string {
  return s.split("\n").find((l) => l.trim())?.trim() ?? s;
}

/** Recognises imsg's Full Disk Access text, whether it arrived as a JSON-RPC error or as a stdout banner. */
export function isPermissionText(text: string): boolean {
  return PERMISSION_RE.test(text);
}

/** The readable part of an error's data: the string itself, an object's `detail`, else its JSON. */
export function dataText(data: unknown): string | undefined {
  if (data === undefined || data === null) return undefined;
  if (typeof data === "string") return data || undefined;
  if (typeof data === "object" && !Array.isArray(data) && typeof (data as { detail?: unknown }).detail === "string") {
    return (data as { detail: string }).detail;
  }
  return JSON.stringify(data);
}

/** Why the database is unavailable: a wrong path, missing access, or a text we do not recognise. */
export type DatabaseCause = "missing" | "permission" | "unknown";

/** What an imsg error means; `retrySafe` says whether sending the same request again cannot duplicate anything. */
export type RpcErrorClass =
  /** -32000: more outstanding requests than imsg admits; the request never ran. Retry with backoff. */
  | { kind: "server_busy"; retrySafe: true; detail?: string }
  /** -32001: a send whose outcome is unknown. still_in_flight also poisons the child's mutation lane. */
  | { kind: "outcome_unknown"; disposition: "still_in_flight" | "may_have_completed"; retrySafe: boolean; detail?: string }
  /** -32002 (0.14+) or a 0.9 permission text: the request never ran; it can succeed once the cause is fixed. */
  | { kind: "database_unavailable"; cause: DatabaseCause; path?: string; detail: string; retryable: boolean; retrySafe: true }
  /** -32003: the IMCore bridge is not running (bridge-only methods, `reply_to`). */
  | { kind: "bridge_unavailable"; retrySafe: true; detail?: string }
  /** -32004: an earlier mutation is still in flight; nothing more is sent on this child. Restart it. */
  | { kind: "lane_blocked"; retrySafe: boolean; detail?: string }
  /** -32603 with disposition not_started: the send failed before dispatch; safe to retry. */
  | { kind: "not_started"; retrySafe: true; detail?: string }
  /** -32601: this imsg does not have the method (0.9 lacks status, initialize, messages.after). */
  | { kind: "method_not_found"; retrySafe: false; detail?: string }
  /** -32602: imsg refused the parameters; the same request fails again. */
  | { kind: "invalid_params"; retrySafe: false; detail?: string }
  /** Anything else: treat as a refusal of this request (0.9's plain -32603 included). */
  | { kind: "other"; retrySafe: false; detail?: string };

export type RpcErrorKind = RpcErrorClass["kind"];

function field(data: unknown, key: string): unknown {
  return data && typeof data === "object" && !Array.isArray(data) ? (data as Record<string, unknown>)[key] : undefined;
}

/** "does not exist" is a wrong dbPath; an open failure or Full Disk Access text is a permission problem. */
export function databaseCause(detail: string): DatabaseCause {
  if (/does not exist|no such file/i.test(detail)) return "missing";
  if (/could not be opened|unable to open|not permitted/i.test(detail) || isPermissionText(detail)) return "permission";
  return "unknown";
}

/** Classifies an imsg JSON-RPC error by code and data (pure; both the 0.9 string form and 0.14+ typed data). */
export function classifyRpcError(code: number, data?: unknown): RpcErrorClass {
  const detail = dataText(data);
  const retrySafeField = field(data, "retry_safe");
  const disposition = field(data, "disposition");
  switch (code) {
    case -32000:
      return { kind: "server_busy", retrySafe: true, detail };
    case -32001: {
      // Without a disposition, the safe reading of "outcome unknown" is that it may have landed.
      const d = disposition === "still_in_flight" ? "still_in_flight" : "may_have_completed";
      return { kind: "outcome_unknown", disposition: d, retrySafe: retrySafeField === true, detail };
    }
    case -32002: {
      const path = field(data, "path");
      const retryable = field(data, "retryable");
      const text = detail ?? "database unavailable";
      return {
        kind: "database_unavailable",
        cause: databaseCause(text),
        ...(typeof path === "string" ? { path } : {}),
        detail: text,
        retryable: retryable !== false,
        retrySafe: true,
      };
    }
    case -32003:
      return { kind: "bridge_unavailable", retrySafe: true, detail };
    case -32004:
      return { kind: "lane_blocked", retrySafe: retrySafeField === true, detail };
    case -32601:
      return { kind: "method_not_found", retrySafe: false, detail };
    case -32602:
      return { kind: "invalid_params", retrySafe: false, detail };
  }
  if (code === -32603 && (disposition === "not_started" || (retrySafeField === true && disposition === undefined))) {
    return { kind: "not_started", retrySafe: true, detail };
  }
  // 0.9 reports a database it cannot open as a plain error carrying the Full Disk Access banner.
  if (typeof data === "string" && isPermissionText(data)) {
    return { kind: "database_unavailable", cause: "permission", detail: firstLine(data), retryable: true, retrySafe: true };
  }
  return { kind: "other", retrySafe: false, detail };
}

/** classifyRpcError for any thrown value: RpcError by code, ImsgPermissionError as a database problem. */
export function classifyError(e: unknown): RpcErrorClass | undefined {
  if (e instanceof RpcError) return e.classified;
  if (e instanceof ImsgPermissionError) {
    return { kind: "database_unavailable", cause: "permission", detail: firstLine(e.detail), retryable: true, retrySafe: true };
  }
  return undefined;
}
