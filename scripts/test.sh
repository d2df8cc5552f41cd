#!/usr/bin/env bash
# Runs `bun test` and ends with one line "N passed, N failed" (CI reads that line).
# Without arguments: the whole suite against the simulator's default imsg version, then the e2e tests (and the
# simulator's own) again against every other version it speaks, so behaviour that differs by imsg version is
# tested in each mode. With arguments: just `bun test ARGS` once.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
log="$(mktemp)"; trap 'rm -f "$log"' EXIT
clean() { sed 's/\x1b\[[0-9;]*m//g' "$1"; }
total_pass=0; total_fail=0; rc=0

# --timeout: e2e tests spawn real processes; a generous per-test ceiling, each test waits on events.
run() {
  : >"$log"
  bun test --timeout=60000 "$@" 2>&1 | tee "$log"
  local r=${PIPESTATUS[0]}
  local pass fail
  pass=$(clean "$log" | grep -E '^ *[0-9]+ pass$' | tail -1 | tr -dc '0-9')
  fail=$(clean "$log" | grep -E '^ *[0-9]+ fail$' | tail -1 | tr -dc '0-9')
  pass=${pass:-0}; fail=${fail:-0}
  # A crash before the summary, or errors between tests, must not read as green.
  if [ "$r" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
  total_pass=$((total_pass + pass)); total_fail=$((total_fail + fail))
  [ "$r" -eq 0 ] || rc=$r
}

if [ "$#" -gt 0 ]; then
  run "$@"
else
  default=$(sed -n 's/^export const DEFAULT_SIM_VERSION = "\(.*\)";/\1/p' scripts/sim/version.ts)
  others=$(sed -n 's/^export const SIM_VERSIONS = \[\(.*\)\] as const;/\1/p' scripts/sim/version.ts | tr -d '" ' | tr ',' ' ')
  echo "== whole suite, simulator imsg ${default}"
  IMSG_SIM_VERSION="$default" run
  for v in $others; do
    [ "$v" = "$default" ] && continue
    echo "== e2e suite, simulator imsg ${v}"
    IMSG_SIM_VERSION="$v" run test/e2e
  done
fi
echo
echo "${total_pass} passed, ${total_fail} failed"
exit "$rc"
