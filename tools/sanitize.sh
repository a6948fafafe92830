#!/usr/bin/env bash
# ASan + UBSan run: builds build-asan (clang, -fsanitize=address,undefined, fuzz targets as
# libFuzzer binaries; preset "asan" of CMakePresets.json) and runs the test suite under it: the
# runtime tests, every family's fallback and PoCL-vs-fallback tests, and the fuzz targets.
#
#   tools/sanitize.sh [ctest args]     default: everything except the install and python tests
#                                      (those run uninstrumented programs: a pip-less Python and a
#                                      separately built examples project)
#   e.g. tools/sanitize.sh -R 'Runtime|Attention'   or   tools/sanitize.sh -L fuzz
#
# Environment: SPARQ_ASAN_BUILD_DIR (default <repo>/build-asan), SPARQ_JOBS (default: all cores).
# Needs clang and libclang-rt-dev (compiler-rt: the sanitizer and libFuzzer runtimes); Debian 12's
# clang-14 packages have both.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SPARQ_ASAN_BUILD_DIR:-$root/build-asan}
jobs=${SPARQ_JOBS:-$(nproc)}
say() { printf 'sanitize: %s\n' "$*" >&2; }

command -v clang++ >/dev/null || { say "needs clang++ (apt-get install clang libclang-rt-dev)"; exit 1; }
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
say "configuring $build (clang, ASan + UBSan, libFuzzer)"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" \
  -DSPARQ_SANITIZE=ON -DSPARQ_LIBFUZZER=ON -DSPARQ_BUILD_BENCH=OFF -DSPARQ_BUILD_PYTHON=OFF \
  >/dev/null
say "building ($jobs jobs)"
cmake --build "$build" --parallel "$jobs"

# Leaks: PoCL and its LLVM keep allocations until exit, which LeakSanitizer would report as
# leaks of the driver, not of sparq; tools/lsan.supp names those libraries. Everything else
# (sparq's own code, the tests) is checked for leaks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tools/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
[ $# -eq 0 ] && set -- -LE 'install|python'
say "running ctest $* under ASan + UBSan"
ctest --output-on-failure --no-tests=error -j "$jobs" "$@"
