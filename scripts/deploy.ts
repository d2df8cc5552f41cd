#!/usr/bin/env bun
// Deploy the right release binary to a host over ssh/scp and check it runs there.
// Usage: bun scripts/deploy.ts user@host [--path ~/bin] [--ssh-option Opt=value]… [--ssh-config file]
//                                        [--dist dir] [--build]
// Steps: detect OS/arch → pick dist/openclaw-imsg-<os>-<arch> → scp to a temp name in the target dir →
// verify the checksum there → (macOS) codesign verify, re-sign ad hoc if needed → chmod, smoke-test →
// `mv -f` over <path>/openclaw-imsg (atomic rename) → `--version` and `probe --json` → summary.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { $, type ProcessOutput } from "zx";
import { binaryName, build, gitState, ROOT, sha256File, type Target, versionString } from "./build.ts";

/** Name of the installed binary in the target directory. */
export const INSTALL_NAME = "openclaw-imsg";

/** One-line usage of this script. */
export const USAGE = "usage: bun scripts/deploy.ts user@host [--path ~/bin] [--ssh-option Opt=value]… [--ssh-config file] [--dist dir] [--build]";

/** Parsed command line of this script. */
export interface DeployArgs {
  destination: string;
  path: string;
  sshOptions: string[];
  sshConfig?: string;
  dist?: string;
  build: boolean;
}

/** Parses the command line; throws an Error with a usage message on anything unexpected. */
export function parseDeployArgs(argv: string[]): DeployArgs {
  const out: DeployArgs = { destination: "", path: "~/bin", sshOptions: [], build: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.startsWith("--") ? a.indexOf("=") : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const value = () => {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || v === "") throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    if (flag === "--path") out.path = value();
    else if (flag === "--ssh-option") out.sshOptions.push(value());
    else if (flag === "--ssh-config") out.sshConfig = value();
    else if (flag === "--dist") out.dist = value();
    else if (flag === "--build") out.build = true;
    else if (a.startsWith("-")) throw new Error(`unknown option ${flag}\n${USAGE}`);
    else if (out.destination) throw new Error(`unexpected argument "${a}"\n${USAGE}`);
    else out.destination = a;
  }
  if (!out.destination) throw new Error(`missing destination\n${USAGE}`);
  return out;
}

/** Quotes one word for a POSIX shell (sh, bash, zsh): single quotes, embedded quotes as '\''. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Shell expression for a user-supplied remote directory: `~` and `~/…` expand to "$HOME", the rest stays literal. */
export function remoteDirExpr(path: string): string {
  if (path === "~") return `"$HOME"`;
  if (path.startsWith("~/")) return `"$HOME"/${shellQuote(path.slice(2))}`;
  if (path.startsWith("~")) throw new Error(`--path ${path}: only "~" and "~/…" are expanded; give the full path`);
  if (path === "") throw new Error("--path needs a value");
  return shellQuote(path);
}

/** Which binary runs on a host, from its `uname -s` and `uname -m`. */
export function pickTarget(os: string, arch: string): Target {
  if (os === "Darwin" && (arch === "arm64" || arch === "aarch64")) return "darwin-arm64";
  if (os === "Darwin" && arch === "x86_64") return "darwin-x64";
  if (os === "Linux" && (arch === "x86_64" || arch === "amd64")) return "linux-x64";
  throw new Error(`no openclaw-imsg build for ${os} ${arch} (we ship linux-x64, darwin-arm64, darwin-x64)`);
}

/** scp's `host:path` for an ssh destination; a bare IPv6 address needs brackets there. */
export function scpTarget(destination: string, remotePath: string): string {
  const at = destination.lastIndexOf("@");
  const user = at >= 0 ? destination.slice(0, at + 1) : "";
  const host = destination.slice(at + 1);
  return `${user}${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${remotePath}`;
}

/** What the remote `probe --json` said, in a form the summary can print. */
export interface ProbeOutcome {
  status: "ok" | "failed" | "config" | "error";
  /** One line for the summary. */
  text: string;
  /** Failing checks (name: detail), when the output was parseable. */
  failures: string[];
}

