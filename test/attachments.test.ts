import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fetchAttachments, mediaCacheDir, mediaKind, mediaPlaceholder, pruneMediaCache, safeSessionDirName, sanitizeFileName } from "../src/attachments.ts";
import { checkLocalAttachment, isPathAllowed, isValidRootPattern, matchesRoot } from "../src/files.ts";
import { checkKnownHost, detectRemoteHost, normalizeRemoteHost, resolveRemoteHost, scpFetch, validateRemotePath } from "../src/ssh.ts";
import type { ImsgAttachment } from "../src/imsg.ts";
import { waitFor } from "./helpers/sim.ts";
import { type Sshd, sshdMissing, startSshd } from "./helpers/sshd.ts";

const DEFAULT_ROOT = "/Users/*/Library/Messages/Attachments";

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "imsg-att-"));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** A fresh directory under this file's temp dir. */
function fresh(name: string): string {
  return mkdtempSync(join(tmp, `${name}-`));
}

function att(path: string, over: Partial<ImsgAttachment> = {}): ImsgAttachment {
  return {
    filename: path,
    transferName: basename(path),
    uti: "public.jpeg",
    mimeType: "image/jpeg",
    totalBytes: 0,
    isSticker: false,
    originalPath: path,
    missing: false,
    ...over,
  };
}

const sha256 = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
const mode = (p: string) => statSync(p).mode & 0o777;

/**
 * An scp stand-in that records every invocation then runs the real scp. With `gate`, the first failed
 * attempt writes `failed-once` and holds until the test creates `go` (so the test can act in between).
 */
function recordingScp(dir: string, opts: { gate?: boolean } = {}): { path: string; log: string; attempts: () => string[] } {
  const real = Bun.which("scp");
  if (!real) throw new Error("scp not installed");
  const log = join(dir, "scp-calls.log");
  const path = join(dir, "scp-recorder.sh");
  const gate = opts.gate
    ? `if [ $rc -ne 0 ] && [ ! -e '${dir}/go' ]; then
  touch '${dir}/failed-once'
  i=0; while [ ! -e '${dir}/go' ] && [ $i -lt 400 ]; do sleep 0.025; i=$((i+1)); done
fi`
    : "";
  writeFileSync(path, `#!/bin/sh\necho "$*" >> '${log}'\n'${real}' "$@"\nrc=$?\n${gate}\nexit $rc\n`);
  chmodSync(path, 0o755);
  return { path, log, attempts: () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : []) };
}

// ---------------------------------------------------------------------------------------------

describe("matchesRoot / isPathAllowed", () => {
  const rows: [string, string, string[], boolean][] = [
    ["file below the default root", "/Users/alice/Library/Messages/Attachments/ab/01/G/IMG_1.jpeg", [DEFAULT_ROOT], true],
    ["the root itself", "/Users/alice/Library/Messages/Attachments", [DEFAULT_ROOT], true],
    ["* matches exactly one segment (not two)", "/Users/a/b/Library/Messages/Attachments/x.jpg", [DEFAULT_ROOT], false],
    ["* does not match zero segments", "/Users/Library/Messages/Attachments/x.jpg", [DEFAULT_ROOT], false],
    ["traversal out of the root is collapsed then refused", "/Users/a/Library/Messages/Attachments/../../../etc/passwd", [DEFAULT_ROOT], false],
    ["traversal to the filesystem root refused", "/Users/a/Library/Messages/Attachments/../../../../../../etc/passwd", [DEFAULT_ROOT], false],
    ["traversal that stays inside the root is allowed", "/Users/a/Library/Messages/Attachments/x/../y.jpg", [DEFAULT_ROOT], true],
    ["double slashes normalized", "//Users/a//Library/Messages/Attachments/y.jpg", [DEFAULT_ROOT], true],
    ["relative path refused", "Users/a/Library/Messages/Attachments/y.jpg", [DEFAULT_ROOT], false],
    ["filesystem root refused", "/", ["/"], false],
    ["empty path refused", "", [DEFAULT_ROOT], false],
    ["NUL refused", "/Users/a/Library/Messages/Attachments/y.jpg\u0000.txt", [DEFAULT_ROOT], false],
    ["sibling prefix is not a child", "/Users/a/Library/Messages/AttachmentsEvil/y.jpg", [DEFAULT_ROOT], false],
    ["no roots means nothing is allowed", "/Users/a/Library/Messages/Attachments/y.jpg", [], false],
    ["second root matches", "/srv/media/y.jpg", [DEFAULT_ROOT, "/srv/media"], true],
    ["invalid root pattern (partial *) never matches", "/srv/media/y.jpg", ["/srv/med*"], false],
    ["relative root pattern never matches", "/srv/media/y.jpg", ["srv/media"], false],
  ];
  for (const [name, path, roots, want] of rows) {
    test(name, () => {
      expect(isPathAllowed(path, roots)).toBe(want);
      if (roots.length === 1) expect(matchesRoot(path, roots[0]!)).toBe(want);
    });
  }
  test("isValidRootPattern still rejects / and partial wildcards", () => {
    expect(isValidRootPattern("/")).toBe(false);
    expect(isValidRootPattern("/Users/a*")).toBe(false);
    expect(isValidRootPattern(DEFAULT_ROOT)).toBe(true);
  });
});

