import { afterEach, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { DatabaseSync } from "node:sqlite";
import { type InboundInput, inboundKey, Store } from "../src/store.ts";
import { migrate, MIGRATIONS } from "../src/store-schema.ts";
import { stateDirProblem } from "../src/state-dir.ts";

const DAY = 86_400_000;
const dirs: string[] = [];
const stores: Store[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "store-test-"));
  dirs.push(d);
  return d;
}

/** A store in a fresh state dir with a hand-driven clock. */
function fresh(start = 1_700_000_000_000) {
  const clock = { t: start };
  const dir = join(tempDir(), "state");
  const store = Store.open(dir, { now: () => clock.t });
  stores.push(store);
  return { store, dir, clock };
}

function reopen(dir: string, now?: () => number): Store {
  const s = Store.open(dir, { now });
  stores.push(s);
  return s;
}

function msg(rowid: number, over: Partial<InboundInput> = {}): InboundInput {
  return {
    guid: `guid-${rowid}`,
    rowid,
    chatId: 7,
    sender: "+15550001111",
    isFromMe: false,
    createdAt: 1_700_000_000_000 + rowid,
    message: { id: rowid, text: `hello ${rowid}` },
    ...over,
  };
}

function userVersionOf(path: string): number {
  const db = new DatabaseSync(path);
  try {
    return Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version);
  } finally {
    db.close();
  }
}

