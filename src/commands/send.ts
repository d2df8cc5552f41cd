import { defineCommand } from "citty";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { CliError, UsageError } from "../errors.ts";
import { accountArg, globalArgs, jsonArg, loadAccount, multi, printJson, setupGlobals, str } from "./_shared.ts";

export default defineCommand({
  meta: { name: "send", description: "Send a message or file to a chat or handle (chat_id:, chat_guid:, chat_identifier:, imessage:, sms:, phone, email)" },
  args: {
    ...globalArgs,
    to: { type: "string", description: "Target (default channels.imessage.defaultTo)", valueHint: "target" },
    text: { type: "string", description: "Message text", valueHint: "text" },
    "text-file": { type: "string", description: "Read the text from a file, or - for stdin", valueHint: "path|-" },
    file: { type: "string", description: "Attach a file (repeatable)", valueHint: "path" },
    service: { type: "string", description: "imessage | sms | auto (default channels.imessage.service)", valueHint: "service" },
    ...accountArg,
    ...jsonArg,
  },
  async run({ args, rawArgs }) {
    const g = await setupGlobals(args);
    const textArg = str(args.text, "--text");
    const textFile = str(args["text-file"], "--text-file");
    if (textArg !== undefined && textFile !== undefined) throw new UsageError("use --text or --text-file, not both");
    const service = str(args.service, "--service");
    if (service !== undefined && !["imessage", "sms", "auto"].includes(service)) {
      throw new UsageError(`--service must be imessage, sms or auto, got "${service}"`);
    }
    // Relative paths are the caller's (a cron line, a shell); imsg needs absolute ones.
    const files = multi(rawArgs, "file").map((f) => {
      if (!f) throw new UsageError("--file needs a value");
      return resolve(f);
    });
    let text = textArg ?? "";
    if (textFile !== undefined) {
      try {
        text = readFileSync(textFile === "-" ? 0 : textFile, "utf8");
      } catch (e) {
        throw new UsageError(`cannot read --text-file ${textFile}: ${(e as Error).message}`);
      }
    }
    const { account } = await loadAccount(g, str(args.account, "--account"));
    const to = str(args.to, "--to") ?? account.defaultTo;
    if (!to) throw new UsageError("missing --to", "Give a target (e.g. --to chat_id:42) or set channels.imessage.defaultTo.");
    if (!text.trim() && !files.length) throw new UsageError("refusing to send an empty message", "Give --text, --text-file or --file.");
    const { formatTarget, parseTarget } = await import("../targets.ts");
    const target = parseTarget(to, (service as "imessage" | "sms" | "auto" | undefined) ?? account.service);
    const { Store } = await import("../store.ts");
    const { sendOnce } = await import("../deliver.ts");
    const { stagerFor } = await import("../stage.ts");
    const store = Store.open(g.stateDir);
    try {
      // imsg on another host reads the files from a staged copy there; refuse up front what cannot be staged.
      const stager = files.length ? stagerFor(account, store) : undefined;
      const unstageable = stager ? files.flatMap((f) => stager.check(f) ?? []) : [];
      if (unstageable.length) throw new UsageError(`${unstageable[0]}; nothing was sent`);
      const { result, parts, rejected } = await sendOnce(
        store,
        { ...account, service: (service as typeof account.service) ?? account.service },
        target,
        text,
        files,
        stager,
      );
      if (rejected.length) {
        throw new UsageError(
          `cannot attach ${rejected.map((r) => `${r.path} (${r.reason})`).join(", ")}; nothing was sent`,
          `Files must exist and be at most mediaMaxMb (${account.mediaMaxMb} MB).`,
        );
      }
      // id/guid are what imsg returned (file sends carry none): a script can look the rows up later.
      const sent = result.sent.map((r) => ({ id: r.messageId ?? null, guid: r.messageGuid ?? null, text: r.text, file: r.file ?? null }));
      if (args.json) {
        printJson({
          ok: !result.error,
          accountId: account.accountId,
          to,
          target: formatTarget(target),
          sent,
          ...(result.error ? { error: result.error } : {}),
        });
      } else {for (const s of sent) {
          process.stdout.write(`sent ${s.file ? `file ${s.file}` : `${s.text.length} chars`}${s.id !== null ? ` (id ${s.id})` : ""}\n`);
        }}
      if (result.error) {
        throw new CliError(
          `send failed: ${result.error}`,
          1,
          sent.length ? `${sent.length} of ${parts.length} parts went out before the failure; later parts were not sent.` : undefined,
        );
      }
    } finally {
      store.close();
    }
  },
});
