#!/usr/bin/env bash
# Runs `bun test` and ends with one line "N passed, N failed" (CI reads that line).
# Without arguments: the unit tests and the e2e tests against the simulator's default imsg version and, side by
# side, the e2e tests against every other version it speaks, so behaviour that differs by imsg version is tested in each mode; the logs
# are printed one after the other. With arguments: just `bun test ARGS` once.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
clean() { sed 's/\x1b\[[0-9;]*m//g' "$1"; }
total_pass=0; total_fail=0; rc=0

# --timeout: e2e tests spawn real processes; a generous per-test ceiling, each test waits on events.
# One pass: `bun test ARGS` with its output in its own log; its counts are read from that log.
pass() {
  local out="$1"; shift
  bun test --timeout=60000 "$@" >"$out" 2>&1
  echo $? >"$out.rc"
}

tally() {
  local out="$1" r pass fail
  r=$(cat "$out.rc")
  pass=$(clean "$out" | grep -E '^ *[0-9]+ pass$' | tail -1 | tr -dc '0-9')
  fail=$(clean "$out" | grep -E '^ *[0-9]+ fail$' | tail -1 | tr -dc '0-9')
  pass=${pass:-0}; fail=${fail:-0}
  # A crash before the summary, or errors between tests, must not read as green.
  if [ "$r" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
  total_pass=$((total_pass + pass)); total_fail=$((total_fail + fail))
  [ "$r" -eq 0 ] || rc=$r
}

dir="$(mktemp -d)"; trap 'rm -rf "$dir"' EXIT
if [ "$#" -gt 0 ]; then
  pass "$dir/0.log" "$@"
  cat "$dir/0.log"; tally "$dir/0.log"
else
  default=$(sed -n 's/^export const DEFAULT_SIM_VERSION = "\(.*\)";/\1/p' scripts/sim/version.ts)
  others=$(sed -n 's/^export const SIM_VERSIONS = \[\(.*\)\] as const;/\1/p' scripts/sim/version.ts | tr -d '" ' | tr ',' ' ')
  # Two jobs run side by side, each an e2e pass for one imsg version followed by half of the unit tests (every
  # other file), so both finish at about the same time: most of an e2e test's time is spent waiting on child
  # processes, and one sequential run would leave the 2-core machine half idle.
  units=(./test/*.test.ts)
  half() { local i; for i in "${!units[@]}"; do [ $((i % 2)) -eq "$1" ] && echo "${units[$i]}"; done; }
  mapfile -t unit0 < <(half 0)
  mapfile -t unit1 < <(half 1)
  { IMSG_SIM_VERSION="$default" pass "$dir/$default.log" test/e2e; IMSG_SIM_VERSION="$default" pass "$dir/unit0.log" "${unit0[@]}"; } &
  {
    for v in $others; do
      [ "$v" = "$default" ] && continue
      IMSG_SIM_VERSION="$v" pass "$dir/$v.log" test/e2e
    done
    IMSG_SIM_VERSION="$default" pass "$dir/unit1.log" "${unit1[@]}"
  } &
  wait
  echo "== unit tests, simulator imsg ${default}"
  cat "$dir/unit0.log" "$dir/unit1.log"; tally "$dir/unit0.log"; tally "$dir/unit1.log"
  echo "== e2e suite, simulator imsg ${default}"
  cat "$dir/$default.log"; tally "$dir/$default.log"
  for v in $others; do
    [ "$v" = "$default" ] && continue
    echo "== e2e suite, simulator imsg ${v}"
    cat "$dir/$v.log"; tally "$dir/$v.log"
  done
fi
echo
echo "${total_pass} passed, ${total_fail} failed"
exit "$rc"