/** Interprets `probe --json`'s exit code and stdout (docs/SPEC.md §3.6: 0 ok, 1 a check failed, 2 usage/config). */
export function describeProbe(exitCode: number | null, stdout: string, stderr = ""): ProbeOutcome {
  let failures: string[] = [];
  try {
    const doc = JSON.parse(stdout) as { accounts?: { accountId: string; checks?: { name: string; ok: boolean; detail: string }[] }[] };
    failures = (doc.accounts ?? []).flatMap((a) => (a.checks ?? []).filter((c) => !c.ok).map((c) => `${a.accountId}: ${c.name}: ${c.detail}`));
  } catch {
    // Not JSON (crash, killed): the exit code and stderr say what happened.
  }
  if (exitCode === 0) return { status: "ok", text: "ok (every check passed)", failures };
  if (exitCode === 1) return { status: "failed", text: `FAILED (exit 1): ${failures.length || "some"} check(s) failed`, failures };
  if (exitCode === 2) return { status: "config", text: "no usable config yet (exit 2): create or fix the config, then run probe again", failures };
  const why = exitCode === 137 ? " (killed: on macOS usually a bad code signature)" : exitCode === null ? " (no exit code)" : "";
  const err = stderr.trim().split("\n").slice(-1)[0] ?? "";
  return { status: "error", text: `did not run (exit ${exitCode})${why}${err ? `: ${err}` : ""}`, failures };
}

/** Everything the summary reports. */
export interface DeployReport {
  destination: string;
  os: string;
  arch: string;
  target: Target;
  localPath: string;
  bytes: number;
  sha256: string;
  installedPath: string;
  onPath: boolean;
  codesign: string;
  version: string;
  /** Version the work tree would build now, to flag a stale dist/ binary. */
  treeVersion: string;
  probe: ProbeOutcome;
  ms: number;
}

/** The readable summary printed at the end. */
export function formatSummary(r: DeployReport): string {
  const lines = [
    `deployed openclaw-imsg to ${r.destination} (${r.os} ${r.arch}) in ${(r.ms / 1000).toFixed(1)} s`,
    `  binary     ${r.localPath} (${(r.bytes / 2 ** 20).toFixed(1)} MiB, sha256 ${r.sha256.slice(0, 16)}…, checksum verified on the host)`,
    `  codesign   ${r.codesign}`,
    `  installed  ${r.installedPath} (atomic rename)`,
    `  version    ${r.version}`,
    `  probe      ${r.probe.text}`,
    ...r.probe.failures.map((f) => `               ${f}`),
  ];
  if (r.version !== r.treeVersion) lines.push(`  note       the work tree would build ${r.treeVersion}; run with --build to deploy that`);
  if (!r.onPath) {
    lines.push(`  note       ${r.installedPath.slice(0, -INSTALL_NAME.length - 1)} is not on the PATH of a non-interactive ssh session; use the full path`);
  }
  return lines.join("\n");
}

