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
    const { describeImsgInfo, isInfo, probeAccount, UNDISCOVERABLE } = await import("../probe.ts");
    type Report = Awaited<ReturnType<typeof probeAccount>>;
    let reports: Report[];
    let code: number = EXIT.ok;
    try {
      const config = loadConfig(g.configPath);
      const ids = accountId ? [accountId] : config.accountIds.filter((id) => resolveAccount(config, id).enabled);
      if (ids.length === 0) {
        // Nothing to check is not a pass: a green probe must mean a gateway would serve something.
        reports = [
          {
            accountId: "default",
            ok: false,
            checks: [
              {
                name: "config valid",
                ok: false,
                detail: `no enabled account in ${config.path} (accounts: ${config.accountIds.join(", ")})`,
                hint: "Set channels.imessage.enabled (or channels.imessage.accounts.<id>.enabled) to true, or probe one with --account <id>.",
              },
            ],
          },
        ];
      } else {
        const requireGateway = args["require-gateway"] === true;
        // Side by side: the probe's time limit holds for the whole run, not per account.
        reports = await Promise.all(
          ids.map((id) => {
            const account = resolveAccount(config, id);
            return probeAccount(config, account, { stateDir: g.stateDir, timeoutMs: timeoutArg ?? account.probeTimeoutMs, requireGateway });
          }),
        );
      }
      if (reports.some((r) => !r.ok)) code = EXIT.failed;
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      reports = [{
        accountId: accountId ?? "default",
        ok: false,
        checks: [{ name: "config valid", ok: false, detail: e.message, hint: e.hint ?? "Fix the config file (see README: Configuration)." }],
      }];
      code = EXIT.usage;
    }
    const ok = code === EXIT.ok;
    if (args.json) printJson({ ok, accounts: reports });
    else {
      const lines: string[] = [];
      for (const r of reports) {
        lines.push(`account ${r.accountId}: ${r.ok ? "ok" : "FAILED"}`);
        for (const c of r.checks) {
          const info = isInfo(c);
          lines.push(`  ${info ? "info" : c.warning ? "warn" : c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
          if (c.hint && (info || c.warning || !c.ok)) lines.push(`       ${info ? "note" : "fix"}: ${c.hint}`);
        }
        const answered = r.checks.some((c) => c.name === "RPC handshake" && c.ok);
        for (const l of r.imsg ? describeImsgInfo(r.imsg) : answered ? [UNDISCOVERABLE] : []) lines.push(`  info ${l}`);
      }
      process.stdout.write(lines.join("\n") + "\n");
    }
    process.exitCode = code;
  },
});
