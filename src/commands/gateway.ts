import { defineCommand } from "citty";
import { CliError } from "../errors.ts";
import { globalArgs, setupGlobals } from "./_shared.ts";

export default defineCommand({
  meta: { name: "gateway", description: "(not implemented yet)" },
  args: { ...globalArgs },
  async run({ args }) {
    await setupGlobals(args);
    throw new CliError("gateway is not implemented yet");
  },
});
