import { defineCommand } from "citty";
import { ConfigError, EXIT } from "../errors.ts";
import { accountArg, globalArgs, int, jsonArg, printJson, setupGlobals, str } from "./_shared.ts";

export default defineCommand({
  meta: { name: "probe", description: "Check everything a working gateway needs; says how to fix each failure" },
  args: {
    ...globalArgs,
    ...accountArg,
    ...jsonArg,
    "timeout-ms": { type: "string", description: "Overall time limit for the probe (default probeTimeoutMs, 10000)", valueHint: "n" },
    "require-gateway": { type: "boolean", description: "Fail unless a live gateway holds the lock and its watch is fresh" },
  },
  async run({ args }) {
    const g = await setupGlobals(args);
    const timeoutArg = int(args["timeout-ms"], "--timeout-ms");
    const accountId = str(args.account, "--account");
    const { loadConfig, resolveAccount } = await import("../config.ts");
    const { probeAccount } = await import("../probe.ts");
    type Report = Awaited<ReturnType<typeof probeAccount>>;
    let reports: Report[];
    let code: number = EXIT.ok;
    try {
      const config = loadConfig(g.configPath);
      const ids = accountId ? [accountId] : config.accountIds.filter((id) => resolveAccount(config, id).enabled);
      reports = [];
      for (const id of ids) {
        const account = resolveAccount(config, id);
        reports.push(await probeAccount(config, account, { stateDir: g.stateDir, timeoutMs: timeoutArg ?? account.probeTimeoutMs, requireGateway: args["require-gateway"] === true }));
      }
      if (reports.some((r) => !r.ok)) code = EXIT.failed;
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      reports = [{ accountId: accountId ?? "default", ok: false, checks: [{ name: "config valid", ok: false, detail: e.message, hint: e.hint ?? "Fix the config file (see README: Configuration)." }] }];
      code = EXIT.usage;
    }
    const ok = code === EXIT.ok;
    if (args.json) printJson({ ok, accounts: reports });
    else {
      const lines: string[] = [];
      for (const r of reports) {
        lines.push(`account ${r.accountId}: ${r.ok ? "ok" : "FAILED"}`);
        for (const c of r.checks) {
          lines.push(`  ${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
          if (!c.ok && c.hint) lines.push(`       fix: ${c.hint}`);
        }
      }
      process.stdout.write(lines.join("\n") + "\n");
    }
    process.exitCode = code;
  },
});
