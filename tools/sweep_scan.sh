#!/usr/bin/env bash
# Sweep of the Mamba selective scan's schedule knobs (SPARQ_TUNE_SCAN, host/src/mamba/
# mamba_kernels.h; cost model per knob in docs/mamba.md "Scan schedules") on a GPU: one
# sparq-bench run of the large mamba/scan cases per setting (every case is also checked bit for
# bit against the fallback on a subset of channels), with the ptxas register / spill lines of the
# programs it built, then one table of median ms per case and setting.
#
#   [SWEEP_TESTS=<path-to-sparq_tests>] tools/sweep_scan.sh <path-to-sparq-bench> [setting ...]
#
# Settings default to the list below ("" is the default schedule). Each setting's full output goes
# to $OUT/scan_<n>.txt and .json when $OUT is set. SWEEP_FILTER overrides the case filter
# (default: every large '^mamba/scan' case but the decode step and the int8 scan_q twin),
# SWEEP_TIMEOUT the seconds per setting (default 60;
# about 12-15 s expected: input generation and the fallback check dominate), SWEEP_REPEAT the timed calls (default 5);
# SWEEP_DEVICE / SWEEP_SIZE (default gpu / large) let the script itself be tried on PoCL.
# SWEEP_TESTS=<path-to-sparq_tests>: first the scan exactness tests on the GPU once per setting
# (the settings' programs against the fallback on small shapes, varlen and quantized included).
set -uo pipefail
bench=${1:?usage: sweep_scan.sh <path-to-sparq-bench> [setting ...]}
shift
out=${OUT:-$(mktemp -d)}
filter=${SWEEP_FILTER:-'^mamba/scan(_q)? B[0-9]+ D[0-9]+ N[0-9]+ L[0-9]{3,} (G|u,delta,z int4)'}
limit=${SWEEP_TIMEOUT:-60}
repeat=${SWEEP_REPEAT:-5}
device=${SWEEP_DEVICE:-gpu}
size=${SWEEP_SIZE:-large}
# A fresh program cache, so every program is built here and its ptxas lines are printed.
SPARQ_CACHE_DIR=$(mktemp -d)
export SPARQ_CACHE_DIR
if [ $# -gt 0 ]; then
  settings=("$@")
else
  settings=(
    ""
    "exp=1"
    "exp=1,per=1"
    "exp=1,per=1,unroll=1,vec=1"
    "exp=1,per=1,unroll=1,vec=1,regs=64"
    "exp=1,per=1,unroll=2,vec=1"
    "exp=1,per=1,unroll=1,vec=1,tile=32,dbmax=8"
    "exp=1,per=1,unroll=1,vec=1,wg=64,dbmax=8"
    "exp=1,per=1,unroll=16,regs=64"
    "exp=1,per=1,unroll=4,vec=1,tile=32,dbmax=8"
  )
fi
if [ -n "${SWEEP_TESTS:-}" ]; then
  i=0
  for t in "${settings[@]}"; do
    i=$((i + 1))
    SPARQ_TUNE_SCAN="$t" SPARQ_TEST_DEVICE=$device timeout 120 "$SWEEP_TESTS" \
      --gtest_filter='MambaScan.*:MambaScanQ.Equals*:MambaScanInvariants.*' \
      > "$out/scan_tests_$i.txt" 2>&1
    echo "== tests $i: SPARQ_TUNE_SCAN=$t rc=$? $(grep -E '^\[  (PASSED|FAILED) ' "$out/scan_tests_$i.txt" | tr '\n' ' ')"
  done
fi
i=0
for t in "${settings[@]}"; do
  i=$((i + 1))
  SPARQ_TUNE_SCAN="${t:+$t,}verbose=1" SPARQ_BUILD_LOG=1 timeout "$limit" "$bench" --device "$device" \
    --size "$size" --repeat "$repeat" --warmup 1 --filter "$filter" --json "$out/scan_$i.json" \
    > "$out/scan_$i.txt" 2>&1
  echo "== $i: SPARQ_TUNE_SCAN=$t rc=$?"
  # ptxas: one line per built program (registers, spills, local-memory bytes)
  grep -iE 'registers|spill' "$out/scan_$i.txt" | sort | uniq -c | head -4
  grep -E 'mismatch|differ|[1-9][0-9]* failed|rror' "$out/scan_$i.txt" | head -4
done
# Table: median ms per case (rows) and setting (columns); '!' marks a case not bit-exact.
echo
echo "median ms (settings 1..$i as numbered above; ! = not exact or missing)"
for j in $(seq 1 "$i"); do
  awk -v j="$j" '/^mamba\/scan/ && NF > 8 {
      name = $1; for (k = 2; k <= NF - 7; ++k) name = name " " $k;
      ok = ($NF ~ /^yes/) ? "" : "!";
      print j "\t" name "\t" $(NF - 6) ok }' "$out/scan_$j.txt"
done | awk -F'\t' -v n="$i" '
  { if (!($2 in row)) { order[++rows] = $2; row[$2] = 1 } ms[$2, $1] = $3 }
  END {
    printf "%-52s", "case"; for (j = 1; j <= n; ++j) printf " %8d", j; printf "\n";
    for (r = 1; r <= rows; ++r) {
      c = order[r]; printf "%-52s", substr(c, 1, 52);
      for (j = 1; j <= n; ++j) printf " %8s", ((c, j) in ms) ? ms[c, j] : "!";
      printf "\n" } }'
echo "outputs: $out"
