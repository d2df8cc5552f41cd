// A "remote Mac" over SSH with a real sshd on 127.0.0.1: cliPath is an ssh wrapper whose far side runs the imsg
// simulator. `chats` and `probe` must work through it, a wrapper that buffers or cannot connect must be
// diagnosed, and `probe` run over SSH must print the same JSON and exit code as a local run.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { scaled, type Sim } from "../helpers/sim.ts";
import { baseConfig, childEnv, cliCommand, e2eResources, MAIN, type Workspace } from "../helpers/gateway.ts";
import type { AccountReport, Check } from "../../src/probe.ts";
import { freePort, type Sshd, sshdMissing, startSshd } from "../helpers/sshd.ts";

type Report = { ok: boolean; accounts: AccountReport[] };

let sshd: Sshd;
const e2e = e2eResources();

beforeAll(async () => {
  sshd = await startSshd();
}, scaled(30_000));
afterAll(async () => {
  await sshd?.stop();
});

function sim(env: Record<string, string> = {}): Sim {
  const s = e2e.sim({ env });
  s.db.inject({ from: "+15550001111", text: "hello over ssh" });
  s.db.inject({
    group: { identifier: "chat777", name: "Remote/group", participants: ["+15550001111", "user@example.com"] },
    from: "user@example.com",
    text: "hi",
  });
  return s;
}

