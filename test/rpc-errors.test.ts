// classifyRpcError: what each imsg error (0.9 string data, 0.15 typed object data) means for the caller.
// Plus the client's side of it against the simulator in 0.15.6 mode: a -32002 stays a per-request RpcError
// (the child heals once the database is readable), unlike 0.9's startup-error mode.
import { afterEach, describe, expect, test } from "bun:test";
import { chatsList } from "../src/imsg.ts";
import { classifyError, classifyRpcError, ImsgPermissionError, RpcClient, RpcError, type RpcErrorClass } from "../src/rpc.ts";
import { createSim, type Sim } from "./helpers/sim.ts";

const FDA_BANNER =
  "unable to open database file (code: 14)\n\n⚠️  Permission Error: Cannot access Messages database\n\nThe Messages database at /x/chat.db requires Full Disk Access permission.";
const MISSING = "The configured Messages database does not exist. Create or copy chat.db at this path, then retry.";
const UNREADABLE =
  "The configured Messages database could not be opened read-only. Verify the path and grant Full Disk Access to the supervising process, then retry.";
const delivery = (disposition: string, retry_safe: boolean) => ({
  retry_safe,
  disposition,
  transport: "applescript",
  operation: "send",
  detail: `send ${disposition}`,
});

describe("classifyRpcError", () => {
  const rows: { name: string; code: number; data?: unknown; want: Partial<RpcErrorClass> & { kind: RpcErrorClass["kind"] } }[] = [
    { name: "server busy (string data)", code: -32000, data: "too many outstanding requests", want: { kind: "server_busy", retrySafe: true } },
    {
      name: "outcome unknown, still in flight",
      code: -32001,
      data: delivery("still_in_flight", false),
      want: { kind: "outcome_unknown", disposition: "still_in_flight", retrySafe: false, detail: "send still_in_flight" },
    },
    {
      name: "outcome unknown, may have completed",
      code: -32001,
      data: delivery("may_have_completed", false),
      want: { kind: "outcome_unknown", disposition: "may_have_completed", retrySafe: false },
    },
    {
      name: "outcome unknown without data: assume it may have landed",
      code: -32001,
      want: { kind: "outcome_unknown", disposition: "may_have_completed", retrySafe: false },
    },
    {
      name: "database missing (0.15)",
      code: -32002,
      data: { path: "/x/chat.db", detail: MISSING, retryable: true },
      want: { kind: "database_unavailable", cause: "missing", path: "/x/chat.db", detail: MISSING, retryable: true, retrySafe: true },
    },
    {
      name: "database unreadable (0.15)",
      code: -32002,
      data: { path: "/x/chat.db", detail: UNREADABLE, retryable: true },
      want: { kind: "database_unavailable", cause: "permission", retryable: true },
    },
    {
      name: "database unavailable, unknown text",
      code: -32002,
      data: { path: "/x/chat.db", detail: "disk on fire", retryable: false },
      want: { kind: "database_unavailable", cause: "unknown", retryable: false },
    },
    {
      name: "database unavailable without data",
      code: -32002,
      want: { kind: "database_unavailable", cause: "unknown", detail: "database unavailable", retryable: true },
    },
    {
      name: "bridge unavailable",
      code: -32003,
      data: { detail: "The bridge is not started.", retryable: true },
      want: { kind: "bridge_unavailable", retrySafe: true, detail: "The bridge is not started." },
    },
    { name: "mutation lane blocked", code: -32004, data: delivery("still_in_flight", false), want: { kind: "lane_blocked", retrySafe: false } },
    {
      name: "failed before dispatch",
      code: -32603,
      data: delivery("not_started", true),
      want: { kind: "not_started", retrySafe: true, detail: "send not_started" },
    },
    { name: "retry_safe without disposition", code: -32603, data: { retry_safe: true }, want: { kind: "not_started", retrySafe: true } },
    {
      name: "plain 0.9 internal error",
      code: -32603,
      data: "Messages.app refused: not sent",
      want: { kind: "other", retrySafe: false, detail: "Messages.app refused: not sent" },
    },
    {
      name: "0.9 permission banner",
      code: -32603,
      data: FDA_BANNER,
      want: { kind: "database_unavailable", cause: "permission", detail: "unable to open database file (code: 14)", retryable: true },
    },
    { name: "0.9 authorization text", code: -32603, data: "authorization denied", want: { kind: "database_unavailable", cause: "permission" } },
    { name: "method not found (0.9 status)", code: -32601, data: "status", want: { kind: "method_not_found", retrySafe: false, detail: "status" } },
    { name: "invalid params (string)", code: -32602, data: "unknown parameter foo for send", want: { kind: "invalid_params", retrySafe: false } },
    { name: "an unknown code with object data", code: -32099, data: { x: 1 }, want: { kind: "other", detail: '{"x":1}' } },
    { name: "an unknown code without data", code: -1, want: { kind: "other", retrySafe: false } },
  ];
  for (const r of rows) {
    test(r.name, () => {
      expect(classifyRpcError(r.code, r.data)).toMatchObject(r.want);
    });
  }

  test("RpcError keeps the raw data and classifies itself; its message carries the detail", () => {
    const e = new RpcError("chats.list", -32002, "Database unavailable", { path: "/x/chat.db", detail: MISSING, retryable: true });
    expect(e.data).toEqual({ path: "/x/chat.db", detail: MISSING, retryable: true });
    expect(e.classified.kind).toBe("database_unavailable");
    expect(e.message).toBe(`imsg chats.list failed: Database unavailable (code -32002): ${MISSING}`);
    expect(new RpcError("send", -32602, "Invalid params", "chat_id is required").message).toBe(
      "imsg send failed: Invalid params (code -32602): chat_id is required",
    );
  });

  test("classifyError: RpcError by code, the 0.9 permission error as a database problem, others undefined", () => {
    expect(classifyError(new RpcError("send", -32000, "Server busy", "busy"))?.kind).toBe("server_busy");
    expect(classifyError(new ImsgPermissionError(FDA_BANNER))).toMatchObject({ kind: "database_unavailable", cause: "permission", retryable: true });
    expect(classifyError(new Error("x"))).toBeUndefined();
  });
});

describe("the client and a 0.15 database problem", () => {
  let sim: Sim | undefined;
  let client: RpcClient | undefined;
  afterEach(async () => {
    await client?.stop();
    sim?.cleanup();
    client = sim = undefined;
  });

  test("an unreadable database is a per-request -32002 RpcError, and the same child works once it is readable", async () => {
    sim = createSim({ version: "0.15.6" });
    sim.db.inject({ from: "+15550001111", text: "hi" });
    sim.db.setUnreadable(true);
    client = RpcClient.start({ cliPath: sim.cliPath, timeoutMs: 10_000 });
    const e = await chatsList(client, 1).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(RpcError);
    expect((e as RpcError).classified).toMatchObject({ kind: "database_unavailable", cause: "permission", path: sim.dbPath });
    expect(client.permissionError).toBeUndefined();
    sim.db.setUnreadable(false);
    expect(await chatsList(client, 1)).toHaveLength(1);
  });

  test("a missing database is a -32002 with cause missing", async () => {
    sim = createSim({ version: "0.15.6", noDatabase: true });
    client = RpcClient.start({ cliPath: sim.cliPath, timeoutMs: 10_000 });
    const e = await chatsList(client, 1).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(RpcError);
    expect((e as RpcError).classified).toMatchObject({ kind: "database_unavailable", cause: "missing", path: sim.dbPath });
  });
});