describe("validateRemotePath", () => {
  const rows: [string, string, string | undefined][] = [
    ["plain absolute path", "/Users/a/Library/Messages/Attachments/x.jpg", "/Users/a/Library/Messages/Attachments/x.jpg"],
    ["spaces are allowed (SFTP-mode scp does not use a shell)", "/Users/a/My Photo.jpg", "/Users/a/My Photo.jpg"],
    ["unicode allowed", "/Users/a/Фото.heic", "/Users/a/Фото.heic"],
    ["double slashes and . normalized", "/Users//a/./x.jpg", "/Users/a/x.jpg"],
    ["relative refused", "Users/a/x.jpg", undefined],
    ["~ refused (not absolute)", "~/Library/x.jpg", undefined],
    ["filesystem root refused", "/", undefined],
    [".. refused even when it stays inside", "/Users/a/../a/x.jpg", undefined],
    ["newline refused", "/Users/a/x\n.jpg", undefined],
    ["NUL refused", "/Users/a/x\u0000.jpg", undefined],
    ["tab refused", "/Users/a/x\t.jpg", undefined],
    ["backslash refused", "/Users/a/x\\y.jpg", undefined],
    ["single quote refused", "/Users/a/x'y.jpg", undefined],
    ["double quote refused", '/Users/a/x"y.jpg', undefined],
    ["backtick refused", "/Users/a/`id`.jpg", undefined],
    ["dollar refused", "/Users/a/$HOME.jpg", undefined],
    ["semicolon refused", "/Users/a/x;rm -rf ~.jpg", undefined],
    ["pipe refused", "/Users/a/x|y.jpg", undefined],
    ["ampersand refused", "/Users/a/x&y.jpg", undefined],
    ["redirects refused", "/Users/a/x>y<z.jpg", undefined],
    ["glob * refused (scp expands remote globs)", "/Users/*/x.jpg", undefined],
  ];
  for (const [name, input, want] of rows) test(name, () => expect(validateRemotePath(input)).toBe(want));
});

describe("normalizeRemoteHost", () => {
  const rows: [string, string, string | undefined][] = [
    ["host", "mac-mini", "mac-mini"],
    ["user@host", "bob@mac.local", "bob@mac.local"],
    ["trimmed", "  mac  ", "mac"],
    ["bracketed IPv6", "bob@[fe80::1]", "bob@[fe80::1]"],
    ["option injection -oProxyCommand=x", "-oProxyCommand=x", undefined],
    ["space inside (a b)", "a b", undefined],
    ["double @ (user@@host)", "user@@host", undefined],
    ["shell metachar (host;rm)", "host;rm", undefined],
    ["path", "mac/x", undefined],
    ["host starting with -", "bob@-oX", undefined],
    ["empty", "", undefined],
  ];
  for (const [name, input, want] of rows) test(name, () => expect(normalizeRemoteHost(input)).toBe(want));
});

