#!/usr/bin/env bash
# Full GPU report (issue 9): every large bench case, the whole test suite on the GPU, the PyTorch
# anchors in the same call, and the goals table of issues 3-8 (tools/goals_report.py,
# bench/goals.json). Two parts, each made to fit one device call of about 560 s:
#
#   bash tools/gpu_report.sh part1   # sparq-info --selftest, sparq_tests in 6 shards, anchors:
#                                    # attention fp32 + bf16, decode; cases: dense/int8/nvfp4
#                                    # prefill, decode, paged prefill, merge, host overhead
#   bash tools/gpu_report.sh part2   # anchors: attention bf16 at 128K, diffusion; cases:
#                                    # sparse (Quest included), diffusion, mamba, and every case
#                                    # no other group holds
#   bash tools/gpu_report.sh list    # the groups, their case counts and time estimates, and a
#                                    # check that every case is in exactly one group (no device)
#
# The script may also run as .gpu/gpu_report.sh: either way the repository root is the parent of
# its folder. Everything lands in $OUT/<part>/ and is packed as $OUT/report_<part>.tgz.
# Every step checks the time left (BUDGET_S, default 555 s from the script's start) and runs under
# `timeout`; a bench group is skipped (and listed as such) when its estimate does not fit.
#
# Environment:
#   SPARQ_REPORT_DEVICE  gpu (default) or e.g. pocl for a local dry run; anything but gpu skips
#                        nvidia-smi and the PyTorch anchors, with the reason printed
#   SPARQ_REPORT_SIZE    bench case size (default large; small for a dry run)
#   SPARQ_REPORT_BIN     folder holding sparq-bench, sparq_tests, sparq-info (also looked up in
#                        its bench/, tests/, tools/); default .gpu/bin, else build/
#   SPARQ_REPORT_CASES   regex: only cases that also match it (dry runs)
#   SPARQ_REPORT_GTEST   gtest filter for the test suite (default *; '-' skips the tests)
#   SPARQ_REPORT_SHARDS  parallel test shards (default 6)
#   SPARQ_REPORT_GROUPS  regex on group names: run only those groups
#   SPARQ_REPORT_PREV    folder of an earlier part's unpacked results: its JSON joins the goals
#                        table and the charts of this part
#   REPEAT / WARMUP      bench timed / untimed calls (default 3 / 1); BUDGET_S, RESERVE_S (25 s
#                        kept for the tables, charts and packing), TEST_S (test shard limit, 160)
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
part=${1:-}
DEV=${SPARQ_REPORT_DEVICE:-gpu}
SIZE=${SPARQ_REPORT_SIZE:-large}
SUBSET=${SPARQ_REPORT_CASES:-}
REPEAT=${REPEAT:-3}
WARMUP=${WARMUP:-1}
BUDGET=${BUDGET_S:-555}
RESERVE=${RESERVE_S:-25}  # kept for the goals table, the charts and packing
T0=$(date +%s)

if [ -n "${SPARQ_REPORT_BIN:-}" ]; then bin=$SPARQ_REPORT_BIN
elif [ -x "$root/.gpu/bin/sparq-bench" ]; then bin=$root/.gpu/bin
else bin=$root/build; fi
find_exe() { for d in "$bin" "$bin/bench" "$bin/tests" "$bin/tools"; do
  [ -x "$d/$1" ] && { echo "$d/$1"; return; }; done; echo ""; }
B=$(find_exe sparq-bench)
TESTS=$(find_exe sparq_tests)
INFO=$(find_exe sparq-info)
[ -n "$B" ] || { echo "gpu_report: no sparq-bench under $bin (set SPARQ_REPORT_BIN)" >&2; exit 2; }
# Anchor scripts: staged into .gpu/ by tools/gpu_bench.sh stage, or the shared copies.
anchor_py() { for f in "$root/.gpu/$1" "$root/bench/anchors/$1" "$root/../shared/anchors/$1"; do
  [ -f "$f" ] && { echo "$f"; return; }; done; echo ""; }

