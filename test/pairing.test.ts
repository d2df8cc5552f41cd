import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  approveCode,
  APPROVED_NOTICE,
  approvedSenders,
  generateCode,
  listApproved,
  listRequests,
  normalizeCode,
  PAIRING_ALPHABET,
  PAIRING_MAX_PENDING,
  PAIRING_TTL_MS,
  pairingReply,
  requestPairing,
  revokeSender,
} from "../src/pairing.ts";
import { Store } from "../src/store.ts";

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const dirs: string[] = [];
const stores: Store[] = [];

function fresh() {
  const clock = { t: T0 };
  const dir = mkdtempSync(join(tmpdir(), "pairing-test-"));
  dirs.push(dir);
  const store = Store.open(join(dir, "state"), { now: () => clock.t });
  stores.push(store);
  return { store, clock };
}

afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const CODE_SHAPE = new RegExp(`^[${PAIRING_ALPHABET}]{8}$`);

describe("generateCode", () => {
  test("is 8 characters from the unambiguous alphabet", () => {
    expect(PAIRING_ALPHABET).toBe("ABCDEFGHJKLMNPQRSTUVWXYZ23456789");
    for (let i = 0; i < 200; i++) expect(generateCode()).toMatch(CODE_SHAPE);
  });

  test("codes are random (no repeats across many draws, every letter used)", () => {
    const codes = new Set(Array.from({ length: 2000 }, () => generateCode()));
    expect(codes.size).toBe(2000);
    const used = new Set([...codes].join(""));
    expect(used.size).toBe(PAIRING_ALPHABET.length);
  });

  test("regenerates while the candidate is taken", () => {
    let calls = 0;
    const code = generateCode(() => ++calls < 4);
    expect(calls).toBe(4);
    expect(code).toMatch(CODE_SHAPE);
  });

  test("gives up instead of looping forever when every code is taken", () => {
    expect(() => generateCode(() => true)).toThrow(/unused pairing code/);
  });
});

describe("normalizeCode", () => {
  const rows: [string, string, string][] = [
    ["upper-cases", "abcd2345", "ABCD2345"],
    ["trims", "  ABCD2345\n", "ABCD2345"],
    ["mixed case and spaces", " aBcD2345 ", "ABCD2345"],
  ];
  for (const [name, input, want] of rows) test(name, () => expect(normalizeCode(input)).toBe(want));
});

describe("requestPairing", () => {
  test("a new sender gets a fresh code; a repeat gets the same code and no new reply", () => {
    const { store, clock } = fresh();
    const first = requestPairing(store, "default", "+15550001111", { sender: "+15550001111", chatId: "7" });
    expect(first.created).toBe(true);
    expect(first.code).toMatch(CODE_SHAPE);
    clock.t += 60_000;
    const again = requestPairing(store, "default", "+15550001111", { sender: "+15550001111" });
    expect(again).toEqual({ code: first.code, created: false });
    expect(listRequests(store)).toEqual([
      {
        code: first.code,
        id: "+15550001111",
        accountId: "default",
        createdAt: new Date(T0).toISOString(),
        lastSeenAt: new Date(T0 + 60_000).toISOString(),
        meta: { sender: "+15550001111", chatId: "7" },
      },
    ]);
  });

  test("pending codes are unique", () => {
    const { store } = fresh();
    const codes = ["+15550001111", "+15550002222", "user@example.com"].map(
      (s) => requestPairing(store, "default", s, {}).code,
    );
    expect(new Set(codes).size).toBe(3);
  });

  test(`at ${PAIRING_MAX_PENDING} pending requests a new sender gets no code; existing ones still get theirs`, () => {
    const { store } = fresh();
    const senders = ["+15550001111", "+15550002222", "+15550003333"];
    const codes = senders.map((s) => requestPairing(store, "default", s, {}));
    expect(codes.every((c) => c.created)).toBe(true);
    expect(requestPairing(store, "default", "+15550004444", {})).toEqual({ code: "", created: false });
    expect(requestPairing(store, "default", "+15550002222", {})).toEqual({ code: codes[1]!.code, created: false });
    expect(listRequests(store, "default").map((r) => r.id)).toEqual(senders);
  });

  test("the cap is per account", () => {
    const { store } = fresh();
    for (const s of ["+15550001111", "+15550002222", "+15550003333"]) requestPairing(store, "default", s, {});
    expect(requestPairing(store, "work", "+15550004444", {}).created).toBe(true);
  });

  test("an expired request frees its slot and a new message gets a new code", () => {
    const { store, clock } = fresh();
    const first = requestPairing(store, "default", "+15550001111", {});
    for (const s of ["+15550002222", "+15550003333"]) requestPairing(store, "default", s, {});
    clock.t += PAIRING_TTL_MS + 1;
    const again = requestPairing(store, "default", "+15550001111", {});
    expect(again.created).toBe(true);
    expect(again.code).not.toBe(first.code);
    expect(listRequests(store).map((r) => r.id)).toEqual(["+15550001111"]);
  });

  test("a request still pending just before the hour is kept", () => {
    const { store, clock } = fresh();
    const first = requestPairing(store, "default", "+15550001111", {});
    clock.t += PAIRING_TTL_MS - 1;
    expect(requestPairing(store, "default", "+15550001111", {})).toEqual({ code: first.code, created: false });
  });
});

