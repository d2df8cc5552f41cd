import { defineCommand } from "citty";
import { CliError } from "../errors.ts";
import { globalArgs, setupGlobals } from "./_shared.ts";

export default defineCommand({
  meta: { name: "send", description: "(not implemented yet)" },
  args: { ...globalArgs },
  async run({ args }) {
    await setupGlobals(args);
    throw new CliError("send is not implemented yet");
  },
});
