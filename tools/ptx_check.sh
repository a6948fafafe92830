#!/usr/bin/env bash
# Compile-checks an OpenCL kernel's NVIDIA inline-PTX variant off the GPU: clang (OpenCL C 1.2 ->
# NVPTX) + a shim for the built-ins it calls (tools/ptx_check_shim.cl), then ptxas for sm_90.
# This checks the asm syntax, operand constraints and register use; it does not run anything.
# Usage: tools/ptx_check.sh kernels_cl/attention/sage8.cl -DHEAD_DIM=128 -DSAGE8_MMA=1
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
clang=${CLANG:-clang-15}
flags=(-cl-std=CL1.2 -target nvptx64-nvidia-cuda -march=sm_80 -Xclang -finclude-default-header
       -I "$root/kernels_cl" -O2 -emit-llvm -c)
"$clang" "${flags[@]}" "$@" -o "$tmp/k.bc" "$src"
"$clang" "${flags[@]}" -o "$tmp/shim.bc" "$root/tools/ptx_check_shim.cl"
llvm-link-15 "$tmp/k.bc" "$tmp/shim.bc" -o "$tmp/all.bc"
llc-15 -march=nvptx64 -mcpu=sm_80 -O2 "$tmp/all.bc" -o "$tmp/k.ptx"
echo "mma.sync instructions: $(grep -c 'mma.sync' "$tmp/k.ptx")"
"${PTXAS:-ptxas}" -arch=sm_90 -v "$tmp/k.ptx" -o "$tmp/k.cubin" 2>&1 | grep -E "error|warning|Used|spill" | sort -u || true