describe("listRequests", () => {
  test("sorted by createdAt, filtered by account, expired ones gone", () => {
    const { store, clock } = fresh();
    requestPairing(store, "work", "+15550001111", {});
    clock.t += 1000;
    requestPairing(store, "default", "+15550002222", {});
    clock.t += 1000;
    requestPairing(store, "work", "user@example.com", {});
    expect(listRequests(store).map((r) => [r.accountId, r.id])).toEqual([
      ["work", "+15550001111"],
      ["default", "+15550002222"],
      ["work", "user@example.com"],
    ]);
    expect(listRequests(store, "work").map((r) => r.id)).toEqual(["+15550001111", "user@example.com"]);
    clock.t = T0 + PAIRING_TTL_MS + 1500; // only the first two have expired
    expect(listRequests(store).map((r) => r.id)).toEqual(["user@example.com"]);
  });
});

describe("approveCode", () => {
  test("a lower-case code approves the sender of the request's account", () => {
    const { store, clock } = fresh();
    const { code } = requestPairing(store, "work", "+15550001111", {});
    clock.t += 5000;
    expect(approveCode(store, ` ${code.toLowerCase()} `)).toEqual({ accountId: "work", senderId: "+15550001111" });
    expect(approvedSenders(store, "work")).toEqual(["+15550001111"]);
    expect(approvedSenders(store, "default")).toEqual([]);
    expect(listApproved(store)).toEqual([
      { accountId: "work", id: "+15550001111", approvedAt: new Date(T0 + 5000).toISOString() },
    ]);
    expect(listRequests(store)).toEqual([]);
    expect(approveCode(store, code)).toBeUndefined(); // used up
  });

  test("an expired code is not approvable", () => {
    const { store, clock } = fresh();
    const { code } = requestPairing(store, "default", "+15550001111", {});
    clock.t += PAIRING_TTL_MS + 1;
    expect(approveCode(store, code)).toBeUndefined();
    expect(approvedSenders(store, "default")).toEqual([]);
  });

  test("with an account given, another account's code does not match", () => {
    const { store } = fresh();
    const { code } = requestPairing(store, "work", "+15550001111", {});
    expect(approveCode(store, code, "default")).toBeUndefined();
    expect(approveCode(store, code, "work")).toEqual({ accountId: "work", senderId: "+15550001111" });
  });

  test("an unknown code approves nobody", () => {
    const { store } = fresh();
    requestPairing(store, "default", "+15550001111", {});
    expect(approveCode(store, "ZZZZZZZZ")).toBeUndefined();
    expect(listApproved(store)).toEqual([]);
  });

  test("approval frees a pending slot", () => {
    const { store } = fresh();
    const codes = ["+15550001111", "+15550002222", "+15550003333"].map((s) => requestPairing(store, "default", s, {}).code);
    approveCode(store, codes[0]!);
    expect(requestPairing(store, "default", "+15550004444", {}).created).toBe(true);
  });
});

describe("revokeSender and accounts", () => {
  test("revoking removes the approval; a second revoke finds nothing", () => {
    const { store } = fresh();
    approveCode(store, requestPairing(store, "default", "+15550001111", {}).code);
    approveCode(store, requestPairing(store, "work", "+15550001111", {}).code);
    expect(revokeSender(store, "default", "+15550001111")).toBe(true);
    expect(revokeSender(store, "default", "+15550001111")).toBe(false);
    expect(approvedSenders(store, "default")).toEqual([]);
    expect(approvedSenders(store, "work")).toEqual(["+15550001111"]); // the other account is untouched
  });

  test("revoking also withdraws a pending request", () => {
    const { store } = fresh();
    requestPairing(store, "default", "user@example.com", {});
    expect(revokeSender(store, "default", "user@example.com")).toBe(true);
    expect(listRequests(store)).toEqual([]);
  });

  test("the same sender pairs separately per account, each with its own code", () => {
    const { store } = fresh();
    const a = requestPairing(store, "default", "+15550001111", {});
    const b = requestPairing(store, "work", "+15550001111", {});
    expect(a.created && b.created).toBe(true);
    expect(a.code).not.toBe(b.code);
    approveCode(store, a.code);
    expect(approvedSenders(store, "default")).toEqual(["+15550001111"]);
    expect(approvedSenders(store, "work")).toEqual([]);
    expect(listRequests(store).map((r) => r.accountId)).toEqual(["work"]);
  });
});

describe("pairingReply", () => {
  const rows: [string, string, string, string[], string[]][] = [
    [
      "default account: id, code, plain approve command, expiry",
      "+15550001111",
      "default",
      [
        "Your iMessage sender id: +15550001111",
        "Pairing code: ABCD2345",
        "openclaw-imsg pairing approve imessage ABCD2345\n",
        "1 hour",
      ],
      ["--account"],
    ],
    [
      "named account: the command carries --account",
      "user@example.com",
      "work",
      ["Your iMessage sender id: user@example.com", "openclaw-imsg pairing approve imessage ABCD2345 --account work"],
      [],
    ],
  ];
  for (const [name, sender, account, has, hasNot] of rows) {
    test(name, () => {
      const text = pairingReply(sender, "ABCD2345", account);
      for (const s of has) expect(text).toContain(s);
      for (const s of hasNot) expect(text).not.toContain(s);
    });
  }

  test("the approval notice is a non-empty sentence", () => {
    expect(APPROVED_NOTICE.length).toBeGreaterThan(10);
  });
});