afterEach(() => {
  for (const s of stores.splice(0)) {
    try {
      s.close();
    } catch {
      // already closed by the test
    }
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("inboundKey", () => {
  const rows: [string, string, number, string][] = [
    ["a guid is the key", "ABC-123", 42, "ABC-123"],
    ["an empty guid falls back to the rowid", "", 42, "rowid:42"],
  ];
  for (const [name, guid, rowid, want] of rows) test(name, () => expect(inboundKey(guid, rowid)).toBe(want));
});

describe("open, files and migrations", () => {
  test("creates the state dir 0700 and the db files 0600, in WAL mode", () => {
    const { store, dir } = fresh();
    store.journalInbound("default", msg(1)); // a write makes the -wal/-shm files exist
    expect(store.path).toBe(join(dir, "state.db"));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const f of ["state.db", "state.db-wal", "state.db-shm"]) {
      expect(existsSync(join(dir, f))).toBe(true);
      expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    }
    const raw = new DatabaseSync(store.path);
    expect((raw.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode).toBe("wal");
    raw.close();
  });

  test("never chmods an existing state dir: 0755 is used as it is, a group-writable one is refused", () => {
    const dir = join(tempDir(), "state");
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    reopen(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o755);
    const shared = join(tempDir(), "shared");
    mkdirSync(shared);
    chmodSync(shared, 0o775);
    expect(() => Store.open(shared)).toThrow(`state dir ${shared} is writable by others`);
    expect(statSync(shared).mode & 0o777).toBe(0o775);
  });

  test("an empty (version 0) database file is migrated to the latest schema", () => {
    const dir = join(tempDir(), "state");
    mkdirSync(dir);
    writeFileSync(join(dir, "state.db"), "");
    const store = reopen(dir);
    expect(userVersionOf(store.path)).toBe(MIGRATIONS.length);
    store.setMeta("k", "v");
    expect(store.getMeta("k")).toBe("v");
  });

  test("reopening keeps the data and does not re-run migrations", () => {
    const { store, dir } = fresh();
    store.journalInbound("default", msg(9));
    store.close();
    const again = reopen(dir);
    expect(again.getCursor("default")).toBe(9);
    expect(userVersionOf(again.path)).toBe(MIGRATIONS.length);
  });

  test("a v1 database is migrated by appending one migration, keeping its rows", () => {
    const { store } = fresh();
    store.journalInbound("default", msg(3));
    store.close();
    const db = new DatabaseSync(store.path);
    try {
      const v = migrate(db, [...MIGRATIONS, "ALTER TABLE inbound ADD COLUMN extra TEXT NOT NULL DEFAULT 'x'"]);
      expect(v).toBe(MIGRATIONS.length + 1);
      expect(db.prepare("SELECT key, extra FROM inbound").all()).toEqual([{ key: "guid-3", extra: "x" }]);
    } finally {
      db.close();
    }
  });

  test("a failing migration rolls back and leaves the previous version", () => {
    const { store } = fresh();
    store.close();
    const db = new DatabaseSync(store.path);
    try {
      expect(() => migrate(db, [...MIGRATIONS, "CREATE TABLE t2 (a); SELECT * FROM no_such_table"])).toThrow();
      expect(Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version)).toBe(
        MIGRATIONS.length,
      );
      expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 't2'").get()).toBeUndefined();
    } finally {
      db.close();
    }
  });

  test("a database from a newer binary is refused, not modified", () => {
    const { store, dir } = fresh();
    store.close();
    const db = new DatabaseSync(store.path);
    db.exec(`PRAGMA user_version = ${MIGRATIONS.length + 5}`);
    db.close();
    expect(() => reopen(dir)).toThrow(/newer than this binary/);
    expect(userVersionOf(store.path)).toBe(MIGRATIONS.length + 5);
  });
});

describe("inbound journal and cursor", () => {
  test("a new row is journaled as new and moves the cursor to its rowid", () => {
    const { store, clock } = fresh();
    expect(store.getCursor("default")).toBeUndefined();
    expect(store.journalInbound("default", msg(10, { isFromMe: true }))).toBe(true);
    expect(store.getCursor("default")).toBe(10);
    const row = store.getInbound("default", "guid-10")!;
    expect(row).toMatchObject({
      accountId: "default",
      key: "guid-10",
      guid: "guid-10",
      rowid: 10,
      chatId: 7,
      sender: "+15550001111",
      isFromMe: true,
      createdAt: 1_700_000_000_010,
      receivedAt: clock.t,
      state: "new",
      message: { id: 10, text: "hello 10" },
    });
    expect(row.reason).toBeUndefined();
    expect(row.reply).toBeUndefined();
  });

  test("a duplicate key is not journaled again but still advances the cursor", () => {
    const { store } = fresh();
    store.journalInbound("default", msg(10));
    store.setInbound("default", "guid-10", { state: "done" });
    // the same message re-delivered with a newer ROWID (a known imsg failure mode)
    expect(store.journalInbound("default", msg(15, { guid: "guid-10" }))).toBe(false);
    expect(store.getCursor("default")).toBe(15);
    expect(store.getInbound("default", "guid-10")).toMatchObject({ rowid: 10, state: "done" });
    expect(store.countInbound("default")).toBe(1);
  });

  test("the cursor never moves backwards", () => {
    const { store } = fresh();
    store.journalInbound("default", msg(20));
    store.journalInbound("default", msg(5));
    expect(store.getCursor("default")).toBe(20);
  });

  test("setCursor seeds a first-run cursor and only ever moves it forward", () => {
    const { store } = fresh();
    store.setCursor("default", 700);
    expect(store.getCursor("default")).toBe(700);
    store.setCursor("default", 650);
    expect(store.getCursor("default")).toBe(700);
    store.journalInbound("default", msg(701));
    expect(store.getCursor("default")).toBe(701);
    expect(store.countInbound("default")).toBe(1);
  });

  test("a row without guid is keyed by rowid", () => {
    const { store } = fresh();
    expect(store.journalInbound("default", msg(33, { guid: "" }))).toBe(true);
    expect(store.journalInbound("default", msg(33, { guid: "" }))).toBe(false);
    expect(store.getInbound("default", "rowid:33")?.rowid).toBe(33);
  });

  test("a row can be journaled straight into a final state with a reason", () => {
    const { store } = fresh();
    store.journalInbound("default", msg(1), "skipped", "stale");
    expect(store.getInbound("default", "guid-1")).toMatchObject({ state: "skipped", reason: "stale" });
    expect(store.unfinishedInbound("default")).toEqual([]);
  });

  test("a row that cannot be journaled does not move the cursor", () => {
    const { store } = fresh();
    store.journalInbound("default", msg(1));
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(() => store.journalInbound("default", msg(2, { message: circular }))).toThrow();
    expect(store.getCursor("default")).toBe(1);
    expect(store.getInbound("default", "guid-2")).toBeUndefined();
  });

  test("accounts have separate cursors and journals", () => {
    const { store } = fresh();
    store.journalInbound("work", msg(50));
    store.journalInbound("default", msg(3));
    expect(store.journalInbound("default", msg(50))).toBe(true); // same guid, other account
    expect(store.getCursor("work")).toBe(50);
    expect(store.getCursor("default")).toBe(50);
    expect(store.countInbound("work")).toBe(1);
    expect(store.countInbound("default")).toBe(2);
  });

  test("setInbound changes only the given fields and stamps updatedAt", () => {
    const { store, clock } = fresh();
    store.journalInbound("default", msg(1));
    clock.t += 1000;
    expect(store.setInbound("default", "guid-1", { state: "dispatched", agentId: "main", sessionKey: "agent:main:main" })).toBe(true);
    clock.t += 1000;
    expect(store.setInbound("default", "guid-1", { state: "replied", reply: { text: "hi", chunks: 1 } })).toBe(true);
    expect(store.getInbound("default", "guid-1")).toMatchObject({
      state: "replied",
      agentId: "main",
      sessionKey: "agent:main:main",
      reply: { text: "hi", chunks: 1 },
      updatedAt: clock.t,
    });
    expect(store.setInbound("default", "nope", { state: "done" })).toBe(false);
  });

  test("unfinished rows are new, dispatched and replied, ordered by rowid", () => {
    const { store } = fresh();
    const states = ["done", "replied", "new", "dropped", "dispatched", "failed", "pairing", "skipped"] as const;
    // journal in descending rowid order to prove the ordering is by rowid, not insertion
    states.forEach((s, i) => store.journalInbound("default", msg(100 - i), s));
    store.journalInbound("other", msg(1));
    expect(store.unfinishedInbound("default").map((r) => [r.rowid, r.state])).toEqual([
      [96, "dispatched"],
      [98, "new"],
      [99, "replied"],
    ]);
    expect(store.countInbound("default", "new")).toBe(1);
    expect(store.countInbound("default", "done")).toBe(1);
    expect(store.countInbound("default")).toBe(8);
  });
});

describe("outbound", () => {
  const base = { accountId: "default", target: "+15550001111", chatId: 7 };

  test("knowsGuidInChat: an inbound row or a sent part of that chat, in that account; nothing else", () => {
    const { store } = fresh();
    store.journalInbound("default", msg(10, { chatId: 7 }));
    store.journalInbound("default", msg(11, { chatId: 7, guid: "" }));
    const part = store.recordOutbound({ ...base, inboundKey: "guid-10", seq: 0, text: "hi" });
    store.markOutbound(part.id, "sent", { messageGuid: "OUT-1" });
    const rows: [string, string, number, string, boolean][] = [
      ["an inbound row of the chat", "default", 7, "guid-10", true],
      ["one of our parts in the chat", "default", 7, "OUT-1", true],
      ["the same guid in another chat", "default", 8, "guid-10", false],
      ["our part, asked in another chat", "default", 8, "OUT-1", false],
      ["another account", "work", 7, "guid-10", false],
      ["an unknown guid", "default", 7, "guid-99", false],
      ["the journal key of a row without a guid", "default", 7, "rowid:11", false],
    ];
    for (const [name, account, chat, guid, want] of rows) expect([name, store.knowsGuidInChat(account, guid, chat)]).toEqual([name, want]);
  });

  test("a chunk is recorded pending with its fields", () => {
    const { store, clock } = fresh();
    const row = store.recordOutbound({ ...base, inboundKey: "g1", seq: 0, text: "hi", file: "/tmp/a.png" });
    expect(row).toMatchObject({ ...base, inboundKey: "g1", seq: 0, text: "hi", file: "/tmp/a.png", state: "pending", createdAt: clock.t });
    expect(row.messageGuid).toBeUndefined();
  });

  test("recording the same (inbound, seq) again returns the existing row and its state", () => {
    const { store } = fresh();
    const a = store.recordOutbound({ ...base, inboundKey: "g1", seq: 0, text: "hi" });
    store.markOutbound(a.id, "sent", { messageId: 901, messageGuid: "OUT-1" });
    const b = store.recordOutbound({ ...base, inboundKey: "g1", seq: 0, text: "hi again" });
    expect(b).toMatchObject({ id: a.id, state: "sent", text: "hi", messageId: 901, messageGuid: "OUT-1" });
    expect(store.outboundFor("default", "g1")).toHaveLength(1);
  });

  test("sends without an inbound key are never merged", () => {
    const { store } = fresh();
    const a = store.recordOutbound({ ...base, seq: 0, text: "x" });
    const b = store.recordOutbound({ ...base, seq: 0, text: "x" });
    expect(b.id).not.toBe(a.id);
    expect(b.inboundKey).toBeUndefined();
  });

  test("markOutbound keeps earlier info it is not given", () => {
    const { store } = fresh();
    const a = store.recordOutbound({ ...base, inboundKey: "g1", seq: 0, text: "hi" });
    store.markOutbound(a.id, "unknown", { error: "timeout" });
    store.markOutbound(a.id, "sent", { messageGuid: "OUT-9" });
    expect(store.outboundFor("default", "g1")[0]).toMatchObject({ state: "sent", error: "timeout", messageGuid: "OUT-9" });
  });

  test("outboundFor orders by seq; unsettled lists pending and unknown only", () => {
    const { store } = fresh();
    const ids = [2, 0, 1].map((seq) => store.recordOutbound({ ...base, inboundKey: "g1", seq, text: `c${seq}` }).id);
    store.markOutbound(ids[0]!, "sent"); // seq 2
    store.markOutbound(ids[1]!, "failed", { error: "boom" }); // seq 0
    const other = store.recordOutbound({ ...base, inboundKey: "g2", seq: 0, text: "u" });
    store.markOutbound(other.id, "unknown");
    store.recordOutbound({ ...base, accountId: "work", inboundKey: "g1", seq: 0, text: "w" });
    expect(store.outboundFor("default", "g1").map((r) => [r.seq, r.state])).toEqual([
      [0, "failed"],
      [1, "pending"],
      [2, "sent"],
    ]);
    expect(store.unsettledOutbound("default").map((r) => [r.inboundKey, r.seq, r.state])).toEqual([
      ["g1", 1, "pending"],
      ["g2", 0, "unknown"],
    ]);
  });

  test("outboundByEcho finds parts by normalized text since a time; guids are looked up per account", () => {
    const { store, clock } = fresh();
    store.recordOutbound({ ...base, seq: 0, text: "same", echoKey: "same" });
    clock.t += 60_000;
    const since = clock.t;
    const r = store.recordOutbound({ ...base, seq: 0, text: "same", echoKey: "same" });
    store.recordOutbound({ ...base, seq: 1, text: "other", echoKey: "other" });
    store.markOutbound(r.id, "sent", { messageGuid: "OUT-2" });
    expect(store.outboundByEcho("default", "same", since).map((o) => [o.text, o.messageGuid, o.chatId, o.target])).toEqual([
      ["same", "OUT-2", 7, "+15550001111"],
    ]);
    expect(store.outboundByEcho("work", "same", 0)).toEqual([]);
    expect(store.hasOutboundGuid("default", "OUT-2")).toBe(true);
    expect(store.hasOutboundGuid("default", "OUT-3")).toBe(false);
    expect(store.hasOutboundGuid("work", "OUT-2")).toBe(false);
  });
});

describe("activity", () => {
  test("reports last inbound, last sent and the unfinished backlog", () => {
    const { store, clock } = fresh();
    expect(store.activity("default")).toEqual({ lastInboundAt: undefined, lastOutboundAt: undefined, backlog: 0 });
    store.journalInbound("default", msg(1));
    store.journalInbound("default", msg(2), "dropped", "from me");
    const inAt = clock.t;
    clock.t += 5000;
    const o = store.recordOutbound({ accountId: "default", seq: 0, target: "+15550001111", text: "x" });
    expect(store.activity("default").lastOutboundAt).toBeUndefined(); // pending is not "sent"
    store.markOutbound(o.id, "sent");
    expect(store.activity("default")).toEqual({ lastInboundAt: inAt, lastOutboundAt: clock.t, backlog: 1 });
  });
});

describe("session history", () => {
  test("returns the last N turns oldest first, per session", () => {
    const { store } = fresh();
    for (let i = 1; i <= 5; i++) store.appendHistory("s1", i % 2 ? "user" : "assistant", `t${i}`);
    store.appendHistory("s2", "user", "other");
    expect(store.getHistory("s1", 3)).toEqual([
      { role: "user", text: "t3" },
      { role: "assistant", text: "t4" },
      { role: "user", text: "t5" },
    ]);
    expect(store.getHistory("s1", 100)).toHaveLength(5);
    expect(store.getHistory("s1", 0)).toEqual([]);
    store.clearHistory("s1");
    expect(store.getHistory("s1", 10)).toEqual([]);
    expect(store.getHistory("s2", 10)).toEqual([{ role: "user", text: "other" }]);
  });
});

describe("group pending context", () => {
  test("keeps only the newest `limit` per chat; take returns oldest first and empties", () => {
    const { store, clock } = fresh();
    for (let i = 1; i <= 5; i++) {
      clock.t += 1;
      store.addGroupPending("default", 42, { sender: "+15550002222", text: `m${i}` }, 3);
    }
    store.addGroupPending("default", 43, { sender: "user@example.com", text: "elsewhere" }, 3);
    store.addGroupPending("work", 42, { sender: "user@example.com", text: "other account" }, 3);
    const taken = store.takeGroupPending("default", 42);
    expect(taken.map((e) => e.text)).toEqual(["m3", "m4", "m5"]);
    expect(taken[0]).toMatchObject({ sender: "+15550002222", at: clock.t - 2 });
    expect(store.takeGroupPending("default", 42)).toEqual([]);
    expect(store.takeGroupPending("default", 43).map((e) => e.text)).toEqual(["elsewhere"]);
    expect(store.takeGroupPending("work", 42).map((e) => e.text)).toEqual(["other account"]);
  });

  test("a limit of 0 keeps nothing", () => {
    const { store } = fresh();
    store.addGroupPending("default", 42, { sender: "+15550002222", text: "a" }, 3);
    store.addGroupPending("default", 42, { sender: "+15550002222", text: "b" }, 0);
    expect(store.takeGroupPending("default", 42)).toEqual([]);
  });
});

describe("meta", () => {
  test("set, overwrite and read back", () => {
    const { store } = fresh();
    expect(store.getMeta("missing")).toBeUndefined();
    store.setMeta("k", "1");
    store.setMeta("k", "2");
    expect(store.getMeta("k")).toBe("2");
  });
});

describe("prune", () => {
  test("deletes every row older than the window, unfinished or unsettled ones too (no message text kept forever)", () => {
    const { store, clock } = fresh();
    const t0 = clock.t;
    // old rows (t0)
    store.journalInbound("default", msg(1), "done");
    store.journalInbound("default", msg(2), "dropped", "no mention");
    store.journalInbound("default", msg(3)); // unfinished, but past the window: pruned too
    store.journalInbound("default", msg(4), "dispatched");
    const sent = store.recordOutbound({ accountId: "default", inboundKey: "guid-1", seq: 0, target: "+15550001111", text: "a" });
    store.markOutbound(sent.id, "sent");
    const failed = store.recordOutbound({ accountId: "default", inboundKey: "guid-1", seq: 1, target: "+15550001111", text: "b" });
    store.markOutbound(failed.id, "failed");
    store.recordOutbound({ accountId: "default", inboundKey: "guid-1", seq: 2, target: "+15550001111", text: "c" }); // pending
    const unknown = store.recordOutbound({ accountId: "default", inboundKey: "guid-1", seq: 3, target: "+15550001111", text: "d" });
    store.markOutbound(unknown.id, "unknown");
    store.appendHistory("s", "user", "old");
    store.addGroupPending("default", 42, { sender: "+15550002222", text: "old" }, 10);
    // recent rows (t0 + 29 days)
    clock.t = t0 + 29 * DAY;
    store.journalInbound("default", msg(5), "done");
    store.appendHistory("s", "assistant", "new");
    store.addGroupPending("default", 42, { sender: "+15550002222", text: "new" }, 10);

    clock.t = t0 + 30 * DAY + 1;
    expect(store.prune(30)).toEqual({ inbound: 4, outbound: 4, history: 1, groupPending: 1 });
    expect(store.unfinishedInbound("default")).toEqual([]);
    expect(store.getInbound("default", "guid-5")?.state).toBe("done");
    expect(store.outboundFor("default", "guid-1")).toEqual([]);
    expect(store.getHistory("s", 10)).toEqual([{ role: "assistant", text: "new" }]);
    expect(store.takeGroupPending("default", 42).map((e) => e.text)).toEqual(["new"]);
    expect(store.getCursor("default")).toBe(5); // the cursor survives pruning
  });

  test("a row finished recently is kept even if it arrived long ago", () => {
    const { store, clock } = fresh();
    store.journalInbound("default", msg(1));
    clock.t += 40 * DAY;
    store.setInbound("default", "guid-1", { state: "done" });
    expect(store.prune(30).inbound).toBe(0);
  });
});

describe("concurrent access", () => {
  test("two Store instances on one file see each other's writes", () => {
    const { store: a, dir } = fresh();
    const b = reopen(dir);
    a.journalInbound("default", msg(1));
    expect(b.getCursor("default")).toBe(1);
    expect(b.journalInbound("default", msg(1))).toBe(false); // b knows a decided it
    b.journalInbound("default", msg(2));
    expect(a.getInbound("default", "guid-2")?.state).toBe("new");
    expect(a.getCursor("default")).toBe(2);
  });

  test("a reader is not blocked by an open write transaction and sees only committed data", () => {
    const { store, dir } = fresh();
    store.journalInbound("default", msg(1));
    const writer = new DatabaseSync(join(dir, "state.db"));
    try {
      writer.exec("BEGIN IMMEDIATE");
      writer.exec("UPDATE cursors SET rowid = 99 WHERE account_id = 'default'");
      expect(store.getCursor("default")).toBe(1);
      writer.exec("COMMIT");
      expect(store.getCursor("default")).toBe(99);
    } finally {
      writer.close();
    }
  });

  test("a second process's write is seen, and busy_timeout waits out its lock", async () => {
    const { store, dir } = fresh();
    store.journalInbound("default", msg(1));
    const script = join(tempDir(), "child.ts");
    writeFileSync(
      script,
      `import { DatabaseSync } from "node:sqlite";
import { Store } from ${JSON.stringify(join(import.meta.dir, "../src/store.ts"))};
const dir = process.argv[2]!;
const raw = new DatabaseSync(dir + "/state.db");
raw.exec("PRAGMA busy_timeout = 5000");
raw.exec("BEGIN IMMEDIATE");
raw.exec("INSERT INTO meta (key, value) VALUES ('child', 'was here')");
console.log("locked");
// Hold the write lock long enough for the parent to run into it.
setTimeout(() => {
  raw.exec("COMMIT");
  raw.close();
  const store = Store.open(dir);
  store.journalInbound("default", { guid: "child-guid", rowid: 500, chatId: 7, sender: "+15550002222",
    isFromMe: false, createdAt: 1, message: { from: "child" } });
  store.close();
  console.log("done");
}, 1500);
`,
    );
    const child = spawn(process.execPath, [script, dir], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
    const seen: string[] = [];
    const waiters = new Set<() => void>();
    createInterface({ input: child.stdout }).on("line", (l) => {
      seen.push(l);
      for (const w of waiters) w();
    });
    const waitFor = (want: string) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${want}" from child; stderr: ${stderr}`)), 10_000);
        const check = () => {
          if (!seen.includes(want)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      });
    try {
      await waitFor("locked");
      // Control: without a busy timeout the lock is really in the way.
      const impatient = new DatabaseSync(join(dir, "state.db"));
      impatient.exec("PRAGMA busy_timeout = 0");
      expect(() => impatient.exec("BEGIN IMMEDIATE")).toThrow(/locked|busy/i);
      impatient.close();
      // The store waits for the child's commit instead of failing with SQLITE_BUSY.
      expect(store.journalInbound("default", msg(400))).toBe(true);
      expect(store.getMeta("child")).toBe("was here");
      await waitFor("done");
      expect(await exited).toBe(0);
      expect(store.getInbound("default", "child-guid")).toMatchObject({ rowid: 500, message: { from: "child" } });
      expect(store.getCursor("default")).toBe(500);
    } finally {
      child.kill();
    }
  });
});

describe("group pending context: peek, then clear what a turn consumed", () => {
  test("context added while a turn runs survives the clear", () => {
    const dir = mkdtempSync(join(tmpdir(), "store-gp-"));
    const store = Store.open(dir);
    try {
      store.addGroupPending("default", 42, { sender: "+15550002222", text: "one" }, 10);
      store.addGroupPending("default", 42, { sender: "+15550002222", text: "two" }, 10);
      const { entries, upTo } = store.peekGroupPending("default", 42);
      expect(entries.map((e) => e.text)).toEqual(["one", "two"]);
      store.addGroupPending("default", 42, { sender: "+15550003333", text: "during the turn" }, 10);
      store.clearGroupPending("default", 42, upTo);
      expect(store.peekGroupPending("default", 42).entries.map((e) => e.text)).toEqual(["during the turn"]);
      expect(store.peekGroupPending("default", 7)).toEqual({ entries: [], upTo: 0 });
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("stateDirProblem", () => {
  const dir = (mode: number, uid = 501, isDir = true) => ({ mode, uid, isDirectory: () => isDir });
  const rows: { name: string; st: ReturnType<typeof dir>; problem?: string }[] = [
    { name: "0700, ours", st: dir(0o40700) },
    { name: "0755, ours (not loosened, not tightened)", st: dir(0o40755) },
    { name: "sticky world-writable (/tmp)", st: dir(0o41777), problem: "writable by others" },
    { name: "group-writable", st: dir(0o40770), problem: "writable by others" },
    { name: "someone else's", st: dir(0o40700, 0), problem: "owned by another user (uid 0)" },
    { name: "a file", st: dir(0o100600, 501, false), problem: "is not a directory" },
  ];
  for (const r of rows) {
    test(r.name, () => {
      const got = stateDirProblem("/x", r.st, 501);
      if (r.problem) expect(got).toContain(r.problem);
      else expect(got).toBeUndefined();
    });
  }
});

describe("debounced bursts in the journal", () => {
  test("mergeBurst: earlier rows merged into the anchor, only the anchor unfinished; a later burst takes an old anchor's rows along", () => {
    const { store } = fresh();
    for (const r of [1, 2, 3, 4]) store.journalInbound("default", msg(r));
    store.mergeBurst("default", "guid-2", ["guid-1"], { agentId: "main", sessionKey: "s" });
    expect(store.getInbound("default", "guid-1")).toMatchObject({ state: "merged", anchorKey: "guid-2" });
    expect(store.getInbound("default", "guid-2")).toMatchObject({ state: "dispatched", sessionKey: "s" });
    expect(store.unfinishedInbound("default").map((r) => r.key)).toEqual(["guid-2", "guid-3", "guid-4"]);
    expect(store.mergedInto("default", "guid-2").map((r) => r.key)).toEqual(["guid-1"]);
    // After a crash the resumed anchor joins the rows that came after it: one turn for all four.
    store.mergeBurst("default", "guid-4", ["guid-2", "guid-3"], { agentId: "main", sessionKey: "s" });
    expect(store.mergedInto("default", "guid-4").map((r) => r.key)).toEqual(["guid-1", "guid-2", "guid-3"]);
    expect(store.mergedInto("default", "guid-2")).toEqual([]);
    expect(store.unfinishedInbound("default").map((r) => r.key)).toEqual(["guid-4"]);
  });
});
