// Staging outbound files on a remote Mac (stage.ts) against a real sshd on 127.0.0.1 and a real journal: the
// staged path is journaled, reused when complete, re-staged when not, and removed once the part settles.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { isStageDir, STAGE_PREFIX, stagedPathFor, Stager, stagerFor } from "../src/stage.ts";
import { scaled } from "./helpers/sim.ts";
import { journalResources } from "./helpers/journal.ts";
import { type Sshd, startSshd } from "./helpers/sshd.ts";

let sshd: Sshd;
const j = journalResources();
beforeAll(async () => {
  sshd = await startSshd();
}, scaled(60_000));
afterAll(async () => {
  await sshd?.stop();
});

describe("pure rules", () => {
  const rows: [string, string, boolean][] = [
    ["a mktemp dir", `/tmp/${STAGE_PREFIX}Ab12Cd34`, true],
    ["the bare prefix", `/tmp/${STAGE_PREFIX}`, false],
    ["another dir", "/tmp/other", false],
    ["relative", `${STAGE_PREFIX}x`, false],
    ["quote in path", `/tmp/'${STAGE_PREFIX}x`, false],
    ["root", "/", false],
  ];
  for (const [name, dir, want] of rows) test(`isStageDir: ${name}`, () => expect(isStageDir(dir)).toBe(want));
  test("stagedPathFor keeps the name, refuses unsafe names", () => {
    expect(stagedPathFor("/tmp/d", "/home/u/My Photo.jpg")).toBe("/tmp/d/My Photo.jpg");
    for (const bad of ["/x/it's.png", "/x/a$b", "/x/a*b", "/x/a;b"]) expect(typeof stagedPathFor("/tmp/d", bad)).toBe("object");
  });
});

describe("against a real sshd", () => {
  function setup() {
    const { store } = j.store();
    const dir = mkdtempSync(join(tmpdir(), "stage-src-"));
    j.track(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "photo.jpg");
    writeFileSync(file, Buffer.alloc(3000, 5));
    const stager = new Stager(store, "default", { host: sshd.alias, sshOptions: sshd.sshArgs, timeoutMs: scaled(15_000) });
    const row = store.recordOutbound({ accountId: "default", seq: 0, target: "+15550001111", text: "", file });
    const current = () => store.stagedOutbound("default").find((r) => r.id === row.id);
    return { store, file, stager, row, current };
  }

  test("stage: an owner-only dir, a full copy under the same name, journaled; release removes it", async () => {
    const { store, file, stager, row, current } = setup();
    const r = await stager.stage(row);
    if (!("path" in r)) throw new Error(r.error);
    expect(r.path).not.toBe(file);
    expect(readFileSync(r.path)).toEqual(readFileSync(file));
    expect(statSync(dirname(r.path)).mode & 0o777).toBe(0o700);
    expect(current()?.stagedPath).toBe(r.path);
    // Still pending: release keeps it (the send may be retried from it).
    await stager.release(row.id);
    expect(existsSync(r.path)).toBe(true);
    store.markOutbound(row.id, "sent");
    await stager.release(row.id);
    expect(existsSync(dirname(r.path))).toBe(false);
    expect(current()).toBeUndefined();
  }, scaled(60_000));

  test("after a crash: a complete copy is reused, a missing one staged again in a fresh dir", async () => {
    const { file, stager, row, current } = setup();
    const first = await stager.stage(row);
    if (!("path" in first)) throw new Error(first.error);
    const again = await stager.stage(current()!);
    expect(again).toEqual({ path: first.path });
    unlinkSync(first.path);
    const third = await stager.stage(current()!);
    if (!("path" in third)) throw new Error(third.error);
    expect(third.path).not.toBe(first.path);
    expect(existsSync(dirname(first.path))).toBe(false);
    expect(readFileSync(third.path)).toEqual(readFileSync(file));
    expect(current()?.stagedPath).toBe(third.path);
  }, scaled(60_000));

  test("sweep removes copies of parts that settled while we were down, keeps pending ones", async () => {
    const { store, file, stager, row, current } = setup();
    const other = store.recordOutbound({ accountId: "default", seq: 1, target: "+15550001111", text: "", file });
    const a = await stager.stage(row);
    const b = await stager.stage(other);
    if (!("path" in a) || !("path" in b)) throw new Error("stage failed");
    store.markOutbound(row.id, "sent");
    await stager.sweep();
    expect(existsSync(dirname(a.path))).toBe(false);
    expect(current()).toBeUndefined();
    expect(existsSync(b.path)).toBe(true);
    expect(store.stagedOutbound("default").map((r) => r.id)).toEqual([other.id]);
  }, scaled(60_000));

  test("an unreachable host: retryable, nothing journaled", async () => {
    const { store, row } = setup();
    const s = new Stager(store, "default", { host: "127.0.0.1", sshOptions: ["-o", "Port=1"], timeoutMs: scaled(5_000) });
    const r = await s.stage(row);
    expect(r).toMatchObject({ retryable: true, error: expect.stringMatching(/staging dir/) });
    expect(store.stagedOutbound("default")).toEqual([]);
  }, scaled(20_000));
});

describe("stagerFor", () => {
  const base = { accountId: "default" };
  const files: Record<string, string> = {
    "/w/ssh": '#!/bin/sh\nexec ssh -p 2222 -i /k bob@mac imsg "$@"\n',
    "/w/odd": '#!/bin/sh\nexec ssh -o ProxyCommand=nc mac imsg "$@"\n',
    "/w/local": '#!/bin/sh\nexec /opt/imsg "$@"\n',
    "/w/bin": "\u007fELF\u0000ssh mac imsg",
  };
  const read = (p: string) => {
    const t = files[p];
    if (t === undefined) throw new Error("ENOENT");
    return t;
  };
  const rows: [string, { cliPath: string; remoteHost?: string }, "local" | "stage" | RegExp][] = [
    ["bare imsg is local", { cliPath: "imsg" }, "local"],
    ["a local wrapper is local", { cliPath: "/w/local" }, "local"],
    ["a binary is local", { cliPath: "/w/bin" }, "local"],
    ["an ssh wrapper stages", { cliPath: "/w/ssh" }, "stage"],
    ["configured remoteHost stages", { cliPath: "imsg", remoteHost: "mac" }, "stage"],
    ["an ssh wrapper we cannot read refuses with the reason", { cliPath: "/w/odd" }, /ProxyCommand.*remoteHost/],
    ["an unsafe remoteHost refuses", { cliPath: "imsg", remoteHost: "-oX" }, /unsafe/],
  ];
  for (const [name, account, want] of rows) {
    test(name, () => {
      const s = stagerFor({ ...base, ...account }, j.store().store, read);
      if (want === "local") expect(s).toBeUndefined();
      else if (want === "stage") expect(s?.refusal).toBeUndefined();
      else expect(s?.refusal).toMatch(want);
    });
  }
});
