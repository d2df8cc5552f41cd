// A real OpenSSH server on 127.0.0.1 for ssh/scp tests: temp host key, temp client key, and an ssh config
// whose `testmac` alias (also `127.0.0.1`) reaches it with strict host-key checking.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { scaled } from "./sim.ts";

// TEST_SSHD: where sshd lives when not in the Debian/macOS place.
const SSHD = process.env.TEST_SSHD ?? "/usr/sbin/sshd";

/** What to tell a developer whose machine lacks the OpenSSH server or client tools. */
export const SSHD_INSTALL_HINT = "install openssh-server (apt-get install openssh-server; macOS ships it)";

/** A running sshd and everything a client needs to reach it. */
export interface Sshd {
  port: number;
  host: "127.0.0.1";
  /** Host alias defined in `sshConfigPath`; usable as `remoteHost`. */
  alias: "testmac";
  user: string;
  keyPath: string;
  knownHostsPath: string;
  sshConfigPath: string;
  /** Options ssh/scp need to use the config: `-F <config>`. */
  sshArgs: string[];
  /** Temp directory holding keys and config (removed by stop). */
  dir: string;
  stop(): Promise<void>;
}

/**
 * Undefined when sshd, ssh, scp and ssh-keygen are installed, else a message naming what is missing and how to
 * get it. The real-sshd tests fail with this message rather than skip: a missing server must not look green.
 */
export function sshdMissing(): string | undefined {
  const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
  const missing = [...(existsSync(SSHD) ? [] : [SSHD]), ...["ssh", "scp", "ssh-keygen"].filter((c) => !has(c))];
  return missing.length ? `sshd not found (missing: ${missing.join(", ")}): ${SSHD_INSTALL_HINT}` : undefined;
}

/** True when the real-sshd tests can run (benchmarks skip without it; tests fail with sshdMissing()'s message). */
export function sshdAvailable(): boolean {
  return sshdMissing() === undefined;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for servers and "nothing listens here" cases). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

function keygen(path: string): void {
  const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "openclaw-imsg-test", "-f", path]);
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
}

/** Resolves once sshd prints that it listens, rejects if it exits first or the deadline passes. */
function waitListening(child: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let err = "";
    const timer = setTimeout(() => done(new Error(`sshd not listening after ${timeoutMs} ms: ${err}`)), timeoutMs);
    const onData = (d: Buffer) => {
      err += d.toString();
      if (/Server listening on/.test(err)) done();
    };
    const onExit = (code: number | null) => done(new Error(`sshd exited (${code}): ${err}`));
    function done(e?: Error) {
      clearTimeout(timer);
      child.stderr!.off("data", onData);
      child.off("exit", onExit);
      if (e) reject(e);
      else resolve();
    }
    child.stderr!.on("data", onData);
    child.once("exit", onExit);
  });
}

/** Starts a real `sshd -D -e` on a free 127.0.0.1 port; ready (a login succeeded) when this resolves. */
export async function startSshd(): Promise<Sshd> {
  const missing = sshdMissing();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), "imsg-sshd-"));
  try {
    // sshd refuses to start without its privilege-separation directory (normally made by the service unit).
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const hostKey = join(dir, "host_ed25519");
    const keyPath = join(dir, "client_ed25519");
    keygen(hostKey);
    keygen(keyPath);
    writeFileSync(join(dir, "authorized_keys"), readFileSync(`${keyPath}.pub`));
    // Not os.userInfo(): Bun reports "unknown" when $USER is unset.
    const user = spawnSync("id", ["-un"], { encoding: "utf8" }).stdout.trim();
    for (let tries = 0;; tries++) {
      const port = await freePort();
      const sshdConfig = join(dir, "sshd_config");
      writeFileSync(
        sshdConfig,
        [
          `Port ${port}`,
          "ListenAddress 127.0.0.1",
          `HostKey ${hostKey}`,
          "PidFile none",
          "UsePAM no",
          "StrictModes no",
          "PermitRootLogin prohibit-password",
          "PubkeyAuthentication yes",
          "PasswordAuthentication no",
          "KbdInteractiveAuthentication no",
          `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
          "Subsystem sftp internal-sftp",
          "",
        ].join("\n"),
      );
      const knownHostsPath = join(dir, "known_hosts");
      const hostPub = readFileSync(`${hostKey}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
      writeFileSync(knownHostsPath, `[127.0.0.1]:${port} ${hostPub}\n`);
      const sshConfigPath = join(dir, "ssh_config");
      writeFileSync(
        sshConfigPath,
        [
          "Host testmac 127.0.0.1",
          "  HostName 127.0.0.1",
          `  Port ${port}`,
          `  User ${user}`,
          `  IdentityFile ${keyPath}`,
          "  IdentitiesOnly yes",
          `  UserKnownHostsFile ${knownHostsPath}`,
          "  GlobalKnownHostsFile /dev/null",
          "  StrictHostKeyChecking yes",
          "  BatchMode yes",
          "",
        ].join("\n"),
      );
      const child = spawn(SSHD, ["-D", "-e", "-f", sshdConfig], { stdio: ["ignore", "ignore", "pipe"] });
      try {
        await waitListening(child, scaled(10_000));
      } catch (err) {
        child.kill("SIGKILL");
        // Another process may have taken the port between freePort() and bind: pick another.
        if (tries < 3 && /Address already in use/.test(String(err))) continue;
        throw err;
      }
      // Drain stderr so sshd never blocks on a full pipe.
      child.stderr!.resume();
      const sshArgs = ["-F", sshConfigPath];
      const login = spawnSync("ssh", [...sshArgs, "testmac", "true"], { timeout: scaled(10_000) });
      if (login.status !== 0) {
        child.kill("SIGKILL");
        throw new Error(`ssh login to test sshd failed: ${login.stderr}`);
      }
      const exited = new Promise<void>((r) => (child.exitCode !== null ? r() : child.once("exit", () => r())));
      return {
        port,
        host: "127.0.0.1",
        alias: "testmac",
        user,
        keyPath,
        knownHostsPath,
        sshConfigPath,
        sshArgs,
        dir,
        async stop() {
          child.kill("SIGTERM");
          await exited;
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
