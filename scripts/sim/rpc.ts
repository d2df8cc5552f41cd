// JSON-RPC envelopes and parameters of `imsg rpc`: parsing, errors, lenient (0.9) and strict (0.15) params
// (docs/IMSG-PROTOCOL.md "Framing" and "Parameters").
import { MODERN } from "./env.ts";

/** A JSON-RPC error as imsg builds it: data is a string, or (0.15 typed errors) an object. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data: string | Record<string, Json>,
  ) {
    super(message);
  }
}
export const invalidParams = (data: string) => new RpcError(-32602, "Invalid params", data);
export const internalError = (data: string) => new RpcError(-32603, "Internal error", data);
export const FOUNDATION_PARSE_ERROR = "The data couldn’t be read because it isn’t in the correct format.";

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Params = Record<string, Json>;
export interface Request {
  hasId: boolean;
  id: Json;
  method: string;
  params: Params;
}

/** Parser rules of docs/IMSG-PROTOCOL.md "Framing", in order. */
export function parseRequest(line: string): Request | { id: Json; error: RpcError } {
  let value: Json;
  try {
    value = JSON.parse(line) as Json;
  } catch {
    return { id: null, error: new RpcError(-32700, "Parse error", FOUNDATION_PARSE_ERROR) };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { id: null, error: new RpcError(-32600, "Invalid Request", "request must be an object") };
  }
  const hasId = "id" in value;
  const id = hasId ? value.id! : null;
  if (MODERN ? value.jsonrpc !== "2.0" : typeof value.jsonrpc === "string" && value.jsonrpc !== "2.0") {
    return { id, error: new RpcError(-32600, "Invalid Request", "jsonrpc must be 2.0") };
  }
  if (typeof value.method !== "string" || value.method === "") {
    return { id, error: new RpcError(-32600, "Invalid Request", "method is required") };
  }
  const p = value.params;
  if (MODERN && "params" in value && (p === null || typeof p !== "object" || Array.isArray(p))) {
    return { id, error: invalidParams("params must be an object") };
  }
  const params = p !== null && typeof p === "object" && !Array.isArray(p) ? p : {};
  return { hasId, id, method: value.method, params };
}

// 0.9 param coercions (docs/IMSG-PROTOCOL.md "Parameters"): lenient, "absent" rather than an error.
export /** 0.15 is type-strict: a present value of the wrong type is -32602 naming the key (`name` given by callers). */
function wrongType(name: string | undefined, v: Json | undefined, kind: string): void {
  if (MODERN && name !== undefined && v !== undefined) throw invalidParams(`${name} must be ${kind}`);
}
export function strParam(v: Json | undefined, name?: string): string | undefined {
  if (typeof v === "string") return v;
  wrongType(name, v, "a string");
  if (typeof v === "number") return String(v);
  if (typeof v === "boolean") return v ? "1" : "0";
  return undefined;
}
export function intParam(v: Json | undefined, name?: string): number | undefined {
  if (typeof v === "number" && (Number.isInteger(v) || !MODERN || name === undefined)) return Math.trunc(v);
  wrongType(name, v, "an integer");
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "string" && /^[+-]?\d+$/.test(v)) return Number(v);
  return undefined;
}
export function boolParam(v: Json | undefined, name?: string): boolean | undefined {
  if (typeof v === "boolean") return v;
  wrongType(name, v, "a boolean");
  if (typeof v === "number") return v !== 0;
  if (v === "true") return true;
  if (v === "false") return false;
  return undefined;
}
export function strArrayParam(v: Json | undefined, name?: string): string[] {
  if (MODERN && name !== undefined && v !== undefined && !(Array.isArray(v) && v.every((x) => typeof x === "string"))) {
    throw invalidParams(`${name} must be an array of strings`);
  }
  if (Array.isArray(v)) return v.map((x) => strParam(x)).filter((x): x is string => x !== undefined);
  if (typeof v === "string") {
    return v
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  }
  return [];
}
/** ISO-8601 with optional fractional seconds and a required zone; bad values are -32603. */
export function isoParam(v: Json | undefined, name?: string): number | undefined {
  const s = strParam(v, name);
  if (s === undefined) return undefined;
  const ok = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/.test(s) && !Number.isNaN(Date.parse(s));
  if (!ok) throw internalError(`Invalid ISO8601 date: ${s}`);
  return Date.parse(s);
}
export function debounceParam(p: Params): number {
  const v = p.debounce_ms ?? p.debounceMs;
  if (v === undefined || v === null) return 500;
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === "string" && /^\d+$/.test(v)) return Number(v);
  throw invalidParams("debounce_ms must be a non-negative integer");
}

/** A handler's outcome: the result object, plus work that must follow the response (the first watch poll). */
export interface Handled {
  result: Record<string, Json>;
  after?: () => void;
}

/** 0.15 accepts only the documented keys of each method: anything else is -32602 naming the key. */
export function checkKeys(method: string, p: Params, keys: readonly string[]): void {
  if (!MODERN) return;
  for (const k of Object.keys(p)) if (!keys.includes(k)) throw invalidParams(`unknown parameter ${k} for ${method}`);
}

/** 0.15 typed delivery outcome data (docs/IMSG-PROTOCOL.md "Typed delivery outcomes"). */
export type Disposition = "not_started" | "may_have_completed" | "still_in_flight";
export function deliveryError(disposition: Disposition, operation: string, detail: string, transport = "applescript"): RpcError {
  const data = { retry_safe: disposition === "not_started", disposition, transport, operation, detail };
  if (disposition === "not_started") return new RpcError(-32603, "Delivery failed before dispatch", data);
  return new RpcError(-32001, "Delivery outcome unknown", data);
}
export function laneBlocked(operation: string, transport: string): RpcError {
  return new RpcError(-32004, "Mutation lane blocked", {
    retry_safe: false,
    disposition: "still_in_flight",
    transport,
    operation,
    detail: `A prior ${operation} remains in flight. Restart the RPC child before sending another mutation.`,
  });
}
export function databaseUnavailable(path: string, detail: string): RpcError {
  return new RpcError(-32002, "Database unavailable", { path, detail, retryable: true });
}
export const serverBusy = (detail: string) => new RpcError(-32000, "Server busy", detail);
