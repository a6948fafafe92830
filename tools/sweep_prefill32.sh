#!/usr/bin/env bash
# Sweeps the exact fp32 dense prefill's speed knobs (SPARQ_TUNE_DENSE, host/src/attention/
# dense_config.cpp) on the GPU: one sparq-bench run per knob list over
# '^attention/prefill causal B1 H32 L(4096|16384) D128 f32$', each with a fresh program cache
# and the NVIDIA build log (ptxas registers / spills), one summary line per variant.
#
#   tools/sweep_prefill32.sh SPARQ_BENCH [ANCHOR_JSON] [KNOBS ...]
#
# ANCHOR_JSON: attention_anchor.py --dtype fp32 --json output ("-" or absent: no ratios).
# KNOBS: SPARQ_TUNE_DENSE lists (default: the list below). Logs land in $OUT (default a temp dir).
# Every variant is validated against the CPU fallback by sparq-bench itself (column "exact").
set -uo pipefail
bench=${1:?usage: sweep_prefill32.sh SPARQ_BENCH [ANCHOR_JSON] [KNOBS ...]}
anchor=${2:--}
shift $(($# >= 2 ? 2 : 1))
variants=("$@")
if [ ${#variants[@]} -eq 0 ]; then
  variants=(
    "map=0"                            # the current GPU default: 256 work-items, 4x4, prefetch
    "map=0,exp=1"                      # the default with exp2's rounding by one conversion
    "map=1,prefetch=1,unroll=1"        # register-blocked 4x8 / 8x8, 128 work-items
    "map=1,prefetch=0,unroll=1"
    "map=1,prefetch=1,unroll=1,exp=1"  # exp2's rounding by one conversion
    "map=1,prefetch=0,unroll=1,exp=1"
    "map=1,prefetch=1,unroll=1,exp=1,ds=16"  # 16-d slices: half the prefetch registers
    "map=1,prefetch=1,unroll=0,exp=1"
  )
fi
out=${OUT:-$(mktemp -d)}
filter='^attention/prefill causal B1 H32 L(4096|16384) D128 f32$'
anchor_args=()
[ "$anchor" != "-" ] && [ -f "$anchor" ] && anchor_args=(--anchor "$anchor")

i=0
for t in "${variants[@]}"; do
  i=$((i + 1))
  log=$out/prefill32_$i.txt
  cache=$(mktemp -d)
  SPARQ_CACHE_DIR=$cache SPARQ_TUNE_DENSE="$t,verbose=1" SPARQ_BUILD_LOG=1 timeout 120 "$bench" \
    --device gpu --size large --repeat 5 --warmup 1 --filter "$filter" "${anchor_args[@]}" \
    --json "$out/prefill32_$i.json" >"$log" 2>&1
  rc=$?
  rm -rf "$cache"
  # ptxas: "Used N registers, ... N bytes spill stores" (the attention_dense entry)
  regs=$(grep -oE 'Used [0-9]+ registers' "$log" | head -1 | grep -oE '[0-9]+')
  spill=$(grep -oE '[0-9]+ bytes spill stores' "$log" | head -1 | grep -oE '^[0-9]+')
  summary=$(python3 - "$out/prefill32_$i.json" <<'PY' 2>/dev/null
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    print("no json"); sys.exit(0)
cells = []
for c in d.get("cases", []):
    L = c.get("params", {}).get("Lq")
    t = c.get("timing", {}) or {}
    r = " ".join(f"{a.get('backend', '?')} {a.get('ratio', 0):.3f}x" for a in c.get("anchors", []))
    cells.append(f"L{L} {t.get('median_ms', 0):.3f} ms {c.get('tflops', 0):.2f} TF "
                 f"exact={c.get('exact')} {r}".strip())
print(" | ".join(cells) if cells else "no cases")
PY
)
  printf '%-34s rc=%s regs=%s spill=%s | %s\n' "$t" "$rc" "${regs:-?}" "${spill:-?}" "${summary:-?}"
done
echo "logs: $out"