# ---- the groups: name, estimated seconds on the H100 machine, case regex (searched in the name) ----
# What a case costs there: its inputs drawn on the host (random_normal: 16 threads since this
# script; int8 page codes one thread, ~3 ns a byte), (warm-up + 3 repeats) x its median in
# bench/RESULTS.md, the fallback check on a subset, and per sparq-bench process about 4 s
# (registry, context, peaks) plus the cold start, which prepares and runs the group's first case
# once more. Order = priority inside a part.
G_NAME=(); G_EST=(); G_RE=(); G_PART=()
group() { G_PART+=("$1"); G_NAME+=("$2"); G_EST+=("$3"); G_RE+=("$4"); }
group part1 dense        15 '^attention/prefill causal B1 H32 L[0-9]+ D128 f32$'
group part1 int8         50 '^attention/prefill int8 causal B1 H32 L[0-9]+ D128'
group part1 nvfp4        70 '^nvfp4/(quantize_|attention causal B1 H32 L[0-9]+ )'
group part1 decode       90 '^attention/(decode_paged|decode (int8|nvfp4)) '
group part1 serving      45 '^attention/(prefill_paged|merge_states|host_overhead) '
group part2 sparse_128k_gqa 60 '^sparse/(build|prefill|prefill_int8|prefill_nvfp4) .*Hq32/Hkv8 L131072 '
group part2 sparse_128k_h32 60 '^sparse/(build|prefill) .* H32 L131072 '
group part2 diffusion    80 '^diffusion/'
group part2 mamba        90 '^mamba/'
group part2 sparse_32k   50 '^sparse/(build|prefill|prefill_int8|prefill_nvfp4) .*L32768 '
group part2 quest        30 '^sparse/(quest_|permute_rows)'
group part2 sparse_8k    25 '^sparse/(build|prefill|prefill_int8|prefill_nvfp4) .*L8192 '
# Every case no group above holds (small sizes, cases added later): the catch-all.
all_re=$(IFS='|'; echo "${G_RE[*]}")
group part2 rest        20 "^(?![\\s\\S]*(?:$all_re))"

sel() {  # the group's regex, restricted to SPARQ_REPORT_CASES
  if [ -n "$SUBSET" ]; then echo "^(?=[\\s\\S]*(?:$SUBSET))(?:$1)"; else echo "$1"; fi; }
# Case names of this size, listed once (building the registry takes seconds); counted per group
# with Python's re, which reads these regexes (lookaheads included) as ECMAScript does.
NAMES=$(mktemp); trap 'rm -f "$NAMES"' EXIT
"$B" --list --size "$SIZE" | tail -n +2 | sed -E 's/ +'"$SIZE"' +[0-9.]+ +[0-9.]+$//' > "$NAMES"
matching() { python3 -c 'import re, sys
r = re.compile(sys.argv[1])
for n in open(sys.argv[2]).read().splitlines():
    if r.search(n): print(n)' "$(sel "$1")" "$NAMES"; }
count() { matching "$1" | grep -c . ; }

if [ "$part" = list ]; then
  total=0; seen=$(mktemp)
  for i in "${!G_NAME[@]}"; do
    n=$(count "${G_RE[$i]}")
    matching "${G_RE[$i]}" >> "$seen"
    printf '%-6s %-16s %4d cases  est %4d s  %s\n' "${G_PART[$i]}" "${G_NAME[$i]}" "$n" \
      "${G_EST[$i]}" "${G_RE[$i]:0:90}"
    total=$((total + n))
  done
  all=$(count '')
  dup=$(sort "$seen" | uniq -d | wc -l)
  for p in part1 part2; do
    est=0; for i in "${!G_NAME[@]}"; do [ "${G_PART[$i]}" = $p ] && est=$((est + G_EST[i])); done
    fixed=$([ $p = part1 ] && echo 200 || echo 90)  # selftest + tests + anchors / anchors
    echo "$p: groups est ${est}s + tests/anchors est ${fixed}s = $((est + fixed))s (budget ${BUDGET}s)"
  done
  echo "$total cases in groups, $all $SIZE cases in the registry, $dup in more than one group"
  rm -f "$seen"
  [ "$total" -eq "$all" ] && [ "$dup" -eq 0 ]
  exit
fi
case "$part" in part1|part2) ;; *)
  sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;; esac

out=${OUT:-$root/.gpu/report-out}
R=$out/$part
rm -rf "$R"; mkdir -p "$R"
if [ "$DEV" = gpu ]; then export SPARQ_CACHE_DIR=${SPARQ_CACHE_DIR:-$root/.gpu/cache}; fi
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
log() { echo "t=+$(( $(date +%s) - T0 ))s $*" | tee -a "$R/summary.txt"; }
log "gpu_report $part: device $DEV, size $SIZE, bench $B, budget ${BUDGET}s"
have_torch=0
if [ "$DEV" != gpu ]; then
  log "anchors skipped: dry run on '$DEV' (PyTorch anchors need CUDA on the GPU machine)"
elif python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  have_torch=1
else
  log "anchors skipped: python3 cannot import torch with CUDA here"
fi