describe("detectRemoteHost", () => {
  const sh = (...lines: string[]) => ["#!/usr/bin/env bash", ...lines].join("\n");
  const rows: [string, string, string | undefined, RegExp][] = [
    ["the documented wrapper", sh('exec ssh -T gateway-host imsg "$@"'), "gateway-host", /detected/],
    ["user@host", sh('exec ssh -T bob@mac-mini imsg "$@"'), "bob@mac-mini", /detected/],
    [
      "value options skipped (-p, -i, -o) and flag cluster -Tq",
      sh('ssh -p 2222 -i ~/.ssh/id_mac -o ServerAliveInterval=30 -Tq bob@mac /opt/homebrew/bin/imsg "$@"'),
      "bob@mac",
      /detected/,
    ],
    ["attached option values (-oX=Y, -p22)", sh('exec ssh -oConnectTimeout=5 -p22 mac imsg "$@"'), "mac", /detected/],
    ["absolute ssh path with -l user", sh('exec /usr/bin/ssh -l bob mac imsg "$@"'), "bob@mac", /detected/],
    ["-o User=", sh('exec ssh -o User=bob mac imsg "$@"'), "bob@mac", /detected/],
    ["-- before the host", sh('exec ssh -T -- mac imsg "$@"'), "mac", /detected/],
    ["line continuation", sh("exec ssh -T \\", '  mac imsg "$@"'), "mac", /detected/],
    ["comments mentioning ssh are ignored", sh("# uses ssh to reach the mac", 'exec ssh mac imsg "$@" # ssh!'), "mac", /detected/],
    ["two ssh lines that agree", sh("ssh mac imsg --version", 'exec ssh mac imsg "$@"'), "mac", /detected/],
    ["remote command quoted as one word", sh(`exec ssh mac 'imsg "$@"'`), "mac", /detected/],
    ["-o ProxyCommand refused", sh('exec ssh -o ProxyCommand=nc mac imsg "$@"'), undefined, /ProxyCommand/],
    ["-oProxyJump refused", sh('exec ssh -oProxyJump=jump mac imsg "$@"'), undefined, /ProxyJump/],
    ["quoted ProxyCommand trick refused", sh('exec ssh -o "ProxyCommand=nc evil 22" mac imsg "$@"'), undefined, /shell syntax/],
    ["-o HostName remap refused", sh('exec ssh -o HostName=evil mac imsg "$@"'), undefined, /HostName/],
    ["-J jump host refused", sh('exec ssh -J jump mac imsg "$@"'), undefined, /-J/],
    ["$HOST variable refused", sh('exec ssh -T $HOST imsg "$@"'), undefined, /shell syntax/],
    ["${VAR:-default} refused", sh('exec ssh -T ${REMOTE:-mac} imsg "$@"'), undefined, /shell syntax/],
    ["command substitution refused", sh('exec ssh -T $(cat ~/.mac) imsg "$@"'), undefined, /shell syntax/],
    ["shell metachar in host refused", sh("exec ssh mac;rm imsg"), undefined, /shell syntax/],
    ["ssh lines that disagree", sh("ssh mac-a imsg --version", 'exec ssh mac-b imsg "$@"'), undefined, /disagree/],
    ["no ssh at all", sh('exec /usr/local/bin/imsg "$@"'), undefined, /no ssh/],
    ["ssh that does not run imsg", sh('exec ssh mac "$@"'), undefined, /imsg/],
    ["ssh behind another command (sshpass)", sh("exec sshpass -p pw ssh mac imsg"), undefined, /mentions ssh/],
    ["env-prefixed ssh", sh("FOO=1 ssh mac imsg"), undefined, /mentions ssh/],
    ["unknown ssh option", sh("exec ssh -Z mac imsg"), undefined, /unknown ssh option -Z/],
    ["option value missing", sh("exec ssh -p"), undefined, /no value/],
    ["bad port", sh("exec ssh -p 22x mac imsg"), undefined, /bad port/],
    ["ssh lines that disagree on options", sh("ssh -p 2200 mac imsg --version", 'exec ssh mac imsg "$@"'), undefined, /disagree on their connection options/],
    ["user given twice", sh("exec ssh -l bob alice@mac imsg"), undefined, /twice/],
    ["unsafe user from -o User", sh("exec ssh -o User=x@y mac imsg"), undefined, /unsafe host/],
    ["binary file", "\u007fELF\u0000\u0000ssh mac imsg", undefined, /binary/],
  ];
  for (const [name, text, host, reason] of rows) {
    test(name, () => {
      const r = detectRemoteHost(text);
      expect(r.host).toBe(host);
      expect(r.reason).toMatch(reason);
      if (r.host) expect(normalizeRemoteHost(r.host)).toBe(r.host);
    });
  }
});

describe("detectRemoteHost carries the wrapper's connection options to scp", () => {
  const home = process.env.HOME ?? "";
  const rows: [string, string, string[]][] = [
    ["none", 'exec ssh -T mac imsg "$@"', []],
    ["-p and -i (scp spells the port -P, so it goes as -o Port)", 'exec ssh -p 2222 -i key mac imsg "$@"', ["-o", "Port=2222", "-i", "key"]],
    ["attached values, ~ expanded", 'exec ssh -p22 -i~/.ssh/id_mac -F ~/.ssh/mac.conf mac imsg "$@"', [
      "-o",
      "Port=22",
      "-i",
      `${home}/.ssh/id_mac`,
      "-F",
      `${home}/.ssh/mac.conf`,
    ]],
    ["-o kept in order, -o User folded into the host", 'exec ssh -o User=bob -o IdentitiesOnly=yes -oUserKnownHostsFile=/k mac imsg "$@"', [
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "UserKnownHostsFile=/k",
    ]],
    ["-4 -C carried, session flags dropped", 'exec ssh -4TqC -c aes256-ctr -m hmac-sha2-256 -b 10.0.0.1 -L 1:a:2 mac imsg "$@"', [
      "-4",
      "-C",
      "-c",
      "aes256-ctr",
      "-o",
      "MACs=hmac-sha2-256",
      "-o",
      "BindAddress=10.0.0.1",
    ]],
  ];
  for (const [name, line, want] of rows) test(name, () => expect(detectRemoteHost(`#!/bin/sh\n${line}\n`).sshOptions).toEqual(want));
});