/** Deploys and returns the report; throws an Error (with the failing step) when the binary could not be installed. */
export async function deploy(args: DeployArgs, log: (line: string) => void = () => {}): Promise<DeployReport> {
  const started = performance.now();
  const dist = resolve(args.dist ?? join(ROOT, "dist"));
  // BatchMode first: ssh keeps the first value it sees, so no option can turn prompts back on.
  const opts = [
    "-o",
    "BatchMode=yes",
    ...(args.sshConfig ? ["-F", args.sshConfig] : []),
    ...args.sshOptions.flatMap((o) => ["-o", o]),
    "-o",
    "ConnectTimeout=10",
  ];
  const sh = $({ quiet: true, nothrow: true });
  const ssh = (script: string): Promise<ProcessOutput> => sh`ssh -n ${opts} ${args.destination} ${`exec /bin/sh -c ${shellQuote(script)}`}`;
  const must = async (step: string, script: string): Promise<string> => {
    const r = await ssh(script);
    if (r.exitCode !== 0) throw new Error(`${step} failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  };

  log(`connecting to ${args.destination} …`);
  const [os = "", arch = ""] = (await must("ssh uname", "uname -s; uname -m")).trim().split(/\s+/);
  const target = pickTarget(os, arch);
  const localPath = join(dist, binaryName(target));
  if (args.build) await build({ targets: [target], outdir: dist, log: (l) => log(`built ${l}`) });
  if (!existsSync(localPath)) throw new Error(`${localPath} is missing: run \`npm run build\` (or pass --build)`);
  const sha256 = await sha256File(localPath);
  const sumsPath = join(dist, "SHA256SUMS");
  if (existsSync(sumsPath)) {
    const listed = readFileSync(sumsPath, "utf8").split("\n").find((l) => l.endsWith(`  ${basename(localPath)}`));
    if (listed && !listed.startsWith(sha256)) throw new Error(`${localPath} does not match ${sumsPath}: rebuild with \`npm run build\``);
  }

  const dirOut = await must(
    "creating the target directory",
    `d=${remoteDirExpr(args.path)}; mkdir -p "$d" && cd "$d" && pwd && case ":$PATH:" in *":$(pwd):"*) echo on-path;; *) echo off-path;; esac`,
  );
  const [dir = "", pathState] = dirOut.replace(/\n$/, "").split("\n");
  if (!dir.startsWith("/")) throw new Error(`could not resolve ${args.path} on the host (got "${dir}")`);
  const installedPath = `${dir}/${INSTALL_NAME}`;
  const tmp = `${dir}/.${INSTALL_NAME}.tmp-${randomBytes(4).toString("hex")}`;
  const q = shellQuote;

  log(`copying ${basename(localPath)} → ${args.destination}:${tmp}`);
  const cp = await sh`scp -q ${opts} ${localPath} ${scpTarget(args.destination, tmp)}`;
  let installed = false;
  try {
    if (cp.exitCode !== 0) throw new Error(`scp failed (exit ${cp.exitCode}): ${cp.stderr.trim()}`);
    // A short or corrupted copy must never be installed.
    const remoteSum = await must("checksum on the host", `if command -v sha256sum >/dev/null 2>&1; then sha256sum ${q(tmp)}; else shasum -a 256 ${q(tmp)}; fi`);
    if (remoteSum.trim().split(/\s+/)[0] !== sha256) {
      throw new Error(`checksum mismatch after copy (host has ${remoteSum.trim().split(/\s+/)[0]}, expected ${sha256})`);
    }

    let codesign: string;
    if (os === "Darwin") {
      const verify = await ssh(`codesign --verify --strict ${q(tmp)}`);
      if (verify.exitCode === 0) codesign = "ok (signature verified)";
      else {
        log(`codesign --verify failed (${verify.stderr.trim()}); re-signing ad hoc`);
        await must("ad-hoc re-signing", `codesign --remove-signature ${q(tmp)} && codesign --force --sign - ${q(tmp)} && codesign --verify --strict ${q(tmp)}`);
        codesign = "re-signed ad hoc (the shipped signature did not verify)";
      }
    } else codesign = `skipped (${os} host, not macOS)`;

    // Smoke-test under the temp name so a binary that cannot start never replaces a working one.
    await must("smoke test (--version before install)", `chmod 0755 ${q(tmp)} && ${q(tmp)} --version`);
    await must("install (mv -f)", `mv -f ${q(tmp)} ${q(installedPath)}`);
    installed = true;

    const version = (await must("installed --version", `${q(installedPath)} --version`)).trim();
    const probe = await ssh(`${q(installedPath)} probe --json </dev/null`);
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    return {
      destination: args.destination,
      os,
      arch,
      target,
      localPath,
      bytes: statSync(localPath).size,
      sha256,
      installedPath,
      onPath: pathState === "on-path",
      codesign,
      version,
      treeVersion: versionString(pkg.version, gitState(ROOT)),
      probe: describeProbe(probe.exitCode, probe.stdout, probe.stderr),
      ms: Math.round(performance.now() - started),
    };
  } finally {
    // After a failure, remove the partial or rejected copy (a successful mv already consumed it).
    if (!installed) await ssh(`rm -f ${q(tmp)}`);
  }
}

if (import.meta.main) {
  let args: DeployArgs;
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    console.log(USAGE);
    process.exit(0);
  }
  try {
    args = parseDeployArgs(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  try {
    const report = await deploy(args, (l) => console.error(l));
    console.log(formatSummary(report));
  } catch (err) {
    console.error(`deploy failed: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
