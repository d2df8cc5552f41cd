// Release build: pure helpers table-driven, then one real linux-x64 compile checked from the outside.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { binaryName, build, type BuildResult, gitState, parseBuildArgs, ROOT, sumsLine, TARGETS, versionString } from "../scripts/build.ts";

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };

describe("versionString", () => {
  test.each(
    [
      ["clean tree", "0.1.0", { commit: "abc1234", dirty: false }, "0.1.0+abc1234"],
      ["uncommitted changes append -dirty", "0.1.0", { commit: "abc1234", dirty: true }, "0.1.0+abc1234-dirty"],
      ["outside git falls back to +unknown", "2.0.0", undefined, "2.0.0+unknown"],
    ] as const,
  )("%s", (_name, version, git, expected) => {
    expect(versionString(version, git)).toBe(expected);
  });
});

describe("parseBuildArgs", () => {
  test.each(
    [
      ["no target builds all three", [], [...TARGETS], undefined],
      ["one target", ["--target", "linux-x64"], ["linux-x64"], undefined],
      ["repeated targets keep their order", ["--target", "darwin-x64", "--target=darwin-arm64"], ["darwin-x64", "darwin-arm64"], undefined],
      ["a target named twice is built once", ["--target", "linux-x64", "--target", "linux-x64"], ["linux-x64"], undefined],
      ["outdir", ["--outdir", "/tmp/x"], [...TARGETS], "/tmp/x"],
    ] as const,
  )("%s", (_name, argv, targets, outdir) => {
    expect(parseBuildArgs([...argv])).toEqual({ targets: [...targets], outdir });
  });

  test.each(
    [
      ["unknown target", ["--target", "windows-x64"], /unknown target "windows-x64"/],
      ["target without a value", ["--target"], /--target needs a value/],
      ["target followed by a flag", ["--target", "--outdir", "x"], /--target needs a value/],
      ["unknown argument", ["--minify"], /unknown argument "--minify"/],
    ] as const,
  )("rejects %s", (_name, argv, message) => {
    expect(() => parseBuildArgs([...argv])).toThrow(message);
  });
});

test("sumsLine is sha256sum's text-mode format", () => {
  expect(sumsLine("ab".repeat(32), "openclaw-imsg-linux-x64")).toBe(`${"ab".repeat(32)}  openclaw-imsg-linux-x64`);
});

describe("gitState", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "imsg-gitstate-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const git = (...args: string[]) => {
    const r = spawnSync("git", ["-C", dir, "-c", "user.name=Test", "-c", "user.email=user@example.com", "-c", "commit.gpgsign=false", ...args], {
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };

  test("is undefined outside a work tree", () => {
    expect(gitState(dir)).toBeUndefined();
  });

  test("reports the short commit, clean, then dirty for a modified and for an untracked file", () => {
    git("init", "-q");
    writeFileSync(join(dir, "a.txt"), "1\n");
    git("add", "a.txt");
    git("commit", "-q", "-m", "init");
    const commit = git("rev-parse", "--short", "HEAD");
    expect(gitState(dir)).toEqual({ commit, dirty: false });
    writeFileSync(join(dir, "a.txt"), "2\n");
    expect(gitState(dir)).toEqual({ commit, dirty: true });
    git("checkout", "--", "a.txt");
    writeFileSync(join(dir, "new.ts"), "export {};\n");
    expect(gitState(dir)).toEqual({ commit, dirty: true });
  });
});