describe("resolveRemoteHost", () => {
  const wrapper = '#!/bin/sh\nexec ssh -T bob@mac imsg "$@"\n';
  type Row = [string, { cliPath: string; remoteHost?: string }, Record<string, string>, { host?: string; source: string; reason?: RegExp }, string[]];
  const rows: Row[] = [
    ["configured remoteHost wins; wrapper not read", { cliPath: "/w/imsg-ssh", remoteHost: "alice@mini" }, { "/w/imsg-ssh": wrapper }, {
      host: "alice@mini",
      source: "config",
    }, []],
    ["unsafe configured value is not replaced by detection", { cliPath: "/w/imsg-ssh", remoteHost: "-oProxyCommand=x" }, { "/w/imsg-ssh": wrapper }, {
      source: "none",
      reason: /unsafe/,
    }, []],
    ["bare cliPath is never read", { cliPath: "imsg" }, {}, { source: "none", reason: /command name/ }, []],
    ["detected from the wrapper", { cliPath: "/w/imsg-ssh" }, { "/w/imsg-ssh": wrapper }, { host: "bob@mac", source: "wrapper", reason: /detected/ }, [
      "/w/imsg-ssh",
    ]],
    ["unreadable wrapper", { cliPath: "/w/missing" }, {}, { source: "none", reason: /cannot read cliPath/ }, ["/w/missing"]],
    ["wrapper without ssh", { cliPath: "/w/local" }, { "/w/local": '#!/bin/sh\nexec imsg "$@"\n' }, { source: "none", reason: /no ssh/ }, ["/w/local"]],
  ];
  for (const [name, account, files, want, reads] of rows) {
    test(name, () => {
      const seen: string[] = [];
      expect(resolveRemoteHost(account, (p) => files[p] ?? "").sshOptions).toEqual([]);
      const r = resolveRemoteHost(account, (p) => {
        seen.push(p);
        const t = files[p];
        if (t === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: "ENOENT" });
        return t;
      });
      expect(r.host).toBe(want.host);
      expect(r.source).toBe(want.source as typeof r.source);
      if (want.reason) expect(r.reason).toMatch(want.reason);
      expect(seen).toEqual(reads);
    });
  }
  test("sshConfig: used for a configured host, and for a wrapper without its own -F", () => {
    const files: Record<string, string> = { "/w/a": 'exec ssh -p 2 mac imsg "$@"', "/w/b": 'exec ssh -F /own mac imsg "$@"' };
    const read = (p: string) => files[p]!;
    expect(resolveRemoteHost({ cliPath: "imsg", remoteHost: "mac", sshConfig: "/cfg" }, read).sshOptions).toEqual(["-F", "/cfg"]);
    expect(resolveRemoteHost({ cliPath: "/w/a", sshConfig: "/cfg" }, read).sshOptions).toEqual(["-F", "/cfg", "-o", "Port=2"]);
    expect(resolveRemoteHost({ cliPath: "/w/b", sshConfig: "/cfg" }, read).sshOptions).toEqual(["-F", "/own"]);
  });
  test("reads a real wrapper file with the default reader", () => {
    const p = join(fresh("wrapper"), "imsg-ssh");
    writeFileSync(p, wrapper);
    expect(resolveRemoteHost({ cliPath: p })).toEqual({ host: "bob@mac", source: "wrapper", reason: expect.stringMatching(/detected/), sshOptions: [] });
  });
});

describe("mediaKind / mediaPlaceholder", () => {
  const rows: [string, string, string][] = [
    ["image", "image/jpeg", "image"],
    ["HEIC image", "image/heic", "image"],
    ["video", "video/quicktime", "video"],
    ["audio (voice memo)", "audio/x-caf", "audio"],
    ["pdf", "application/pdf", "document"],
    ["text", "text/plain", "document"],
    ["upper case", "IMAGE/PNG", "image"],
    ["octet-stream is a generic attachment", "application/octet-stream", "attachment"],
    ["empty MIME", "", "attachment"],
    ["unknown family", "chemical/x-pdb", "attachment"],
  ];
  for (const [name, mime, kind] of rows) test(name, () => expect(mediaKind(mime)).toBe(kind as ReturnType<typeof mediaKind>));
  test("placeholder uses the first kind; none gives empty", () => {
    expect(mediaPlaceholder(["video", "image"])).toBe("<media:video>");
    expect(mediaPlaceholder(["attachment"])).toBe("<media:attachment>");
    expect(mediaPlaceholder([])).toBe("");
  });
});

