// Deploy script: pure helpers table-driven, then real deploys over ssh/scp to a loopback sshd.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { binaryName, build, type BuildResult, ROOT } from "../scripts/build.ts";
import { describeProbe, parseDeployArgs, pickTarget, remoteDirExpr, scpTarget, shellQuote } from "../scripts/deploy.ts";
import { type Sshd, sshdMissing, startSshd } from "./helpers/sshd.ts";

describe("pickTarget", () => {
  test.each(
    [
      ["Apple Silicon Mac", "Darwin", "arm64", "darwin-arm64"],
      ["Intel Mac", "Darwin", "x86_64", "darwin-x64"],
      ["Linux x86_64", "Linux", "x86_64", "linux-x64"],
    ] as const,
  )("%s", (_name, os, arch, target) => {
    expect(pickTarget(os, arch)).toBe(target);
  });

  test.each([
    ["Linux arm64", "Linux", "aarch64"],
    ["FreeBSD", "FreeBSD", "amd64"],
  ])("refuses %s: no binary is shipped for it", (_name, os, arch) => {
    expect(() => pickTarget(os, arch)).toThrow(/no openclaw-imsg build/);
  });
});

describe("shellQuote survives a real sh", () => {
  test.each([["plain"], ["with space"], ["it's"], ["$HOME `id` $(id) \\n"], ["semi; rm -rf /"], [""]])("%p", (word) => {
    const r = spawnSync("sh", ["-c", `printf %s ${shellQuote(word)}`], { encoding: "utf8" });
    expect(r.stdout).toBe(word);
  });
});

describe("remoteDirExpr", () => {
  test.each([
    ["~ is the home directory", "~", `"$HOME"`],
    ["~/ paths expand the home part only", "~/bin", `"$HOME"/'bin'`],
    ["absolute paths stay literal", "/opt/my bin", `'/opt/my bin'`],
  ])("%s", (_name, path, expr) => {
    expect(remoteDirExpr(path)).toBe(expr);
  });

  test("expands ~/… through a real sh and keeps the rest literal", () => {
    const r = spawnSync("sh", ["-c", `printf %s ${remoteDirExpr("~/a b/$x")}`], { encoding: "utf8", env: { ...process.env, HOME: "/home/u" } });
    expect(r.stdout).toBe("/home/u/a b/$x");
  });

  test("refuses ~user paths instead of guessing", () => {
    expect(() => remoteDirExpr("~bob/bin")).toThrow(/give the full path/);
  });
});

describe("scpTarget", () => {
  test.each([
    ["user@host", "user@host", "/a/b", "user@host:/a/b"],
    ["ssh config alias", "mini", "/a", "mini:/a"],
    ["bare IPv6 gets brackets", "me@::1", "/a", "me@[::1]:/a"],
    ["bracketed IPv6 stays", "me@[::1]", "/a", "me@[::1]:/a"],
  ])("%s", (_name, dest, path, expected) => {
    expect(scpTarget(dest, path)).toBe(expected);
  });
});

describe("describeProbe", () => {
  const doc = (ok: boolean) =>
    JSON.stringify({
      ok,
      accounts: [{ accountId: "default", ok, checks: [{ name: "imsg found", ok, detail: ok ? "/usr/local/bin/imsg" : "imsg not on PATH" }] }],
    });
  test.each(
    [
      ["exit 0 is ok", 0, doc(true), "ok", /every check passed/, 0],
      ["exit 1 is a failed check, named", 1, doc(false), "failed", /FAILED \(exit 1\): 1 check/, 1],
      ["exit 2 is a missing or bad config", 2, doc(false), "config", /no usable config yet \(exit 2\)/, 1],
      ["exit 137 hints at code signing", 137, "", "error", /killed: on macOS usually a bad code signature/, 0],
      ["127 with stderr shows the last stderr line", 127, "", "error", /exit 127\): sh: openclaw-imsg: not found/, 0],
    ] as const,
  )("%s", (_name, code, stdout, status, text, failures) => {
    const p = describeProbe(code, stdout, code === 127 ? "sh: openclaw-imsg: not found\n" : "");
    expect(p.status).toBe(status);
    expect(p.text).toMatch(text);
    expect(p.failures).toHaveLength(failures);
  });
});

describe("parseDeployArgs", () => {
  test("defaults: ~/bin, no extra ssh options", () => {
    expect(parseDeployArgs(["me@mini.local"])).toEqual({ destination: "me@mini.local", path: "~/bin", sshOptions: [], build: false });
  });
  test("every option, repeated --ssh-option kept in order", () => {
    const argv = ["mini", "--path=/opt/bin", "--ssh-option", "Port=2222", "--ssh-option=User=me", "--ssh-config", "/c", "--dist", "/d", "--build"];
    expect(parseDeployArgs(argv)).toEqual({
      destination: "mini",
      path: "/opt/bin",
      sshOptions: ["Port=2222", "User=me"],
      sshConfig: "/c",
      dist: "/d",
      build: true,
    });
  });
  test.each(
    [
      ["no destination", [], /missing destination/],
      ["two destinations", ["a", "b"], /unexpected argument "b"/],
      ["unknown option", ["a", "--force"], /unknown option --force/],
      ["option without a value", ["a", "--path"], /--path needs a value/],
    ] as const,
  )("rejects %s", (_name, argv, message) => {
    expect(() => parseDeployArgs([...argv])).toThrow(message);
  });
});

