// End to end: `bun scripts/try.ts` (the real gateway on the simulator) driven through a scripted stdin, as a person
// would type; asserts on the printed replies, the config it adopts, and that its temp dir is gone afterwards.
import { afterEach, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { waitFor } from "../helpers/sim.ts";

const ROOT = resolve(import.meta.dir, "../..");
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A HOME with no ~/.openclaw, so the developer's own config is never picked up. */
function home(): string {
  const d = mkdtempSync(join(tmpdir(), "try-home-"));
  dirs.push(d);
  return d;
}

function runTry(args: string[], input: string | undefined, env: Record<string, string> = {}) {
  const { NODE_ENV: _n, OPENCLAW_CONFIG_PATH: _c, ...base } = process.env;
  const child = spawn(process.execPath, [join(ROOT, "scripts/try.ts"), ...args], {
    cwd: ROOT,
    env: { ...base, HOME: home(), ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  if (input !== undefined) child.stdin.end(input);
  const exit = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, exit, out: () => stdout, err: () => stderr };
}

const tempDirOf = (out: string) => /temp dir (\S+)\)/.exec(out)?.[1];

describe("npm run try", () => {
  test("without a config: the demo agent answers a DM, a group mention, and a second contact gets a pairing code", async () => {
    const script =
      ["hello there", ':group "Family" +15550002222', "no mention here", "@claw pizza?", ":as +15550002222", ":dm", "hi, me too", ":approve", "now?"].join(
        "\n",
      ) + "\n";
    const t = runTry([], script);
    expect(await t.exit).toBe(0);
    const out = t.out();
    expect(out).toContain("using the demo agent");
    expect(out).toContain('← +15550001111: You said "hello there" (message 1 in our DM).');
    expect(out).toContain("not answered (dropped: no mention)");
    expect(out).toMatch(/← "Family" \(chat \d+\): You said "@claw pizza\?" \(message 1 in Family\)\./);
    expect(out).toMatch(/← \+15550002222: This assistant only talks to people its owner has approved\.[\s\S]*Pairing code: [A-Z2-9]{8}/);
    expect(out).toContain("Approved imessage sender +15550002222");
    expect(out).toMatch(/← \+15550002222: You said "now\?"/);
    // Each reply follows the line that caused it (lines settle one at a time).
    expect(out.indexOf("→ +15550002222 (DM): now?")).toBeLessThan(out.indexOf('You said "now?"'));
    expect(out.match(/ ← /g)).toHaveLength(4);
    const dir = tempDirOf(out);
    expect(dir && existsSync(dir)).toBe(false);
  }, 90_000);

  test("with a config: its agent and policy are used, cliPath and remoteHost are replaced by the simulator", async () => {
    const cfgDir = home();
    const configPath = join(cfgDir, "openclaw.json");
    writeFileSync(
      configPath,
      JSON.stringify({
        channels: {
          imessage: {
            cliPath: "/nonexistent/imsg",
            remoteHost: "mac.example.com",
            dmPolicy: "allowlist",
            allowFrom: ["+15550003333"],
            responsePrefix: "[bot]",
          },
        },
        agents: { list: [{ id: "helper", command: [process.execPath, join(ROOT, "scripts/demo-agent.ts")] }] },
      }),
    );
    const t = runTry(["--config", configPath], "first\n:as +15550004444\nwho are you\n");
    expect(await t.exit).toBe(0);
    const out = t.out();
    expect(out).toContain(`agents from ${configPath} (default "helper"`);
    expect(out).toContain("you are +15550003333 in a DM");
    expect(out).toContain('← +15550003333: [bot] You said "first"');
    expect(out).toContain("not answered (dropped: ");
    expect(out.match(/ ← /g)).toHaveLength(1);
  }, 90_000);

  test("a broken config fails with the loader's own error", async () => {
    const cfgDir = home();
    const configPath = join(cfgDir, "openclaw.json");
    writeFileSync(configPath, '{ channels: { imessage: { dmPolicy: "pairng" } } }');
    const t = runTry(["--config", configPath], "");
    expect(await t.exit).toBe(2);
    expect(t.err()).toContain("channels.imessage.dmPolicy");
  }, 30_000);

  test("Ctrl-C stops the gateway and removes the temp dir", async () => {
    const t = runTry([], undefined);
    await waitFor(() => t.out().includes("type a message"), 30_000, "the prompt");
    const dir = tempDirOf(t.out())!;
    expect(existsSync(dir)).toBe(true);
    t.child.kill("SIGINT");
    expect(await t.exit).toBe(130);
    expect(existsSync(dir)).toBe(false);
  }, 60_000);
});
