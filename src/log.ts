// One consola instance, always writing to stderr (stdout is reserved for command output).
import { appendFileSync, renameSync, statSync } from "node:fs";
import { type ConsolaInstance, type ConsolaReporter, createConsola, LogLevels, type LogObject } from "consola";
import { clip } from "./text.ts";

export type LogFormat = "pretty" | "json";
export type Logger = ConsolaInstance;

const jsonReporter: ConsolaReporter = {
  log(o: LogObject) {
    const entry: Record<string, unknown> = { t: o.date.toISOString(), level: o.type, tag: o.tag || undefined };
    const parts: string[] = [];
    for (const a of o.args) {
      // A trailing plain object becomes structured fields instead of "[object Object]".
      if (a && typeof a === "object" && !(a instanceof Error) && !Array.isArray(a)) Object.assign(entry, { fields: a });
      else parts.push(a instanceof Error ? a.message : String(a));
    }
    entry.msg = parts.join(" ");
    out.write(JSON.stringify(entry) + "\n");
  },
};

/** Log file sink for `gateway --detach` (env OPENCLAW_IMSG_LOG_FILE), rotated to `<file>.1` at 10 MB. */
export const LOG_ROTATE_BYTES = 10 * 1024 * 1024;
let writes = 0;
function fileSink(path: string) {
  return {
    write(s: string): boolean {
      if (++writes % 100 === 1) {
        try {
          if (statSync(path).size > LOG_ROTATE_BYTES) renameSync(path, `${path}.1`);
        } catch {
          /* not there yet */
        }
      }
      appendFileSync(path, s, { mode: 0o600 });
      return true;
    },
  };
}
const out: { write(s: string): boolean } = process.env.OPENCLAW_IMSG_LOG_FILE ? fileSink(process.env.OPENCLAW_IMSG_LOG_FILE) : process.stderr;

let level: number = LogLevels.info;
let format: LogFormat = "pretty";
let root: ConsolaInstance | undefined;
const tagged = new Map<string, ConsolaInstance>();

function build(): ConsolaInstance {
  const stream = out as NodeJS.WriteStream;
  const c = createConsola({ level, stdout: stream, stderr: stream });
  if (format === "json") c.setReporters([jsonReporter]);
  return c;
}

/** Applies --verbose / --log-format; every logger handed out before or after follows it. */
export function configureLogging(opts: { verbose?: boolean; format?: LogFormat; quiet?: boolean }): void {
  level = opts.quiet ? LogLevels.warn : opts.verbose ? LogLevels.debug : LogLevels.info;
  format = opts.format ?? "pretty";
  root = build();
  for (const tag of tagged.keys()) tagged.set(tag, root.withTag(tag));
}

/** A logger tagged with the module name. Fetch it at call time (cheap) so configuration applies. */
export function getLog(tag: string): Logger {
  root ??= build();
  let l = tagged.get(tag);
  if (!l) tagged.set(tag, l = root.withTag(tag));
  return l;
}

export function isVerbose(): boolean {
  return level >= LogLevels.debug;
}

/** Handles in info logs show only their last 4 characters (digits for phone numbers). */
export function redact(handle: string | undefined | null): string {
  if (!handle) return "(none)";
  const digits = handle.replace(/\D/g, "");
  if (/^\+?[\d\s().-]+$/.test(handle) && digits.length >= 4) return `***${digits.slice(-4)}`;
  return handle.length <= 4 ? "***" : `***${handle.slice(-4)}`;
}

/** Short, single-line preview of message text for debug logs only (never info). */
export function preview(text: string | undefined, max = 60): string {
  const t = (text ?? "").replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return clip(t, max);
}