describe("sanitizeFileName / safeSessionDirName", () => {
  const rows: [string, string, { stem: string; ext: string }][] = [
    ["plain name", "IMG_0001.HEIC", { stem: "IMG_0001", ext: ".heic" }],
    ["traversal keeps only the basename", "../../x", { stem: "x", ext: "" }],
    ["slashes keep only the basename", "a/b/c.jpg", { stem: "c", ext: ".jpg" }],
    ["backslashes keep only the basename", "..\\..\\evil.exe", { stem: "evil", ext: ".exe" }],
    ["NUL and newline replaced", "a\u0000b\nc.png", { stem: "a_b_c", ext: ".png" }],
    ["dot-only name", "..", { stem: "attachment", ext: "" }],
    ["hidden file", ".bashrc", { stem: "attachment", ext: ".bashrc" }],
    ["leading dash (option-like)", "-rf.txt", { stem: "rf", ext: ".txt" }],
    ["shell metacharacters replaced", "$(id);`x`.jpg", { stem: "id___x_", ext: ".jpg" }],
    ["unicode kept", "Фото отпуск.jpg", { stem: "Фото отпуск", ext: ".jpg" }],
    ["empty", "", { stem: "attachment", ext: "" }],
  ];
  for (const [name, input, want] of rows) test(name, () => expect(sanitizeFileName(input)).toEqual(want));
  test("300-char names are cut to a safe length (bytes, not chars)", () => {
    for (const ch of ["a", "ж", "😀"]) {
      const { stem, ext } = sanitizeFileName(`${ch.repeat(300)}.jpg`);
      expect(ext).toBe(".jpg");
      expect(new TextEncoder().encode(stem).length).toBeLessThanOrEqual(100);
      expect(stem.length).toBeGreaterThan(0);
    }
  });
  test("session dir names are safe and do not collide", () => {
    const a = safeSessionDirName("agent:main:imessage:group:42");
    const b = safeSessionDirName("agent_main_imessage_group_42");
    expect(a).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(a).not.toBe(b);
    expect(safeSessionDirName("../../etc")).toMatch(/^etc-[0-9a-f]{8}$/);
  });
});

// ---------------------------------------------------------------------------------------------
// Local files (real filesystem)

describe("checkLocalAttachment", () => {
  let root: string;
  let roots: string[];
  beforeAll(() => {
    const base = fresh("local");
    root = join(base, "Users", "alice", "Library", "Messages", "Attachments");
    mkdirSync(join(root, "ab"), { recursive: true });
    roots = [join(base, "Users", "*", "Library", "Messages", "Attachments")];
    writeFileSync(join(root, "ab", "ok.jpg"), randomBytes(1000));
    writeFileSync(join(base, "secret.txt"), "secret");
    symlinkSync(join(base, "secret.txt"), join(root, "ab", "link.jpg"));
    symlinkSync(base, join(root, "dirlink"));
  });
  test("a regular file inside the root is allowed", async () => {
    expect(await checkLocalAttachment(join(root, "ab", "ok.jpg"), roots, 5000)).toEqual({ ok: true, path: join(root, "ab", "ok.jpg"), size: 1000 });
  });
  const rows: [string, () => string, number, RegExp][] = [
    ["a symlink inside the root is refused", () => join(root, "ab", "link.jpg"), 5000, /symlink/],
    ["escape through a symlinked directory is refused", () => join(root, "dirlink", "secret.txt"), 5000, /symlinked directory/],
    ["a directory is refused", () => join(root, "ab"), 5000, /not a regular file/],
    ["a missing file is refused", () => join(root, "ab", "nope.jpg"), 5000, /missing/],
    ["an oversized file is refused", () => join(root, "ab", "ok.jpg"), 999, /above the 999-byte limit/],
    ["traversal out of the root is refused", () => join(root, "ab", "..", "..", "..", "..", "..", "..", "secret.txt"), 5000, /outside/],
  ];
  for (const [name, path, max, reason] of rows) {
    test(name, async () => {
      const r = await checkLocalAttachment(path(), roots, max);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(reason);
    });
  }
});