describe("compiled linux-x64 binary", () => {
  let out: string;
  let res: BuildResult;
  let bin: string;
  // The compiled binary inlines NODE_ENV, so inheriting bun test's NODE_ENV=test is harmless; NO_COLOR keeps help plain.
  const run = (args: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}) =>
    spawnSync(bin, args, { cwd: opts.cwd, env: { ...process.env, NO_COLOR: "1", ...opts.env }, encoding: "utf8", timeout: 20_000 });

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), "imsg-build-"));
    res = await build({ targets: ["linux-x64"], outdir: out });
    bin = join(out, binaryName("linux-x64"));
  }, 60_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  test("leaves only the binary and SHA256SUMS in the output directory", () => {
    expect(readdirSync(out).sort()).toEqual(["SHA256SUMS", "openclaw-imsg-linux-x64"]);
    expect(res.binaries.map((b) => b.target)).toEqual(["linux-x64"]);
  });

  test("--version prints <package version>+<git commit> alone", () => {
    const commit = spawnSync("git", ["-C", ROOT, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).stdout.trim();
    const r = run(["--version"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${res.version}\n`);
    expect(res.version).toMatch(new RegExp(`^${pkg.version.replace(/\./g, "\\.")}\\+${commit}(-dirty)?$`));
  });

  test("--help lists every command (lazy subcommands resolve with splitting)", () => {
    const r = run(["--help"]);
    expect(r.status).toBe(0);
    for (const cmd of ["gateway", "send", "pairing", "probe", "chats"]) expect(r.stdout).toContain(cmd);
  });

  test("a subcommand's own help loads its split chunk", () => {
    const r = run(["probe", "--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("--timeout-ms");
  });

  test("an unknown flag exits 2 with a message", () => {
    const r = run(["probe", "--no-such-flag"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("Unknown option --no-such-flag");
  });

  describe("ignores .env and bunfig.toml in the working directory", () => {
    let cwd: string;
    let home: string;
    const marker = () => join(cwd, "preloaded.txt");
    beforeAll(() => {
      cwd = mkdtempSync(join(tmpdir(), "imsg-cwd-"));
      home = join(cwd, "home");
      mkdirSync(home);
      writeFileSync(join(cwd, ".env"), "NODE_ENV=x\nOPENCLAW_CONFIG_PATH=/bogus/from-dotenv.json\n");
      // Were bunfig.toml honoured, its preload would run before main and leave a marker file.
      writeFileSync(join(cwd, "bunfig.toml"), 'preload = ["./preload.ts"]\n');
      writeFileSync(join(cwd, "preload.ts"), `require("node:fs").writeFileSync(${JSON.stringify(marker())}, "x");\n`);
    });
    afterAll(() => rmSync(cwd, { recursive: true, force: true }));

    const configDetail = (env: Record<string, string | undefined>) => {
      const r = run(["probe", "--json"], { cwd, env: { HOME: home, OPENCLAW_CONFIG_PATH: undefined, OPENCLAW_STATE_DIR: join(home, "state"), ...env } });
      expect(r.status).toBe(2);
      const doc = JSON.parse(r.stdout) as { accounts: { checks: { name: string; detail: string }[] }[] };
      return doc.accounts[0]!.checks.find((c) => c.name === "config valid")!.detail;
    };

    test("the config path comes from the real environment (control: the observable works)", () => {
      expect(configDetail({ OPENCLAW_CONFIG_PATH: "/bogus/from-env.json" })).toContain("/bogus/from-env.json");
    });

    test(".env is not loaded: the default config path stays in effect", () => {
      const detail = configDetail({});
      expect(detail).toContain(join(home, ".openclaw/openclaw.json"));
      expect(detail).not.toContain("from-dotenv");
    });

    test("bunfig.toml is not loaded: its preload never runs", () => {
      configDetail({});
      expect(existsSync(marker())).toBe(false);
    });
  });

  test("SHA256SUMS lists the binary with its real hash, readable by sha256sum -c", () => {
    const lines = readFileSync(res.sumsPath, "utf8").trimEnd().split("\n");
    expect(lines).toEqual([sumsLine(createHash("sha256").update(readFileSync(bin)).digest("hex"), "openclaw-imsg-linux-x64")]);
    const check = spawnSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: out, encoding: "utf8" });
    if (check.error) return; // no coreutils sha256sum: the hash comparison above already decided
    expect(check.status).toBe(0);
    expect(check.stdout).toContain("openclaw-imsg-linux-x64: OK");
  });
});
