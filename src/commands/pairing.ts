import { defineCommand } from "citty";
import { CliError, UsageError } from "../errors.ts";
import { accountArg, globalArgs, jsonArg, printJson, setupGlobals, splitChannel, str, table } from "./_shared.ts";

const channelArg = { channel: { type: "positional", description: "Channel (only imessage; may be omitted)", required: false } } as const;

async function openStore(stateDir: string) {
  const { Store } = await import("../store.ts");
  return Store.open(stateDir);
}

/**
 * The --account value as the store keys it (trimmed, lower-case, as the config resolves ids), validated against
 * the config when a config file exists (approvals for unknown accounts would never apply).
 */
async function accountIdOf(configPath: string, raw: string | undefined): Promise<string | undefined> {
  if (raw === undefined) return undefined;
  const { existsSync } = await import("node:fs");
  if (!existsSync(configPath)) return raw.trim().toLowerCase();
  const { loadConfig, resolveAccount } = await import("../config.ts");
  return resolveAccount(loadConfig(configPath), raw).accountId;
}

/** The one positional after the optional channel word; the channel word alone is not a value (`approve imessage`). */
function onlyValue(positionals: string[]): string | undefined {
  const [v] = splitChannel(positionals, 1);
  return v === undefined || v.toLowerCase() === "imessage" ? undefined : v;
}

/** After an approval: a second person in the one `main` DM session sees the others' history, so say so and how to fix it. */
async function warnIfShared(configPath: string, accountId: string, approved: string[]): Promise<void> {
  const { existsSync } = await import("node:fs");
  const { loadConfig, resolveAccount } = await import("../config.ts");
  const { dmPeople, SHARED_SESSION_FIX, SHARED_SESSION_WARNING } = await import("../policy.ts");
  // Without a config file the defaults apply, and the default dmScope is "main".
  const cfg = existsSync(configPath) ? loadConfig(configPath) : undefined;
  if (cfg && cfg.session.dmScope !== "main") return;
  const people = dmPeople(cfg ? resolveAccount(cfg, accountId) : { allowFrom: [] }, approved);
  if (people.length < 2) return;
  process.stdout.write(`Warning: ${SHARED_SESSION_WARNING}\n  ${people.length} people now share it. ${SHARED_SESSION_FIX}\n`);
}

const list = defineCommand({
  meta: { name: "list", description: "Pending pairing requests" },
  args: { ...globalArgs, ...channelArg, ...accountArg, ...jsonArg },
  async run({ args }) {
    const g = await setupGlobals(args);
    splitChannel(args._, 0);
    const accountId = await accountIdOf(g.configPath, str(args.account, "--account"));
    const { listRequests } = await import("../pairing.ts");
    // Read-only: a state dir with no database yet has no requests, and is not created.
    const { Store } = await import("../store.ts");
    const store = Store.openIfExists(g.stateDir);
    try {
      const requests = store ? listRequests(store, accountId) : [];
      if (args.json) return printJson({ channel: "imessage", requests });
      if (!requests.length) return void process.stdout.write("No pending imessage pairing requests.\n");
      process.stdout.write(`Pairing requests (${requests.length})\n`);
      process.stdout.write(table(["CODE", "SENDER", "ACCOUNT", "REQUESTED"], requests.map((r) => [r.code, r.id, r.accountId, r.createdAt])) + "\n");
    } finally {
      store?.close();
    }
  },
});

