// The 0.14+ reads: parseStatus (tolerant of unknown and odd fields), and initialize/status/messagesAfter against
// the simulator in both versions (0.9 lacks them: undefined, not an error).
import { afterEach, describe, expect, test } from "bun:test";
import { initialize, parseStatus, status } from "../src/imsg.ts";
import { messagesAfter } from "../src/imsg-after.ts";
import { RpcClient, RpcError } from "../src/rpc.ts";
import { createSim, type Sim } from "./helpers/sim.ts";

describe("parseStatus", () => {
  const rows: { name: string; raw: unknown; want: unknown }[] = [
    {
      name: "a full 0.15 snapshot; unknown fields ignored, features that are on listed",
      raw: {
        version: "0.15.6",
        protocol_version: 1,
        database: { path: "/x/chat.db", ready: true, features: { reactions: true, unread_state: false } },
        bridge: { ready: false, error: "not started" },
        contacts: { available: true },
        methods: ["status", "send"],
        supported_methods: ["status", "send", "tapback"],
        capabilities: { engine: { version: "0.15.6" }, features: { "tapback.emoji": 1, "x.off": 0 } },
        future: { anything: [1, 2] },
      },
      want: {
        status: {
          version: "0.15.6",
          protocolVersion: 1,
          database: { ready: true, path: "/x/chat.db" },
          bridge: { ready: false, error: "not started" },
          methods: ["status", "send"],
          supportedMethods: ["status", "send", "tapback"],
          features: ["reactions"],
          capabilities: ["tapback.emoji"],
          capabilityLevels: { "tapback.emoji": 1, "x.off": 0 },
        },
      },
    },
    {
      name: "capability levels are kept (tapback.emoji 2 = emoji tapbacks send)",
      raw: { database: { ready: true }, capabilities: { features: { "tapback.emoji": 2, yes: true, s: "3", no: false } } },
      want: { status: { capabilities: ["tapback.emoji", "yes", "s"], capabilityLevels: { "tapback.emoji": 2, yes: 1, s: 3, no: 0 } } },
    },
    {
      name: "a database error and nothing else",
      raw: { database: { ready: false, error: "does not exist" } },
      want: { status: { database: { ready: false, error: "does not exist" }, methods: [], supportedMethods: [], features: [], capabilities: [] } },
    },
    {
      name: "odd types in optional fields fall back instead of failing",
      raw: { version: 15, database: { ready: true, path: 3 }, bridge: "yes", methods: "all", capabilities: [] },
      want: { status: { database: { ready: true }, methods: [], features: [], capabilities: [] } },
    },
  ];
  for (const r of rows) test(r.name, () => expect(parseStatus(r.raw)).toMatchObject(r.want as object));

  test("without database readiness it is an error", () => {
    expect("error" in parseStatus({ version: "0.15.6" })).toBe(true);
    expect("error" in parseStatus(null)).toBe(true);
  });
});

describe("initialize, status and messagesAfter against the simulator", () => {
  let sim: Sim | undefined;
  let client: RpcClient | undefined;
  afterEach(async () => {
    await client?.stop();
    sim?.cleanup();
    client = sim = undefined;
  });
  const open = (s: Sim) => {
    // The wrapper carries the sim's version; the suite's $IMSG_SIM_VERSION must not override it.
    const { IMSG_SIM_VERSION: _v, ...env } = process.env;
    return (client = RpcClient.start({ cliPath: s.cliPath, timeoutMs: 10_000, env }));
  };

  test("0.9: neither status nor messages.after exists: undefined", async () => {
    sim = createSim({ version: "0.9.0" });
    const c = open(sim);
    expect(await initialize(c)).toBeUndefined();
    expect(await status(c)).toBeUndefined();
    expect(await messagesAfter(c, { sinceRowid: 0, limit: 10 })).toBeUndefined();
  });

  test("0.15: initialize reports version, database, bridge and methods; the bridge shows in status", async () => {
    sim = createSim({ version: "0.15.6" });
    const c = open(sim);
    const st = await initialize(c);
    expect(st).toMatchObject({ version: "0.15.6", protocolVersion: 1, database: { ready: true, path: sim.dbPath }, bridge: { ready: false } });
    expect(st!.methods).toContain("messages.after");
    expect(st!.methods).not.toContain("tapback");
    expect(st!.features).toContain("reactions");
    sim.db.setControl("bridge", true);
    const st2 = await status(c);
    expect(st2!.bridge).toEqual({ ready: true, error: undefined });
    expect(st2!.methods).toContain("tapback");
  });

  test("0.15: a missing database is reported by status, not thrown", async () => {
    sim = createSim({ version: "0.15.6", noDatabase: true });
    const st = await status(open(sim));
    expect(st!.database.ready).toBe(false);
    expect(st!.database.error).toContain("does not exist");
    expect(st!.methods).not.toContain("chats.list");
  });

  test("0.15: messagesAfter pages in ROWID order with next_rowid and has_more", async () => {
    sim = createSim({ version: "0.15.6" });
    const ids = [1, 2, 3, 4, 5].map((i) => sim!.db.inject({ from: "+15550001111", text: `m${i}` }).rowid);
    const c = open(sim);
    const p1 = await messagesAfter(c, { sinceRowid: 0, limit: 3 });
    expect(p1!.messages.map((m) => m.text)).toEqual(["m1", "m2", "m3"]);
    expect(p1).toMatchObject({ nextRowid: ids[2], hasMore: true, malformed: 0 });
    const p2 = await messagesAfter(c, { sinceRowid: p1!.nextRowid, limit: 3 });
    expect(p2!.messages.map((m) => m.id)).toEqual(ids.slice(3));
    expect(p2!.hasMore).toBe(false);
    const e = await messagesAfter(c, { sinceRowid: 0, limit: 501 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RpcError);
    expect((e as RpcError).classified.kind).toBe("invalid_params");
  });
});
