// The probe's "gateway running" check: is a gateway holding the lock for this account, subscribed, and keeping up
// with imsg (a cursor behind a newer row while silent, or past the newest row of a replaced database, fails it).
import type { ImessageAccount } from "./config.ts";
import { describeConv, readPauses } from "./guard.ts";
import { readLock } from "./lock.ts";
import { Store } from "./store.ts";
import { cursorBeyond } from "./watch.ts";

/** A probe check (probe.ts `Check`), as far as this one fills it. */
type Check = { name: string; ok: boolean; detail: string; hint?: string };
/** What of probe.ts `ProbeOptions` this check reads. */
type ProbeOptions = { stateDir: string; requireGateway: boolean; staleAfterMs?: number };

export const GATEWAY_NOT_REQUIRED = "(not required; --require-gateway makes this a failure)";

/** "gateway running": a failure only with --require-gateway; otherwise reported as passing, with a note. */
export function gatewayCheck(account: ImessageAccount, opts: ProbeOptions, newest: number | undefined, exact = false): Check {
  const c = gatewayState(account, opts, newest, exact);
  return c.ok || opts.requireGateway ? c : { ...c, ok: true, detail: `${c.detail} ${GATEWAY_NOT_REQUIRED}` };
}

function gatewayState(account: ImessageAccount, opts: ProbeOptions, newest: number | undefined, exact: boolean): Check {
  const name = "gateway running";
  const lock = readLock(opts.stateDir);
  let activity = "";
  let cursor: number | undefined;
  let lastEvent: number | undefined;
  try {
    const store = Store.openIfExists(opts.stateDir);
    if (store) {
      try {
        const a = store.activity(account.accountId);
        cursor = store.getCursor(account.accountId);
        lastEvent = a.lastInboundAt;
        activity = `; last inbound ${a.lastInboundAt ? new Date(a.lastInboundAt).toISOString() : "never"}, last outbound ${
          a.lastOutboundAt ? new Date(a.lastOutboundAt).toISOString() : "never"
        }, backlog ${a.backlog}`;
        // Paused conversations (rate guard) are part of the gateway's state: their messages wait for /resume.
        const paused = Object.entries(readPauses(store, account.accountId)).map(([c, p]) =>
          `${describeConv(c)} since ${new Date(p.since).toISOString()} (${p.reason})`
        );
        if (paused.length) activity += `; paused by the rate guard (owner sends /resume): ${paused.join("; ")}`;
      } finally {
        store.close();
      }
    }
  } catch (e) {
    activity = `; state unreadable: ${(e as Error).message}`;
  }
  if (!lock) {
    return {
      name,
      ok: false,
      detail: `no gateway holds the lock in ${opts.stateDir}${activity}`,
      hint: "Start it: `openclaw-imsg gateway` (or `--detach --log-file …`, see README for launchd/cron).",
    };
  }
  if (!lock.accounts?.includes(account.accountId)) {
    return {
      name,
      ok: false,
      detail: `gateway pid ${lock.pid} runs, but not account ${account.accountId}${activity}`,
      hint: "Restart it with this account enabled.",
    };
  }
  if (!lock.subscribedAt) {
    return { name, ok: false, detail: `gateway pid ${lock.pid} is starting (not subscribed yet)${activity}`, hint: "Check its log for imsg errors." };
  }
  const staleAfter = opts.staleAfterMs ?? 10 * 60_000;
  const silentFor = Date.now() - Math.max(lastEvent ?? 0, lock.subscribedAt);
  // Only an exact newest row can prove the cursor is past the end: a sampled one may simply have missed rows.
  if (exact && newest !== undefined && cursor !== undefined && cursorBeyond(cursor, newest)) {
    return {
      name,
      ok: false,
      detail:
        `gateway pid ${lock.pid} is running but its cursor (row ${cursor}) is past imsg's newest row (${newest}): the Messages database was replaced (a restore, a new Mac, another dbPath)${activity}`,
      hint: "Restart it (`openclaw-imsg gateway --replace`): a new watch notices the new database and starts from its newest row.",
    };
  }
  if (newest !== undefined && cursor !== undefined && newest > cursor && silentFor > staleAfter) {
    return {
      name,
      ok: false,
      detail: `gateway pid ${lock.pid} is running but its watch is stale: imsg has row ${newest}, the gateway's cursor is ${cursor}, silent for ${
        Math.round(silentFor / 1000)
      }s${activity}`,
      hint: "Restart it: `openclaw-imsg gateway --replace`.",
    };
  }
  return { name, ok: true, detail: `pid ${lock.pid}, subscribed since ${new Date(lock.subscribedAt).toISOString()}${activity}` };
}
