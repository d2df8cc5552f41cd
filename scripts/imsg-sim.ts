#!/usr/bin/env bun
// imsg-sim: a stand-in for the `imsg` CLI on machines without macOS (tests, demo, benchmarks).
// It speaks `imsg rpc` as docs/IMSG-PROTOCOL.md describes, as imsg 0.9.0 or 0.15.6 (quirks included), over a
// chat.db-shaped SQLite file (scripts/sim-db.ts), and adds companion commands: `inject`, `sent`, `chats`.
// The code lives in scripts/sim/: env.ts (settings), cli.ts, server.ts (rpc loop), watch.ts, send.ts, tapback.ts,
// react.ts (the `imsg react` CLI), rpc.ts.
//
// Version: `--imsg-version 0.9.0|0.15.6` (anywhere on the command line) or IMSG_SIM_VERSION; the flag wins;
// the default is DEFAULT_SIM_VERSION in scripts/sim/env.ts.
//
// Environment:
//   IMSG_VERSION=x.y.z        (0.9 mode) version reported by --version / root help (default 0.9.0). Below 0.3.0
//                             there is no `rpc` command. send results follow the version.
//   IMSG_SIM_DB=PATH          default for --db (so a wrapper script can point at a database)
//   IMSG_SIM_SELF=HANDLE      the simulator's own handle (default +15550009999)
//   IMSG_SIM_POLL_MS=N        watch fallback poll interval (default 5000, like the real tool)
//   IMSG_SIM_FDA=1            0.9: startup-error mode (every request -32603 with the Full Disk Access banner, exit
//                             1 at EOF; a --db path that does not exist behaves the same). 0.15: the database
//                             counts as unreadable (-32002). See also SimDb.setUnreadable (a marker file).
//   IMSG_SIM_FDA=legacy       pre-0.8.2 startup error: banner on stdout, exit 1 without reading stdin
//   IMSG_SIM_CRASH_AFTER=N    exit 1 abruptly when request N+1 arrives (no response to it)
//   IMSG_SIM_HANG_AFTER=N     request N+1 never completes: nothing more is answered, stdin EOF goes unnoticed
//   IMSG_SIM_SEND_DELAY_MS=N  each `send` takes N ms
//   IMSG_SIM_TAPBACK_DELAY_MS=N  each `tapback` takes N ms (control `tapback_delay_ms` wins)
//   IMSG_SIM_NOISE=1          a non-JSON osascript line on stdout before every response
//   IMSG_SIM_ECHO_DUP=1       after each text send also write the spurious is_from_me=0 copy (same text, own handle)
//   IMSG_SIM_STDERR=1         human chatter on stderr (the real rpc path writes none)
//   IMSG_SIM_WATCH_STALL_AFTER=N  after N message notifications every subscription goes silent
//   IMSG_SIM_TRACE=FILE       append a JSON line per emitted message notification and per send ("s"), typing/read
//                             ("t"/"r"), tapback ("tb") request and `imsg react` run ("react")
//   0.15 only:
//   IMSG_SIM_RECEIPT_WAIT_MS=N    how long a send waits for its row (default 8000, like imsg)
//   IMSG_SIM_BUSY_LIMIT=N         outstanding requests before -32000 Server busy (default 128)
//   IMSG_SIM_UNJOINED_RETRIES=N / IMSG_SIM_UNJOINED_RETRY_MS=N  retries of a chat_id-0 row before it is dropped
//   IMSG_SIM_CONTACTS_STDERR=1    the benign Contacts line on stderr at start
// Runtime controls live in the sim db (SimDb.setControl / queueFault): `bridge`, `receipt_delay_ms`,
// `bridge_stale_guid`, `clock_skew_ms` (send rows dated that far off our clock), and queued send faults (still_in_flight, may_have_completed, not_started).
// Agent actions: `tapback` takes imsg's reaction spellings and answers {ok, reaction} (or 0.15 {ok, emoji});
// `emoji_tapback`=0 removes the bridge's emoji selector (status then lists no `tapback.emoji`); queueFault("tapback",
// …) and `tapback_delay_ms` work as for send; a bridge `send` with `reply_to` writes a threaded row
// (`bridge_attachment_metadata`=0: an older helper refusing threaded/captioned files). `imsg react --chat-id N -r K
// [--json]` tapbacks the chat's newest incoming message; `react_denied`=1 (no Accessibility), `react_delay_ms`.
// Tests read tapback rows with SimDb.reactionsOn(guid); SimDb.sent() never lists them.
import { exit, writeLine } from "./sim/output.ts";
import { stripVersionFlag } from "./sim/env.ts";
import { main } from "./sim/cli.ts";

const code = await main(stripVersionFlag(process.argv.slice(2))).catch((err: unknown) => {
  writeLine(err instanceof Error ? err.message : String(err));
  return 1;
});
await exit(code);
