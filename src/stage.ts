// Outbound files when imsg runs on another host (the SSH-wrapper topology): imsg on the Mac cannot read a path
// on the gateway's machine, so each file part is first copied into an owner-only temp dir there and imsg gets
// that path. The copy's path is journaled on the part before the upload, so after a crash it is reused (or the
// file staged again) rather than lost, and removed once the part is settled.
import { readFileSync, statSync } from "node:fs";
import { basename, posix } from "node:path";
import { errorMessage } from "./errors.ts";
import { getLog } from "./log.ts";
import { mentionsSsh, quoteRemotePath, resolveRemoteHost, scpPut, sshRun, type SshTarget, validateRemotePath } from "./ssh.ts";
import type { OutboundRow, Store } from "./store.ts";

/** Every staging dir is `$TMPDIR/<prefix>XXXXXXXX` on the Mac: cleanup never removes anything not named so. */
export const STAGE_PREFIX = "openclaw-imsg-stage.";
/** Staging dirs older than this are left over from a crash between mktemp and the journal write: swept. */
const STALE_MINUTES = 24 * 60;
const TIMEOUT_MS = 30_000;

// Constant remote commands, run through sh so the Mac user's login shell (zsh, fish, …) does not matter.
const MKTEMP = `sh -c 'umask 077; mktemp -d "\${TMPDIR:-/tmp}/${STAGE_PREFIX}XXXXXXXX"'`;
const SWEEP_STALE = `sh -c 'find "\${TMPDIR:-/tmp}/" -maxdepth 1 -type d -name "${STAGE_PREFIX}*" -mmin +${STALE_MINUTES} -exec rm -rf {} +'`;

/** What imsg gets for a file part, or why the part cannot be sent (retryable: still pending, try later). */
export type StageResult = { path: string } | { error: string; retryable: boolean };

/** True when `dir` is a staging dir this module made (a validated absolute path with our prefix). */
export function isStageDir(dir: string): boolean {
  const v = validateRemotePath(dir);
  return v !== undefined && posix.basename(v).startsWith(STAGE_PREFIX) && posix.basename(v).length > STAGE_PREFIX.length;
}

/** The remote path for `file` inside staging dir `dir` (same name: history matches a file part by name), or why not. */
export function stagedPathFor(dir: string, file: string): string | { error: string } {
  const p = validateRemotePath(posix.join(dir, basename(file)));
  return p && posix.dirname(p) === dir ? p : {
    error: `file name ${
      JSON.stringify(basename(file))
    } has characters that cannot be staged on the remote Mac safely (quotes, $, ;, |, &, <, >, *, ?, [, ], backslash); rename the file`,
  };
}

/**
 * Stages file parts on the remote Mac for one account. `refusal` set: imsg runs over ssh but the host or its
 * options could not be told from the wrapper, so file parts fail with that reason instead of a useless local path.
 */
export class Stager {
  readonly #log;
  constructor(
    private readonly store: Store,
    private readonly accountId: string,
    private readonly target: SshTarget | { refusal: string },
  ) {
    this.#log = getLog(`stage:${accountId}`);
  }

  /** Why file parts cannot be staged (configuration), or undefined when they can. */
  get refusal(): string | undefined {
    return "refusal" in this.target ? this.target.refusal : undefined;
  }

  /** Checks a file before anything is sent (the `send` command refuses up front). */
  check(file: string): string | undefined {
    if ("refusal" in this.target) return this.target.refusal;
    const p = stagedPathFor(`/${STAGE_PREFIX}x`, file);
    return typeof p === "string" ? undefined : p.error;
  }

