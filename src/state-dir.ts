// The state dir holds message text, handles and the lock: it must be private. We create it 0700, but never
// chmod a directory we did not create (a mistaken --state-dir /tmp or $HOME must not have its mode rewritten);
// an existing one that others could write into (or that someone else owns) is refused instead.
import { mkdirSync, statSync } from "node:fs";
import { CliError } from "./errors.ts";

/** Why a state dir is unsafe to use, or undefined when it is fine. Pure: the caller stats. */
export function stateDirProblem(dir: string, st: { mode: number; uid: number; isDirectory(): boolean }, uid: number | undefined): string | undefined {
  if (!st.isDirectory()) return `state dir ${dir} is not a directory`;
  if (uid !== undefined && st.uid !== uid) return `state dir ${dir} is owned by another user (uid ${st.uid})`;
  if (st.mode & 0o022) return `state dir ${dir} is writable by others`;
  return undefined;
}

function refuse(dir: string, problem: string): never {
  throw new CliError(problem, undefined, `Use a private directory (chmod 700 ${dir}) or another --state-dir.`);
}

/** Checks an existing state dir; false when it does not exist yet. Throws CliError when it is unsafe. */
export function checkStateDir(dir: string): boolean {
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
  const problem = stateDirProblem(dir, st, process.getuid?.());
  if (problem) refuse(dir, problem);
  return true;
}

/** Creates the state dir (0700, parents too) or checks the existing one. */
export function ensureStateDir(dir: string): void {
  if (checkStateDir(dir)) return;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}
