#!/usr/bin/env bash
# sparq-bench on the GPU machine, with PyTorch's attention and diffusion anchors timed in the same
# session.
#
#   here:  tools/gpu_bench.sh stage [BUILD_DIR]
#          stages the git-ignored .gpu/: the runtime .deb packages and remote-setup.sh (through
#          ../shared/gpu/prepare.sh), attention_anchor.py, and the binaries of BUILD_DIR
#          (default build/: sparq-bench, sparq-info, sparq_tests).
#   there: bash tools/gpu_bench.sh run [sparq-bench flags]
#          (the device tool, carrying .gpu) registers NVIDIA's OpenCL driver, lists the devices
#          and runs the exactness self-test, times the fp32 anchor (memory-efficient SDPA, TF32 off) at 4K and 16K, and
#          diffusion_anchor.py (eager + torch.compile sampler steps with CFG), then runs
#          sparq-bench on the GPU with both --anchor files. Everything lands in $OUT (default .gpu/out).
#
# Binaries built on Debian 12 run there unchanged (../shared/design/NVIDIA_OPENCL.md).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stage=$root/.gpu

case "${1:-}" in
  stage)
    build=${2:-$root/build}
    shared=${SPARQ_SHARED_DIR:-$root/../shared}
    bash "$shared/gpu/prepare.sh" libxxhash0 >/dev/null
    cp "$shared/anchors/attention_anchor.py" "$stage/"
    cp "$shared/anchors/diffusion_anchor.py" "$stage/"
    mkdir -p "$stage/bin"
    for exe in bench/sparq-bench tools/sparq-info tests/sparq_tests; do
      [ -x "$build/$exe" ] && cp "$build/$exe" "$stage/bin/"
    done
    ls "$stage" "$stage/bin"
    ;;
  run)
    shift
    out=${OUT:-$stage/out}
    mkdir -p "$out"
    bash "$stage/remote-setup.sh" >"$out/remote-setup.log" 2>&1
    "$stage/bin/sparq-info" --selftest | tee "$out/sparq-info.txt"
    PYTHONUNBUFFERED=1 python3 "$stage/attention_anchor.py" --dtype fp32 --lens 4096,16384 \
      --json "$out/anchor_fp32.json" | tee "$out/anchor_fp32.txt"
    # diffusion: the anchor's shapes + 64x16x128x128 (the bandwidth goal's size); the bench's
    # f32 step and loop50 cases carry the same shape/step keys.
    PYTHONUNBUFFERED=1 python3 "$stage/diffusion_anchor.py" \
      --shapes 1x4x128x128,16x4x128x128,1x16x128x128,16x16x128x128,64x16x128x128 \
      --json "$out/anchor_diffusion.json" | tee "$out/anchor_diffusion.txt"
    "$stage/bin/sparq-bench" --device gpu --anchor "$out/anchor_fp32.json" \
      --anchor "$out/anchor_diffusion.json" \
      --json "$out/bench.json" "$@" 2>&1 | tee "$out/bench.txt"
    ;;
  *)
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