selected() { [ -z "${SPARQ_REPORT_GROUPS:-}" ] || [[ $1 =~ ${SPARQ_REPORT_GROUPS} ]]; }
# anchor NAME SCRIPT LIMIT GROUPS ARGS...: one anchor script, time-bound, JSON in
# $R/anchor_NAME.json; skipped when SPARQ_REPORT_GROUPS selects none of the GROUPS it serves
anchor() {
  local name=$1 script=$2 lim=$3 users=$4; shift 4
  [ $have_torch = 1 ] || return 0
  local u any=0
  for u in $users; do selected "$u" && any=1; done
  [ $any = 1 ] || { log "anchor $name not needed by the selected groups"; return 0; }
  local py; py=$(anchor_py "$script")
  [ -n "$py" ] || { log "anchor $name skipped: $script not found"; return 0; }
  local L; L=$(left)
  if [ $((L - RESERVE)) -lt $((lim / 2)) ]; then log "anchor $name SKIPPED: ${L}s left"; return 0; fi
  [ $lim -gt $((L - RESERVE)) ] && lim=$((L - RESERVE))
  PYTHONUNBUFFERED=1 timeout -k 5 "$lim" python3 "$py" "$@" --json "$R/anchor_$name.json" \
    > "$R/anchor_$name.txt" 2>&1
  local rc=$?
  log "anchor $name rc=$rc$([ $rc = 124 ] && echo " (TIMED OUT after ${lim}s)")"
  grep -E '^ *(L=|B=|[0-9]+x)' "$R/anchor_$name.txt" | cut -c1-110
}

# bench_group INDEX: one sparq-bench process for the group's cases, with the anchors of this part
bench_group() {
  local i=$1 name=${G_NAME[$1]} est=${G_EST[$1]} re
  re=$(sel "${G_RE[$1]}")
  selected "$name" || return 0
  local n; n=$(count "${G_RE[$i]}")
  [ "$n" -gt 0 ] || { log "group $name: no $SIZE case"; return; }
  local L; L=$(left)
  # A group that would likely be cut off (and so lose its JSON) gives its time to the next ones:
  # it runs when 80% of its estimate fits.
  if [ $((L - RESERVE)) -lt $((est * 8 / 10)) ] || [ $((L - RESERVE)) -lt 15 ]; then
    log "group $name SKIPPED: $n cases, est ${est}s, ${L}s left"
    echo "$name" >> "$R/skipped.txt"; return
  fi
  local lim=$((est * 5 / 2)); [ $lim -lt 60 ] && lim=60
  [ $lim -gt $((L - RESERVE)) ] && lim=$((L - RESERVE))
  local anchors=() f
  for f in "$R"/anchor_fp32.json "$R"/anchor_bf16*.json "$R"/anchor_diffusion.json; do
    [ -s "$f" ] && anchors+=(--anchor "$f")
  done
  # The first group of part1 starts from an empty program cache, so its cold-start line is a
  # true first run (programs built from source); the others read the cache the tests filled.
  local cache=${SPARQ_CACHE_DIR:-}
  [ "$name" = dense ] && cache=$R/cache-cold
  local t=$(date +%s)
  SPARQ_CACHE_DIR=$cache timeout -k 5 "$lim" "$B" --device "$DEV" --size "$SIZE" --repeat "$REPEAT" --warmup "$WARMUP" \
    "${anchors[@]}" --filter "$re" --json "$R/bench_$name.json" > "$R/bench_$name.txt" 2>&1
  local rc=$? took=$(( $(date +%s) - t ))
  case $rc in
    0) log "group $name: $n cases, ${took}s (est ${est}s), all exact" ;;
    1) log "group $name: $n cases, ${took}s, FAILURES (not exact or error):"
       grep -E '^(ERROR|NOT EXACT) ' "$R/bench_$name.txt" | cut -c1-200 | tee -a "$R/summary.txt" ;;
    124|137) log "group $name TIMED OUT after ${took}s ($n cases, est ${est}s): no JSON"
       grep -E '^\[[0-9]+/[0-9]+\]' "$R/bench_$name.txt" | tail -1
       echo "$name" >> "$R/skipped.txt" ;;
    *) log "group $name: rc=$rc"; tail -3 "$R/bench_$name.txt" ;;
  esac
  grep -m1 '^start:' "$R/bench_$name.txt" | cut -c1-170
  rm -rf "$R/cache-cold"
}