describe("fetchAttachments (local mode)", () => {
  let base: string;
  let root: string;
  let roots: string[];
  beforeAll(() => {
    base = fresh("fetch-local");
    root = join(base, "Users", "alice", "Library", "Messages", "Attachments", "ab", "01", "GUID");
    mkdirSync(root, { recursive: true });
    roots = [join(base, "Users", "*", "Library", "Messages", "Attachments")];
  });

  test("copies the file into a 0700 per-session dir as a 0600 file, named <stem>-<8 hex><ext>", async () => {
    const src = join(root, "IMG_0001.jpeg");
    writeFileSync(src, randomBytes(4096));
    const stateDir = fresh("state");
    const [r] = await fetchAttachments([att(src, { transferName: "IMG_0001.jpeg", totalBytes: 4096 })], {
      stateDir,
      sessionKey: "agent:main:main",
      maxBytes: 1 << 20,
      roots,
    });
    expect(r).toMatchObject({ ok: true, mimeType: "image/jpeg", name: "IMG_0001.jpeg", size: 4096 });
    if (!r?.ok) throw new Error("fetch failed");
    expect(dirname(r.path)).toBe(join(mediaCacheDir(stateDir), safeSessionDirName("agent:main:main")));
    expect(basename(r.path)).toMatch(/^IMG_0001-[0-9a-f]{8}\.jpeg$/);
    expect(sha256(r.path)).toBe(sha256(src));
    expect(mode(r.path)).toBe(0o600);
    expect(mode(dirname(r.path))).toBe(0o700);
    expect(mode(mediaCacheDir(stateDir))).toBe(0o700);
    expect(readdirSync(dirname(r.path))).toEqual([basename(r.path)]); // no temp leftovers
  });

  test("refuses symlinks, traversal, out-of-root and oversized files; keeps order; caches nothing for them", async () => {
    writeFileSync(join(base, "secret.txt"), "secret");
    symlinkSync(join(base, "secret.txt"), join(root, "link.jpg"));
    writeFileSync(join(root, "big.mov"), randomBytes(3000));
    writeFileSync(join(root, "small.png"), randomBytes(10));
    const stateDir = fresh("state");
    const res = await fetchAttachments(
      [
        att(join(root, "link.jpg")),
        att(join(root, "..", "..", "..", "..", "..", "..", "..", "secret.txt")),
        att(join(base, "secret.txt")),
        att(join(root, "big.mov"), { totalBytes: 3000 }), // honest size: refused before reading
        att(join(root, "big.mov"), { totalBytes: 0 }), // size unknown/lying: refused on stat
        att(join(root, "small.png"), { mimeType: "image/png" }),
        att("", { missing: true }),
        att(join(root, "x.pluginPayloadAttachment")),
      ],
      { stateDir, sessionKey: "s", maxBytes: 2000, roots },
    );
    expect(res.map((r) => (r.ok ? "ok" : r.reason))).toEqual([
      expect.stringMatching(/symlink/),
      expect.stringMatching(/outside allowed attachment roots/),
      expect.stringMatching(/outside allowed attachment roots/),
      expect.stringMatching(/above the 2000-byte limit/),
      expect.stringMatching(/above the 2000-byte limit/),
      "ok",
      expect.stringMatching(/no file path/),
      expect.stringMatching(/rich-link/),
    ]);
    const cached = readdirSync(join(mediaCacheDir(stateDir), safeSessionDirName("s")));
    expect(cached).toHaveLength(1);
    expect(cached[0]).toMatch(/^small-[0-9a-f]{8}\.png$/);
  });

  test("hostile transfer names are made safe and stay inside the session dir", async () => {
    const src = join(root, "plain.jpg");
    writeFileSync(src, "x");
    const stateDir = fresh("state");
    const hostile = ["../../x", "a/b/c.jpg", "evil\u0000.jpg", `${"A".repeat(300)}.jpg`, "..", ".ssh", "-rf", "$(reboot).jpg"];
    const res = await fetchAttachments(hostile.map((n) => att(src, { transferName: n })), { stateDir, sessionKey: "k", maxBytes: 100, roots });
    const dir = join(mediaCacheDir(stateDir), safeSessionDirName("k"));
    for (const r of res) {
      if (!r.ok) throw new Error(r.reason);
      expect(dirname(r.path)).toBe(dir);
      const name = basename(r.path);
      expect(name).toMatch(/^[A-Za-z0-9][A-Za-z0-9._ -]*-[0-9a-f]{8}(\.[a-z0-9]{1,10})?$/);
      expect(new TextEncoder().encode(name).length).toBeLessThan(255);
      expect(r.name).not.toMatch(/[/\u0000]/);
    }
    expect(res.map((r) => r.ok && r.name)).toEqual(["x", "c.jpg", "evil_.jpg", `${"A".repeat(100)}.jpg`, "attachment", "attachment.ssh", "rf", "reboot_.jpg"]);
    expect(readdirSync(dir)).toHaveLength(hostile.length);
  });
});

describe("pruneMediaCache", () => {
  test("removes files older than maxAge, then the oldest until under the size cap, and empty dirs", async () => {
    const stateDir = fresh("prune");
    const media = mediaCacheDir(stateDir);
    const now = Date.now();
    const put = (session: string, name: string, bytes: number, ageMs: number) => {
      mkdirSync(join(media, session), { recursive: true });
      const p = join(media, session, name);
      writeFileSync(p, Buffer.alloc(bytes));
      utimesSync(p, (now - ageMs) / 1000, (now - ageMs) / 1000);
      return p;
    };
    const ancient = put("s1", "ancient.jpg", 100, 10 * 86_400_000);
    const old = put("s2", "old.jpg", 300, 3_600_000);
    const mid = put("s2", "mid.jpg", 300, 1_800_000);
    const recent = put("s2", "recent.jpg", 300, 60_000);
    const r = await pruneMediaCache(stateDir, 86_400_000, 700, now);
    expect(r).toEqual({ removedFiles: 2, removedBytes: 400, keptBytes: 600 });
    expect([ancient, old, mid, recent].map((p) => existsSync(p))).toEqual([false, false, true, true]);
    expect(existsSync(join(media, "s1"))).toBe(false); // emptied session dir removed
  });
  test("a missing cache is fine", async () => {
    expect(await pruneMediaCache(join(tmp, "no-such-state"), 1000, 1000)).toEqual({ removedFiles: 0, removedBytes: 0, keptBytes: 0 });
  });
});

