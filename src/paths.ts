// Home-directory expansion, shared by config resolution, the CLI's --config/--state-dir and ssh's files.
import { homedir } from "node:os";
import { join } from "node:path";

/** `~` and `~/…` → the home directory (other paths unchanged). */
export function expandHome(p: string): string {
  if (p === "~") return homedir();
  if (p.startsWith("~/")) return join(homedir(), p.slice(2));
  return p;
}