# The whole test suite with the device as the test device, in parallel shards.
run_tests() {
  local filter=${SPARQ_REPORT_GTEST:-*} shards=${SPARQ_REPORT_SHARDS:-6} lim=${TEST_S:-160}
  [ "$filter" = - ] && { log "tests skipped (SPARQ_REPORT_GTEST=-)"; return; }
  [ -n "$TESTS" ] || { log "tests skipped: no sparq_tests under $bin"; return; }
  local i pids=()
  for ((i = 0; i < shards; i++)); do
    SPARQ_TEST_DEVICE=$DEV GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i \
      timeout -k 5 "$lim" "$TESTS" --gtest_filter="$filter" > "$R/tests_$i.txt" 2>&1 &
    pids+=($!)
  done
  local rcs=""
  for i in "${!pids[@]}"; do wait "${pids[$i]}"; rcs="$rcs $?"; done
  local passed failed skipped
  passed=$(grep -h '^\[  PASSED  \] [0-9]' "$R"/tests_*.txt | awk '{s += $4} END {print s + 0}')
  failed=$(grep -h '^\[  FAILED  \] [0-9]' "$R"/tests_*.txt | awk '{s += $4} END {print s + 0}')
  skipped=$(grep -h '^\[  SKIPPED \] [0-9]' "$R"/tests_*.txt | awk '{s += $4} END {print s + 0}')
  log "tests on $DEV ($shards shards, exit codes$rcs): $passed passed, $failed failed, $skipped skipped"
  grep -h '^\[  FAILED  \] [A-Za-z]' "$R"/tests_*.txt | sort -u | head -30 | tee -a "$R/summary.txt"
}

if [ "$part" = part1 ]; then
  if [ "$DEV" = gpu ]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$R/gpu.txt"
  fi
  if [ -n "$INFO" ]; then
    timeout -k 5 90 "$INFO" --device "$DEV" --selftest > "$R/sparq-info.txt" 2>&1
    log "sparq-info --selftest rc=$?: $(grep -m1 -E 'self-test' "$R/sparq-info.txt" | sed 's/^ *//')"
  fi
  run_tests
  anchor fp32 attention_anchor.py 60 "dense int8 nvfp4" --dtype fp32 --lens 4096,16384
  anchor bf16 attention_anchor.py 120 "dense int8 nvfp4" --dtype bf16 --lens 4096,16384,65536,131072
  anchor decode decode_anchor.py 60 decode --batches 1,8,32 --ctx 32768,131072
else
  # Dense cuDNN at 128K for the sparse goals (goals_report.py reads it; no case carries it).
  anchor bf16_128k attention_anchor.py 60 "sparse_128k_gqa sparse_128k_h32" --dtype bf16 --lens 131072
  # The shapes of issue 7's goals (the bench's loop50 and step cases carry the same keys).
  anchor diffusion diffusion_anchor.py 150 diffusion \
    --shapes 1x4x128x128,16x4x128x128,1x16x128x128,16x16x128x128
fi
for i in "${!G_NAME[@]}"; do
  [ "${G_PART[$i]}" = "$part" ] && bench_group "$i"
done

# The goals table and the charts, over this part's JSON (and an earlier part's, if given).
inputs=()
prev=${SPARQ_REPORT_PREV:-}
[ -n "$prev" ] && [ -d "$prev" ] && inputs+=("$prev"/*.json)
inputs+=("$R"/*.json)
if ls "$R"/bench_*.json > /dev/null 2>&1; then
  python3 "$root/tools/goals_report.py" --goals "$root/bench/goals.json" "${inputs[@]}" \
    > "$R/report.md" 2> "$R/report.err"
  log "goals_report rc=$? -> $part/report.md"
  # The device, the self-test and the test suite's line at the top of the report.
  { head -n 2 "$R/report.md"; [ -s "$R/gpu.txt" ] && sed 's/^/- GPU: /' "$R/gpu.txt"
    grep -h -E 'sparq-info|tests on|^\[  FAILED  \] [A-Za-z]' "$R/summary.txt" | sed -E 's/^t=\+[0-9]+s /- /'
    tail -n +3 "$R/report.md"; } > "$R/report.tmp" && mv "$R/report.tmp" "$R/report.md"
  python3 "$root/tools/goals_report.py" --goals "$root/bench/goals.json" --brief "${inputs[@]}" |
    tee "$R/goals_brief.txt"
  benches=(); for f in "${inputs[@]}"; do case $(basename "$f") in bench_*) benches+=("$f") ;; esac; done
  if python3 -c 'import matplotlib' 2>/dev/null; then
    plim=$(( $(left) - 5 )); [ $plim -gt 60 ] && plim=60; [ $plim -lt 5 ] && plim=5
    timeout -k 2 $plim python3 "$root/tools/sparq_plot.py" "$R/charts" "${benches[@]}" > "$R/charts.txt" 2>&1
    log "charts rc=$?: $(grep -c png "$R/charts.txt") PNG in $part/charts"
  else
    log "charts skipped: no matplotlib here (python3 tools/sparq_plot.py DIR bench_*.json later)"
  fi
else
  log "no bench JSON: no goals table"
fi
[ -s "$R/skipped.txt" ] && log "NOT RUN (time): $(tr '\n' ' ' < "$R/skipped.txt")"
log "done"
tar czf "$out/report_$part.tgz" -C "$out" "$part" && rm -rf "$R" &&
  echo "packed $out/report_$part.tgz"
