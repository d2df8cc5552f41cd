// Attachment handling: root patterns, path validation, remoteHost validation, SCP fetch.
// normalizeRemoteHost and isValidRootPattern are shared with config validation.

/**
 * `host` or `user@host`, nothing else (no spaces, options, paths). Returns the normalized value,
 * or undefined when the value is unsafe to hand to scp/ssh.
 */
export function normalizeRemoteHost(value: string): string | undefined {
  const v = value.trim();
  if (!v || /[\s\u0000-\u001f\u007f]/.test(v) || v.startsWith("-") || /[/\\]/.test(v)) return undefined;
  const at = v.split("@");
  if (at.length > 2) return undefined;
  const [user, host] = at.length === 2 ? [at[0]!, at[1]!] : [undefined, at[0]!];
  if (user !== undefined && !/^[A-Za-z0-9._-]+$/.test(user)) return undefined;
  if (!host || host.startsWith("-")) return undefined;
  const hostOk = /^[A-Za-z0-9._-]+$/.test(host) || /^\[[0-9A-Fa-f:.%]+\]$/.test(host);
  if (!hostOk) return undefined;
  return user !== undefined ? `${user}@${host}` : host;
}

/** An absolute POSIX root pattern whose segments are either exactly `*` or contain no `*`. */
export function isValidRootPattern(pattern: string): boolean {
  if (!pattern.startsWith("/") || pattern.includes("\u0000")) return false;
  const segs = pattern.split("/").filter(Boolean);
  if (segs.length === 0) return false;
  return segs.every((s) => s === "*" || !s.includes("*")) && !segs.includes("..") && !segs.includes(".");
}
