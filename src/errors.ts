/** Exit codes (docs/SPEC.md §3.6). */
export const EXIT = { ok: 0, failed: 1, usage: 2, locked: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error meant for the user: printed as its message (plus hint), never as a stack. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.failed,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** Bad flags or arguments: exit 2. */
export class UsageError extends CliError {
  constructor(message: string, hint?: string) {
    super(message, EXIT.usage, hint);
    this.name = "UsageError";
  }
}

/** Invalid, unreadable or missing configuration: exit 2. */
export class ConfigError extends CliError {
  constructor(message: string, hint?: string) {
    super(message, EXIT.usage, hint);
    this.name = "ConfigError";
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