const approve = defineCommand({
  meta: { name: "approve", description: "Approve a pending request by its code (any letter case)" },
  args: {
    ...globalArgs,
    ...channelArg,
    code: { type: "positional", description: "The pairing code", required: false },
    ...accountArg,
    notify: { type: "boolean", description: "Tell the sender through iMessage that they were approved" },
  },
  async run({ args }) {
    const g = await setupGlobals(args);
    const code = onlyValue(args._);
    if (!code) throw new UsageError("missing pairing code", "Usage: openclaw-imsg pairing approve [imessage] <CODE>");
    const accountId = await accountIdOf(g.configPath, str(args.account, "--account"));
    const { approveCode, listApproved, listRequests, normalizeCode, APPROVED_NOTICE } = await import("../pairing.ts");
    const store = await openStore(g.stateDir);
    let approved: { accountId: string; senderId: string } | undefined;
    try {
      approved = approveCode(store, code, accountId);
      if (!approved) {
        const other = listRequests(store).find((r) => r.code === normalizeCode(code));
        if (other) {
          throw new CliError(
            `Pairing code ${other.code} belongs to account ${other.accountId}, not ${accountId}`,
            1,
            `Run: openclaw-imsg pairing approve imessage ${other.code} --account ${other.accountId}`,
          );
        }
        throw new CliError(`No pending pairing request found for code: ${code}`, 1, "Codes expire after 1 hour; list them with `openclaw-imsg pairing list`.");
      }
      process.stdout.write(`Approved imessage sender ${approved.senderId} (account ${approved.accountId}).\n`);
      await warnIfShared(g.configPath, approved.accountId, listApproved(store, approved.accountId).map((r) => r.id));
      if (args.notify) {
        const { sendOnce } = await import("../deliver.ts");
        const { parseTarget } = await import("../targets.ts");
        const { loadConfig, resolveAccount } = await import("../config.ts");
        try {
          const account = resolveAccount(loadConfig(g.configPath), approved.accountId);
          const { result } = await sendOnce(store, account, parseTarget(approved.senderId), APPROVED_NOTICE);
          if (result.error) throw new Error(result.error);
          process.stdout.write("Notified the sender.\n");
        } catch (e) {
          throw new CliError(`Approved, but failed to notify the sender: ${(e as Error).message}`, 1);
        }
      }
    } finally {
      store.close();
    }
  },
});

const revoke = defineCommand({
  meta: { name: "revoke", description: "Remove a sender approved through pairing" },
  args: { ...globalArgs, ...channelArg, handle: { type: "positional", description: "The sender handle", required: false }, ...accountArg },
  async run({ args }) {
    const g = await setupGlobals(args);
    const handle = onlyValue(args._);
    if (!handle) throw new UsageError("missing sender handle", "Usage: openclaw-imsg pairing revoke [imessage] <handle>");
    const accountId = await accountIdOf(g.configPath, str(args.account, "--account"));
    const { listApproved, listRequests, revokeSender } = await import("../pairing.ts");
    const { normalizeHandle } = await import("../targets.ts");
    const id = normalizeHandle(handle);
    const store = await openStore(g.stateDir);
    try {
      // Without --account, like `list` and `allowed`: every account that approved (or is pairing with) the sender.
      const accounts = accountId !== undefined
        ? [accountId]
        : [...new Set([...listApproved(store), ...listRequests(store)].filter((r) => r.id === id).map((r) => r.accountId))];
      const revoked = accounts.filter((a) => revokeSender(store, a, id));
      if (!revoked.length) {
        throw new CliError(
          `${id} is not an approved sender${accountId !== undefined ? ` of account ${accountId}` : ""}`,
          1,
          "List approved senders with `openclaw-imsg pairing allowed`.",
        );
      }
      process.stdout.write(`Revoked imessage sender ${id} (account${revoked.length > 1 ? "s" : ""} ${revoked.join(", ")}).\n`);
    } finally {
      store.close();
    }
  },
});

const allowed = defineCommand({
  meta: { name: "allowed", description: "Senders approved through pairing" },
  args: { ...globalArgs, ...channelArg, ...accountArg, ...jsonArg },
  async run({ args }) {
    const g = await setupGlobals(args);
    splitChannel(args._, 0);
    const accountId = await accountIdOf(g.configPath, str(args.account, "--account"));
    const { listApproved } = await import("../pairing.ts");
    const store = await openStore(g.stateDir);
    try {
      const rows = listApproved(store, accountId);
      if (args.json) return printJson({ channel: "imessage", allowed: rows });
      if (!rows.length) return void process.stdout.write("No senders approved through pairing.\n");
      process.stdout.write(table(["SENDER", "ACCOUNT", "APPROVED"], rows.map((r) => [r.id, r.accountId, r.approvedAt])) + "\n");
    } finally {
      store.close();
    }
  },
});

export default defineCommand({
  meta: { name: "pairing", description: "List, approve and revoke DM pairing requests" },
  subCommands: { list, approve, revoke, allowed },
});