  /** The remote path imsg should send for this part: a staged copy journaled on the part (reused after a crash). */
  async stage(row: Pick<OutboundRow, "id" | "file" | "stagedPath">): Promise<StageResult> {
    if ("refusal" in this.target) return { error: this.target.refusal, retryable: false };
    const t = this.target;
    const file = row.file!;
    let size: number;
    try {
      size = statSync(file).size;
    } catch (e) {
      return { error: `cannot read ${file}: ${errorMessage(e)}`, retryable: false };
    }
    if (row.stagedPath) {
      // A copy from before a crash: reuse it when it is complete, else start over in a fresh dir.
      const q = quoteRemotePath(row.stagedPath);
      const r = q ? await sshRun(t, `wc -c < ${q}`) : undefined;
      if (r?.ok && Number(r.stdout.trim()) === size) {
        this.#log.debug(`reusing the staged copy of part ${row.id}`);
        return { path: row.stagedPath };
      }
      await this.#remove(row.id, row.stagedPath);
    }
    const mk = await sshRun(t, MKTEMP);
    if (!mk.ok) return { error: `cannot make a staging dir on ${t.host}: ${mk.reason}`, retryable: true };
    const dir = validateRemotePath(mk.stdout.trim());
    if (!dir || !isStageDir(dir)) return { error: `mktemp on ${t.host} gave an unusable path`, retryable: false };
    const dest = stagedPathFor(dir, file);
    if (typeof dest !== "string") {
      await this.#rmdir(dir);
      return { error: dest.error, retryable: false };
    }
    // Journaled before the upload: a crash from here on leaves a path the next start reuses or removes.
    this.store.setOutboundStaged(row.id, dest);
    const up = await scpPut(t, file, dest);
    if (!up.ok) {
      await this.#remove(row.id, dest);
      return { error: `cannot copy the file to ${t.host}: ${up.reason}`, retryable: true };
    }
    this.#log.debug(`staged part ${row.id} on ${t.host}`);
    return { path: dest };
  }

  /** After a part settled (imsg took it, or it failed for good): its staged copy is no longer needed. */
  async release(id: number): Promise<void> {
    const row = this.store.stagedOutbound(this.accountId).find((r) => r.id === id);
    if (row?.stagedPath && row.state !== "pending" && row.state !== "unknown") await this.#remove(row.id, row.stagedPath);
  }

  /**
   * At start: removes the copies of parts that settled while we were down (found sent by reconciliation, or
   * failed), and staging dirs old enough to be orphans of a crash before their path was journaled.
   */
  async sweep(): Promise<void> {
    if ("refusal" in this.target) return;
    for (const row of this.store.stagedOutbound(this.accountId)) await this.release(row.id);
    const r = await sshRun(this.target, SWEEP_STALE);
    if (!r.ok) this.#log.warn(`cannot sweep old staging dirs on ${this.target.host}: ${r.reason}`);
  }

  async #remove(id: number, stagedPath: string): Promise<void> {
    if (await this.#rmdir(posix.dirname(stagedPath))) this.store.setOutboundStaged(id, undefined);
  }

  /** Removes one staging dir; false (logged) when it could not, so the journal keeps it for a later sweep. */
  async #rmdir(dir: string): Promise<boolean> {
    const q = isStageDir(dir) ? quoteRemotePath(dir) : undefined;
    if ("refusal" in this.target || !q) return true;
    const r = await sshRun(this.target, `rm -rf -- ${q}`);
    if (!r.ok) this.#log.warn(`cannot remove a staging dir on ${this.target.host}: ${r.reason}`);
    return r.ok;
  }
}

/**
 * The account's stager when imsg runs on another host: `remoteHost` configured, or an ssh wrapper as cliPath.
 * Undefined when imsg is local. A wrapper that mentions ssh but whose host or options cannot be told yields a
 * refusing stager (file sends fail with the reason) rather than handing imsg a path it cannot read.
 */
export function stagerFor(
  account: { accountId: string; cliPath: string; remoteHost?: string; sshConfig?: string },
  store: Store,
  readFile: (path: string) => string = (p) => readFileSync(p, "utf8"),
): Stager | undefined {
  const r = resolveRemoteHost(account, readFile);
  if (r.host) return new Stager(store, account.accountId, { host: r.host, sshOptions: r.sshOptions, timeoutMs: TIMEOUT_MS });
  if (account.remoteHost?.trim()) return new Stager(store, account.accountId, { refusal: `cannot send files: ${r.reason}` });
  let text = "";
  try {
    text = account.cliPath.includes("/") ? readFile(account.cliPath) : "";
  } catch {
    return undefined;
  }
  // A binary (the real imsg) is local whatever strings it holds.
  if (text.includes("\u0000") || !mentionsSsh(text)) return undefined;
  return new Stager(store, account.accountId, {
    refusal:
      `cannot send files: imsg runs over ssh but the remote host cannot be told from the cliPath wrapper (${r.reason}); set channels.imessage.remoteHost (and sshConfig)`,
  });
}
