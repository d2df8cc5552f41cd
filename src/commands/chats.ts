import { defineCommand } from "citty";
import { CliError } from "../errors.ts";
import { accountArg, globalArgs, int, jsonArg, loadAccount, printJson, setupGlobals, str, table } from "./_shared.ts";

export default defineCommand({
  meta: { name: "chats", description: "List chats through imsg (chat_id, name, identifier, group flag, participants, last activity)" },
  args: {
    ...globalArgs,
    ...accountArg,
    ...jsonArg,
    limit: { type: "string", description: "How many chats, newest first (default 20)", valueHint: "n" },
  },
  async run({ args }) {
    const g = await setupGlobals(args);
    const limit = int(args.limit, "--limit") ?? 20;
    const { account } = await loadAccount(g, str(args.account, "--account"));
    const { RpcClient, ImsgPermissionError } = await import("../rpc.ts");
    const { chatsList, parseChat } = await import("../imsg.ts");
    const { getLog } = await import("../log.ts");
    const client = RpcClient.start({ cliPath: account.cliPath, dbPath: account.dbPath, timeoutMs: account.probeTimeoutMs, tag: "chats" });
    let chats: unknown[];
    try {
      chats = await chatsList(client, limit);
    } catch (e) {
      const hint = e instanceof ImsgPermissionError
        ? "grant Full Disk Access to the process that runs imsg (see `openclaw-imsg probe`)"
        : "run `openclaw-imsg probe` to see what is wrong";
      throw new CliError(`cannot list chats: ${(e as Error).message}`, 1, hint);
    } finally {
      await client.stop();
    }
    if (args.json) {
      printJson({ accountId: account.accountId, chats });
      return;
    }
    const rows: string[][] = [];
    for (const raw of chats) {
      const p = parseChat(raw);
      if ("error" in p) {
        // Shown in --json as is; the table cannot show it, so say so instead of dropping it silently.
        getLog("chats").warn(`skipping a chat imsg returned in an unexpected shape (${p.error})`);
        continue;
      }
      const c = p.chat;
      rows.push([
        String(c.id),
        c.name || c.contactName || "",
        c.identifier,
        c.guid,
        c.service,
        c.isGroup ? "yes" : "no",
        c.participants.join(", "),
        c.lastMessageAt,
      ]);
    }
    if (!rows.length) {
      process.stdout.write(chats.length ? "No chats imsg returned could be shown (see the warnings above).\n" : "No chats with messages yet.\n");
      return;
    }
    process.stdout.write(table(["CHAT_ID", "NAME", "IDENTIFIER", "GUID", "SERVICE", "GROUP", "PARTICIPANTS", "LAST ACTIVITY"], rows) + "\n");
  },
});
