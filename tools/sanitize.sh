#!/usr/bin/env bash
# ASan + UBSan run in one command: builds build-asan (clang, -fsanitize=address,undefined, fuzz
# targets as libFuzzer binaries; preset "asan" of CMakePresets.json) and runs three phases:
#
#   fallback  every test with SPARQ_DEVICE=fallback SPARQ_TEST_DEVICE=fallback (host only: each
#             family's fallback on both sides of the exactness tests, validation, error paths),
#             minus the device-only runtime tests (phase pocl) and the tests listed in $slow
#             (over 25 s each under ASan on 2 cores; every test file keeps other tests here)
#   pocl      the runtime and tensor tests on PoCL (device selection, program cache, faults,
#             threads, allocation limits)
#   fuzz      the libFuzzer targets (ctest label fuzz, bounded time each)
# On 2 shared cores (2026-12-05): fallback 297 tests in 2.5 min, pocl 52 in 5.6 min (5 of them
# RuntimeKernelSources.EveryKernelVariantBuilds with an empty program cache), fuzz 5 in 20 s.
#
#   tools/sanitize.sh                  all three phases
#   tools/sanitize.sh fallback|pocl|fuzz [ctest args]   one phase, extra args go to ctest
#   tools/sanitize.sh ctest [ctest args]                plain ctest under the sanitizers
#
# Environment: SPARQ_ASAN_BUILD_DIR (default <repo>/build-asan), SPARQ_JOBS (default 2).
# Needs clang and libclang-rt-dev (compiler-rt: the sanitizer and libFuzzer runtimes); Debian 12's
# clang-14 packages have both. Runs under nice (the build machine is shared).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SPARQ_ASAN_BUILD_DIR:-$root/build-asan}
jobs=${SPARQ_JOBS:-2}
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
nice cmake --build "$build" --parallel "$jobs"

# ASan's operator new aborts on a failed allocation instead of throwing std::bad_alloc, so the
# host too-large path (AttentionErrors.TooLargeOnDevice on the fallback) cannot run here.
# use_sigaltstack=0: PoCL's LLVM installs its own alternate signal stacks on its threads, and
# ASan then aborts in thread exit ("failed to deallocate ... UnsetAlternateSignalStack").
# Leaks: sparq's code and the tests are checked; tools/lsan.supp names only driver libraries.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1:use_sigaltstack=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tools/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"

device_only='^Runtime|TensorOnBackend|AttentionErrors.TooLargeOnDevice'
slow='AttentionExact.LongSequences|AttentionInvariance.SameTokenSameBits|AttentionReference.Fp32Within|BatchInvariance.Fp32OverEveryPageStorage|Sage8Accuracy.AgainstFloat64Reference|Nvfp4Pipeline.AccuracyNormalHeavyTailed|SparqPattern.PicksVerticalSlashForPlanted'
# LeakSanitizer's tracer itself crashes (SIGSEGV) at the exit of this one test on PoCL 3.1,
# reading a bogus dynamic-TLS range of a PoCL worker thread; it runs with use_tls=0 (thread-local
# storage is not a leak root there), leaks still checked.
lsan_crash='RuntimeFault.BadKernelDirIsBuildFailed'
run_ctest() { say "ctest $*"; nice ctest --output-on-failure --no-tests=error -j "$jobs" "$@"; }

phase_fallback() {
  SPARQ_DEVICE=fallback SPARQ_TEST_DEVICE=fallback \
    run_ctest -LE 'install|python|fuzz' -E "$device_only|$slow" "$@"
}
phase_pocl() {
  run_ctest -R "$device_only" -E "$lsan_crash" "$@"
  LSAN_OPTIONS=$LSAN_OPTIONS:use_tls=0 run_ctest -R "$lsan_crash" "$@"
}
phase_fuzz() { run_ctest -L fuzz "$@"; }

mode=${1:-all}
[ $# -gt 0 ] && shift
case $mode in
  fallback | pocl | fuzz) "phase_$mode" "$@" ;;
  ctest) run_ctest "$@" ;;
  all) phase_fallback && phase_pocl && phase_fuzz ;;
  *) say "unknown phase '$mode' (fallback, pocl, fuzz, ctest, all)"; exit 2 ;;
esac