/** Writes an executable wrapper script next to the simulator. */
function wrapper(s: Sim, name: string, body: string): string {
  const p = join(s.dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

/** The documented wrapper: exec ssh -T host imsg "$@" (bytes pass straight through). */
const sshWrapper = (s: Sim) => wrapper(s, "imsg-ssh", `exec ssh -F ${sshd.sshConfigPath} -T testmac ${s.cliPath} "$@"`);

function setup(cliPath: string, imessage: Record<string, unknown> = {}): Workspace {
  const w = e2e.workspace();
  w.writeConfig(baseConfig(cliPath, imessage));
  return w;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command without blocking the event loop (sshd's stderr is drained by this process). */
async function run(cmd: string[]): Promise<Run> {
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { env: childEnv(), stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr, ms: performance.now() - t0 };
}

function cli(w: Workspace, ...args: string[]): Promise<Run> {
  const [cmd, pre] = cliCommand();
  return run([cmd, ...pre, ...args, "--config", w.configPath, "--state-dir", w.stateDir]);
}

function report(r: Run): Report {
  try {
    return JSON.parse(r.stdout) as Report;
  } catch {
    throw new Error(`no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

function check(rep: Report, name: string): Check {
  const c = rep.accounts[0]!.checks.find((x) => x.name === name);
  if (!c) throw new Error(`no check "${name}"`);
  return c;
}

// Without sshd this fails with how to install it (the other tests here then fail in beforeAll, never skip).
test("sshd is installed", () => {
  expect(sshdMissing()).toBeUndefined();
});

describe("remote Mac over SSH", () => {
  test("chats through the ssh wrapper equals chats run locally", async () => {
    const s = sim();
    const remote = setup(sshWrapper(s));
    const local = setup(s.cliPath);
    const r = await cli(remote, "chats", "--json");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.chats.map((c: { identifier: string }) => c.identifier)).toEqual(["chat777", "+15550001111"]);
    expect(doc.chats[0].name).toBe("Remote/group");
    expect(doc).toEqual(JSON.parse((await cli(local, "chats", "--json")).stdout));
    const table = await cli(remote, "chats");
    expect(table.code).toBe(0);
    expect(table.stdout).toContain("chat777");
  }, scaled(30_000));

  test("probe through the ssh wrapper is green, and well inside its deadline", async () => {
    const s = sim();
    const w = setup(sshWrapper(s));
    const r = await cli(w, "probe", "--json", "--timeout-ms", String(scaled(10_000)));
    const rep = report(r);
    expect(r.code).toBe(0);
    for (const c of rep.accounts[0]!.checks) expect(c.ok).toBe(true);
    expect(check(rep, "imsg binary found").detail).toBe(join(s.dir, "imsg-ssh"));
    expect(check(rep, "rpc supported").detail).toBe(`imsg ${s.version}`);
    expect(check(rep, "RPC handshake").detail).toBe("chats.list answered (1 chat)");
    // The speed target is a benchmark (bench/probe.ts, which also runs it over ssh); here only "well inside the
    // probe's deadline".
    expect(r.ms).toBeLessThan(scaled(8000));
  }, scaled(30_000));

  const buffering: [string, (s: Sim) => string][] = [
    // Collects all output and prints it only when ssh ends: no answer ever arrives while the client waits.
    ["collects output with $(…)", (s) => `out=$(ssh -F ${sshd.sshConfigPath} -T testmac ${s.cliPath} "$@")\nst=$?\nprintf '%s\\n' "$out"\nexit $st`],
    // sed block-buffers when writing to a pipe.
    ["pipes through sed", (s) => `ssh -F ${sshd.sshConfigPath} -T testmac ${s.cliPath} "$@" | sed -e 's/^//'`],
  ];
  for (const [name, body] of buffering) {
    test(`a wrapper that buffers (${name}) is diagnosed with the wrapper hint`, async () => {
      const s = sim();
      const w = setup(wrapper(s, "imsg-buffered", body(s)));
      // The probe's timeout bounds both `rpc --help` (must succeed: ssh login + simulator start, seconds on a
      // busy 2-core box) and the handshake (must time out: the wrapper never flushes), so it is generous.
      const timeoutMs = scaled(8000);
      const r = await cli(w, "probe", "--json", "--timeout-ms", String(timeoutMs));
      const rep = report(r);
      expect(r.code).toBe(1);
      expect(check(rep, "rpc supported").ok).toBe(true);
      const hs = check(rep, "RPC handshake");
      expect(hs.ok).toBe(false);
      expect(hs.detail).toContain("buffers its output");
      expect(hs.hint).toContain('exec ssh -T host imsg "$@"');
      expect(check(rep, "Messages database readable").ok).toBe(false);
      expect(r.ms).toBeLessThan(timeoutMs + scaled(4000));
    }, scaled(30_000));
  }

  test("a wrapper that cannot connect (nothing listens on the port) is diagnosed", async () => {
    const s = sim();
    const port = await freePort();
    const w = setup(wrapper(s, "imsg-badport", `exec ssh -F ${sshd.sshConfigPath} -p ${port} -T testmac ${s.cliPath} "$@"`));
    const r = await cli(w, "probe", "--json", "--timeout-ms", String(scaled(5000)));
    const rep = report(r);
    expect(r.code).toBe(1);
    const rpc = check(rep, "rpc supported");
    expect(rpc.ok).toBe(false);
    expect(rpc.detail).toContain("Connection refused");
    expect(rpc.hint).toContain("ssh");
    const hs = check(rep, "RPC handshake");
    expect(hs.ok).toBe(false);
    expect(hs.detail).toMatch(/exited \(code 255\): .*Connection refused/);
    const chats = await cli(w, "chats");
    expect(chats.code).toBe(1);
    expect(chats.stderr).toContain("Connection refused");
  }, scaled(30_000));

  test("a wrapper whose host key is not trusted is diagnosed", async () => {
    const s = sim();
    const w = setup(
      wrapper(s, "imsg-untrusted", `exec ssh -F ${sshd.sshConfigPath} -o UserKnownHostsFile=/dev/null -T testmac ${s.cliPath} "$@"`),
    );
    const r = await cli(w, "probe", "--json", "--timeout-ms", String(scaled(5000)));
    const rep = report(r);
    expect(r.code).toBe(1);
    expect(check(rep, "rpc supported").detail).toContain("Host key verification failed");
    expect(check(rep, "RPC handshake").detail).toContain("Host key verification failed");
  }, scaled(30_000));

  describe("probe run over SSH gives the same JSON and exit code as a local run", () => {
    const overSsh = (w: Workspace) =>
      run(["ssh", "-F", sshd.sshConfigPath, "testmac", process.execPath, MAIN, "probe", "--json", "--config", w.configPath, "--state-dir", w.stateDir]);

    const cases: [string, () => Workspace, number][] = [
      ["healthy", () => setup(sim().cliPath), 0],
      ["healthy, imsg itself behind the ssh wrapper", () => setup(sshWrapper(sim())), 0],
      ["Full Disk Access missing", () => setup(sim({ IMSG_SIM_FDA: "1" }).cliPath), 1],
      ["imsg not found", () => setup("/nonexistent/bin/imsg"), 1],
    ];
    for (const [name, make, code] of cases) {
      test(name, async () => {
        const w = make();
        const [local, remote] = [await cli(w, "probe", "--json"), await overSsh(w)];
        expect(local.code).toBe(code);
        expect(remote.code).toBe(code);
        expect(report(remote)).toEqual(report(local));
      }, scaled(30_000));
    }
  });
});
