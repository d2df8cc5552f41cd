import { defineCommand } from "citty";
import { CliError } from "../errors.ts";
import { globalArgs, setupGlobals } from "./_shared.ts";

const stub = (name: string) =>
  defineCommand({
    meta: { name, description: "(not implemented yet)" },
    args: { ...globalArgs },
    async run({ args }) {
      await setupGlobals(args);
      throw new CliError(`pairing ${name} is not implemented yet`);
    },
  });

export default defineCommand({
  meta: { name: "pairing", description: "List, approve and revoke DM pairing requests" },
  subCommands: { list: stub("list"), approve: stub("approve"), revoke: stub("revoke"), allowed: stub("allowed") },
});