describe("scpFetch refuses bad input before spawning anything", () => {
  const rows: [string, string, string, RegExp][] = [
    ["option-injection host", "-oProxyCommand=x", "/Users/a/x.jpg", /invalid remote host/],
    ["host with a space", "a b", "/Users/a/x.jpg", /invalid remote host/],
    ["host with a shell metachar", "host;rm", "/Users/a/x.jpg", /invalid remote host/],
    ["path with a shell metachar", "mac", "/Users/a/x;rm -rf ~", /invalid remote path/],
    ["path with ..", "mac", "/Users/a/Library/Messages/Attachments/../../../../etc/passwd", /invalid remote path/],
    ["relative path", "mac", "x.jpg", /invalid remote path/],
  ];
  for (const [name, host, remotePath, reason] of rows) {
    test(name, async () => {
      const dir = fresh("noscp");
      const scp = recordingScp(dir);
      const r = await scpFetch({ host, remotePath, localPath: join(dir, "out"), timeoutMs: 5000, backoffMs: 10, scpPath: scp.path });
      expect(r).toEqual({ ok: false, reason: expect.stringMatching(reason) });
      expect(scp.attempts()).toEqual([]);
    });
  }
  test("a hung scp is killed at the timeout", async () => {
    const dir = fresh("hang");
    const path = join(dir, "hang.sh");
    writeFileSync(path, "#!/bin/sh\nexec sleep 30\n");
    chmodSync(path, 0o755);
    const r = await scpFetch({ host: "mac", remotePath: "/x.jpg", localPath: join(dir, "out"), timeoutMs: 300, backoffMs: 10, scpPath: path });
    expect(r).toEqual({ ok: false, reason: "scp timed out after 300 ms" });
    expect(readdirSync(dir)).toEqual(["hang.sh"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Remote mode against a real sshd

// Without sshd this fails with how to install it (the other tests here then fail in beforeAll, never skip).
test("sshd is installed", () => {
  expect(sshdMissing()).toBeUndefined();
});

describe("remote mode (real sshd)", () => {
  let sshd: Sshd;
  let base: string;
  let root: string;
  let roots: string[];
  beforeAll(async () => {
    sshd = await startSshd();
    base = fresh("remote");
    root = join(base, "Users", "alice", "Library", "Messages", "Attachments", "cd", "02", "GUID");
    mkdirSync(root, { recursive: true });
    roots = [join(base, "Users", "*", "Library", "Messages", "Attachments")];
  });
  afterAll(async () => {
    await sshd?.stop();
  });
  const scpOpts = (extra: { scpPath?: string; sshOptions?: string[] } = {}) => ({
    timeoutMs: 15_000,
    retries: 3,
    backoffMs: 20,
    sshOptions: sshd.sshArgs,
    ...extra,
  });

  test("fetches through the host alias; checksum equal, 0600, no temp files", async () => {
    const src = join(root, "photo one.heic");
    writeFileSync(src, randomBytes(256 * 1024));
    const stateDir = fresh("state");
    const [r] = await fetchAttachments([att(src, { mimeType: "image/heic", totalBytes: 256 * 1024 })], {
      stateDir,
      sessionKey: "agent:main:imessage:group:42",
      maxBytes: 1 << 20,
      roots,
      remoteHost: sshd.alias,
      scp: scpOpts(),
    });
    if (!r?.ok) throw new Error(`fetch failed: ${r?.reason}`);
    expect(r).toMatchObject({ mimeType: "image/heic", name: "photo one.heic", size: 256 * 1024 });
    expect(sha256(r.path)).toBe(sha256(src));
    expect(mode(r.path)).toBe(0o600);
    expect(readdirSync(dirname(r.path))).toEqual([basename(r.path)]);
  });

  test("an unknown host key is refused once (no retry) with hostKeyUnknown and a hint", async () => {
    const dir = fresh("hostkey");
    const src = join(root, "hk.jpg");
    writeFileSync(src, "x");
    const empty = join(dir, "empty_known_hosts");
    writeFileSync(empty, "");
    const scp = recordingScp(dir);
    const r = await scpFetch({
      host: sshd.alias,
      remotePath: src,
      localPath: join(dir, "out.jpg"),
      ...scpOpts({ scpPath: scp.path, sshOptions: [...sshd.sshArgs, "-o", `UserKnownHostsFile=${empty}`] }),
    });
    expect(r).toEqual({ ok: false, hostKeyUnknown: true, reason: expect.stringMatching(/not in known_hosts.*ssh-keyscan/) });
    expect(scp.attempts()).toHaveLength(1);
    expect(existsSync(join(dir, "out.jpg"))).toBe(false);
  });

  test("SFTP mode, then our BatchMode/StrictHostKeyChecking first, so a config cannot weaken them", async () => {
    const dir = fresh("strict");
    const scp = recordingScp(dir);
    writeFileSync(join(root, "s.jpg"), "x");
    await scpFetch({ host: sshd.alias, remotePath: join(root, "s.jpg"), localPath: join(dir, "o"), ...scpOpts({ scpPath: scp.path }) });
    expect(scp.attempts()[0]).toMatch(/^-s -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=15 -F \S+ -- testmac:\//);
  });

  test("paths outside the remote roots, or traversing out, are refused before any scp runs", async () => {
    const dir = fresh("outside");
    const scp = recordingScp(dir);
    writeFileSync(join(base, "secret.txt"), "secret");
    const res = await fetchAttachments(
      [att(join(base, "secret.txt")), att(`${root}/../../../../../../../secret.txt`), att("/etc/passwd")],
      { stateDir: fresh("state"), sessionKey: "s", maxBytes: 1000, roots, remoteHost: sshd.alias, scp: scpOpts({ scpPath: scp.path }) },
    );
    expect(res).toEqual([0, 1, 2].map(() => ({ ok: false, reason: expect.stringMatching(/outside allowed remote attachment roots/) })));
    expect(scp.attempts()).toEqual([]);
  });

  test("a traversal that lands back inside the root is still refused by the remote-path check", async () => {
    const dir = fresh("trav");
    const scp = recordingScp(dir);
    writeFileSync(join(root, "in.jpg"), "x");
    const [r] = await fetchAttachments([att(`${root}/../GUID/in.jpg`)], {
      stateDir: fresh("state"),
      sessionKey: "s",
      maxBytes: 1000,
      roots,
      remoteHost: sshd.alias,
      scp: scpOpts({ scpPath: scp.path }),
    });
    expect(r).toEqual({ ok: false, reason: "invalid remote path for SCP" });
    expect(scp.attempts()).toEqual([]);
  });

  test("a file that appears after the first failed attempt is fetched on retry", async () => {
    const dir = fresh("late");
    const scp = recordingScp(dir, { gate: true });
    const src = join(root, "late.mov");
    const bytes = randomBytes(64 * 1024);
    const pending = fetchAttachments([att(src, { mimeType: "video/quicktime", missing: true })], {
      stateDir: fresh("state"),
      sessionKey: "s",
      maxBytes: 1 << 20,
      roots,
      remoteHost: sshd.alias,
      scp: scpOpts({ scpPath: scp.path }),
    });
    await waitFor(() => existsSync(join(dir, "failed-once")), 10_000, "the first scp attempt to fail");
    writeFileSync(src, bytes);
    writeFileSync(join(dir, "go"), "");
    const [r] = await pending;
    if (!r?.ok) throw new Error(`fetch failed: ${r?.reason}`);
    expect(readFileSync(r.path).equals(bytes)).toBe(true);
    expect(scp.attempts()).toHaveLength(2);
  });

  test("a file that never appears fails after 1 + retries attempts", async () => {
    const dir = fresh("never");
    const scp = recordingScp(dir);
    const r = await scpFetch({
      host: sshd.alias,
      remotePath: join(root, "never.jpg"),
      localPath: join(dir, "o"),
      ...scpOpts({ scpPath: scp.path }),
      retries: 2,
    });
    expect(r).toEqual({ ok: false, reason: expect.stringMatching(/remote file not found/) });
    expect(scp.attempts()).toHaveLength(3);
  });

  test("oversized files are dropped: by reported size without scp, by real size after download", async () => {
    const dir = fresh("big");
    const scp = recordingScp(dir);
    const src = join(root, "big.mov");
    writeFileSync(src, randomBytes(5000));
    const stateDir = fresh("state");
    const opts = { stateDir, sessionKey: "s", maxBytes: 4000, roots, remoteHost: sshd.alias, scp: scpOpts({ scpPath: scp.path }) };
    const [byReport] = await fetchAttachments([att(src, { totalBytes: 5000 })], opts);
    expect(byReport).toEqual({ ok: false, reason: expect.stringMatching(/above the 4000-byte limit/) });
    expect(scp.attempts()).toEqual([]);
    const [byStat] = await fetchAttachments([att(src, { totalBytes: 0 })], opts);
    expect(byStat).toEqual({ ok: false, reason: expect.stringMatching(/5000 bytes, above the 4000-byte limit/) });
    expect(scp.attempts()).toHaveLength(1);
    expect(readdirSync(join(mediaCacheDir(stateDir), safeSessionDirName("s")))).toEqual([]);
  });

  test("checkKnownHost: known via the config's known_hosts, unknown with an empty file", async () => {
    const empty = join(fresh("kh"), "known_hosts");
    writeFileSync(empty, "");
    expect(await checkKnownHost(sshd.alias, undefined, sshd.sshArgs)).toBe(true);
    expect(await checkKnownHost(`${sshd.user}@${sshd.host}`, sshd.knownHostsPath, sshd.sshArgs)).toBe(true);
    expect(await checkKnownHost(sshd.alias, empty, sshd.sshArgs)).toBe(false);
    expect(await checkKnownHost("-oProxyCommand=x")).toBe(false);
  });
});
