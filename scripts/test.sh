#!/usr/bin/env bash
# Runs `bun test` and ends with one line "N passed, N failed" (CI reads that line).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
log="$(mktemp)"; trap 'rm -f "$log"' EXIT
# --timeout: e2e tests spawn real processes; a generous per-test ceiling, each test waits on events.
bun test --timeout=60000 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
clean() { sed 's/\x1b\[[0-9;]*m//g' "$log"; }
pass=$(clean | grep -E '^ *[0-9]+ pass$' | tail -1 | tr -dc '0-9')
fail=$(clean | grep -E '^ *[0-9]+ fail$' | tail -1 | tr -dc '0-9')
err=$(clean | grep -E '^ *[0-9]+ errors?$' | tail -1 | tr -dc '0-9')
pass=${pass:-0}; fail=${fail:-0}
# A crash before the summary, or errors between tests, must not read as green.
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
echo
echo "${pass} passed, ${fail} failed"
exit "$rc"