// Without sshd this fails with how to install it (the other tests here then fail in beforeAll, never skip).
test("sshd is installed", () => {
  expect(sshdMissing()).toBeUndefined();
});

describe("deploy to a real sshd on 127.0.0.1", () => {
  let sshd: Sshd;
  let work: string;
  let dist: string;
  let built: BuildResult;
  let remoteDir: string;
  let installed: string;

  /** Runs the deploy script as a user would, to completion. */
  function runDeploy(distDir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [
        join(ROOT, "scripts/deploy.ts"),
        "testmac",
        "--path",
        remoteDir,
        "--ssh-config",
        sshd.sshConfigPath,
        "--dist",
        distDir,
      ], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.once("error", reject);
      child.once("close", (code) => resolve({ code, stdout, stderr }));
    });
  }

  const versionOf = (path: string) => spawnSync(path, ["--version"], { encoding: "utf8" });

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "imsg-deploy-"));
    dist = join(work, "dist");
    // A space and a quote in the target dir: every remote path must be quoted.
    remoteDir = join(work, "remote bin's");
    installed = join(remoteDir, "openclaw-imsg");
    [built, sshd] = await Promise.all([build({ targets: ["linux-x64"], outdir: dist }), startSshd()]);
  }, 60_000);
  afterAll(async () => {
    await sshd?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test("first deploy installs a binary that answers --version, and says codesign was skipped", async () => {
    const r = await runDeploy(dist);
    expect(r.stderr).not.toContain("deploy failed");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("(Linux x86_64)");
    expect(r.stdout).toMatch(/codesign\s+skipped \(Linux host, not macOS\)/);
    expect(r.stdout).toContain(`installed  ${installed} (atomic rename)`);
    expect(r.stdout).toContain(`version    ${built.version}`);
    // The loopback host has no config for this user: probe fails with exit 2 and the deploy still succeeds.
    const home = spawnSync("ssh", [...sshd.sshArgs, "testmac", 'test -e "$HOME/.openclaw/openclaw.json" && echo yes || echo no'], { encoding: "utf8" }).stdout
      .trim();
    if (home === "no") expect(r.stdout).toMatch(/probe\s+no usable config yet \(exit 2\)/);
    expect(versionOf(installed).stdout).toBe(`${built.version}\n`);
    expect(readdirSync(remoteDir)).toEqual(["openclaw-imsg"]);
  }, 60_000);

  test("a second deploy replaces the binary by rename while it keeps running", async () => {
    const before = statSync(installed).ino;
    // Run the installed binary in a loop during the deploy: an in-place copy would make a run fail
    // (ETXTBSY or a truncated file); a rename never does.
    let stop = false;
    const results: string[] = [];
    const poll = (async () => {
      while (!stop) {
        results.push(
          await new Promise<string>((resolve) => {
            const c = spawn(installed, ["--version"], { stdio: ["ignore", "pipe", "ignore"] });
            let out = "";
            c.stdout.on("data", (d) => (out += d));
            c.once("error", (e) => resolve(`error ${e.message}`));
            c.once("close", (code) => resolve(code === 0 ? out.trim() : `exit ${code}`));
          }),
        );
      }
    })();
    const r = await runDeploy(dist);
    stop = true;
    await poll;
    expect(r.code).toBe(0);
    expect(results.length).toBeGreaterThan(5);
    expect(results.filter((v) => v !== built.version)).toEqual([]);
    expect(statSync(installed).ino).not.toBe(before);
    expect(readdirSync(remoteDir)).toEqual(["openclaw-imsg"]);
  }, 60_000);

  test("a binary that fails its smoke test is never installed and its temp copy is removed", async () => {
    const bad = join(work, "bad-dist");
    mkdirSync(bad);
    writeFileSync(join(bad, binaryName("linux-x64")), "#!/bin/sh\necho broken >&2\nexit 3\n");
    chmodSync(join(bad, binaryName("linux-x64")), 0o755);
    const before = statSync(installed).ino;
    const r = await runDeploy(bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/deploy failed: smoke test \(--version before install\) failed \(exit 3\): broken/);
    expect(statSync(installed).ino).toBe(before);
    expect(versionOf(installed).stdout).toBe(`${built.version}\n`);
    expect(readdirSync(remoteDir)).toEqual(["openclaw-imsg"]);
  }, 60_000);
});
