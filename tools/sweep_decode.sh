#!/usr/bin/env bash
# Sweep of the bandwidth decode kernels' knobs (SPARQ_TUNE_DECODE, attention_kernels.h) on a GPU:
# one sparq-bench run of the decode_paged cases per setting (every case is also checked bit for
# bit against the fallback), with the ptxas register / spill lines of the program it built.
#
#   [SWEEP_TESTS=<path-to-sparq_tests>] tools/sweep_decode.sh <path-to-sparq-bench> [setting ...]
#
# Settings default to the list below (kernel=0: decode_stream.cl, the baseline; kernel=1:
# decode_bw.cl); SWEEP_PRESET=flat picks the decode_flat.cl list instead (kernel=2, against the
# H100 default kernel=1,async=1,cvt=2; regs=128 keeps 4 work-groups of 128 on an SM, so the 512
# of B8 / 32K run in one wave). Each setting's full output goes to $OUT/decode_<n>.txt and .json when $OUT is
# set. SWEEP_FILTER overrides the case filter (default: the five page16 nhd cases at 32K / 128K:
# int8 B1 / B8 / B32 and f32 B8; the host_overhead cases are left out), SWEEP_TIMEOUT the
# seconds per setting (default 50: the 10 default settings stay under a 10-minute device call).
set -uo pipefail
bench=${1:?usage: sweep_decode.sh <path-to-sparq-bench> [setting ...]}
shift
out=${OUT:-$(mktemp -d)}
filter=${SWEEP_FILTER:-'^attention/decode_paged B(1|8|32) Hq32/Hkv8 Lq1 D128 page16 nhd (i8|f32) \(ctx (32768|131072)'}
limit=${SWEEP_TIMEOUT:-50}
# A fresh program cache, so every program is built here and its ptxas lines are printed.
export SPARQ_CACHE_DIR=$(mktemp -d)
if [ $# -gt 0 ]; then
  settings=("$@")
elif [ "${SWEEP_PRESET:-}" = flat ]; then
  settings=(
    "kernel=1,async=1,cvt=2"
    "kernel=2,async=1,cvt=2"
    "kernel=2,async=1,cvt=2,kpi=2"
    "kernel=2,async=1,cvt=2,kpi=4"
    "kernel=2,async=1,cvt=2,kloc=1"
    "kernel=2,async=1,cvt=2,kloc=1,kpi=2"
    "kernel=2,async=1,cvt=2,span=128,kpi=2"
    "kernel=2,async=1,cvt=2,threads=128,cols=1,regs=128"
    "kernel=2,async=1,cvt=2,threads=128,cols=1,kpi=2,regs=128"
    "kernel=2,async=1,cvt=2,threads=128,cols=1,kloc=1,regs=128"
  )
else
  settings=(
    "kernel=0"
    "kernel=0,cvt=1"
    "kernel=1"
    "kernel=1,cvt=1"
    "kernel=1,threads=128"
    "kernel=1,cvt=1,threads=256,cols=1"
    "kernel=1,cvt=2,async=1"
    "kernel=1,cvt=1,async=1"
    "kernel=1,cvt=1,async=1,threads=128"
    "kernel=1,cvt=1,async=1,threads=256,cols=1"
  )
fi
# SWEEP_TESTS=<path-to-sparq_tests>: first the DecodeBw / DecodeFlat / DecodeStream exactness
# tests on the GPU (every knob layout they name, cp.async included, against the fallback on small
# shapes).
if [ -n "${SWEEP_TESTS:-}" ]; then
  SPARQ_TEST_DEVICE=gpu timeout 120 "$SWEEP_TESTS" \
    --gtest_filter='DecodeBw*:DecodeFlat*:DecodeStream*' > "$out/decode_tests.txt" 2>&1
  echo "== tests rc=$?"
  grep -E '^\[  (PASSED|FAILED) |FAILED  \]|tests ran' "$out/decode_tests.txt" | head -8
fi
i=0
for t in "${settings[@]}"; do
  i=$((i + 1))
  SPARQ_TUNE_DECODE="$t,verbose=1" SPARQ_BUILD_LOG=1 timeout "$limit" "$bench" --device gpu \
    --size large --repeat 10 --warmup 2 --filter "$filter" --json "$out/decode_$i.json" \
    > "$out/decode_$i.txt" 2>&1
  echo "== $i: SPARQ_TUNE_DECODE=$t rc=$?"
  # ptxas: one line per built program (registers, spills, local-memory bytes)
  grep -iE 'registers|spill|smem' "$out/decode_$i.txt" | sort | uniq -c | head -6
  grep -E '^attention/decode_paged|mismatch|differ|FAIL|rror' "$out/decode_$i.txt" | head -14
done
