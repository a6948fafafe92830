#!/usr/bin/env bash
# sparq set-up on Debian 12: installs the missing packages, builds, and runs the main jobs.
#
#   tools/setup.sh bench [sparq-bench flags]  install + Release build + sparq-bench on the default
#                                             device (every case checked against the fallback)
#   tools/setup.sh test  [ctest flags]        install + Release build + the whole test suite
#   tools/setup.sh build                      install + Release build only
#   tools/setup.sh deps                       install the missing packages only
#
# Works as root or through sudo. apt is not touched at all when every package is present.
# Environment: SPARQ_BUILD_DIR (default <repo>/build), SPARQ_JOBS (default: all cores).
set -euo pipefail

packages=(build-essential cmake ninja-build pkg-config ocl-icd-opencl-dev opencl-c-headers
          opencl-clhpp-headers pocl-opencl-icd clinfo libclblast-dev libfmt-dev libgtest-dev
          libbenchmark-dev nlohmann-json3-dev libcli11-dev libxxhash-dev
          pybind11-dev python3-dev python3-numpy python3-pytest)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${SPARQ_BUILD_DIR:-$root/build}
jobs=${SPARQ_JOBS:-$(nproc)}

say() { printf 'setup: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

install_deps() {
  if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    die "needs Debian 12 (dpkg and apt-get); install the packages listed in this script by hand"
  fi
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "all ${#packages[@]} packages present"
    return
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: cannot install ${missing[*]}"
    sudo=(sudo)
  fi
  say "installing ${missing[*]}"
  # Depends are enough (PoCL's clang comes with its headers); recommends would add ~1 GB of LLVM.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" </dev/null
}

build() {
  install_deps
  say "building Release into $build ($jobs jobs)"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPARQ_WERROR=ON >/dev/null
  cmake --build "$build" --parallel "$jobs"
}

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  deps) install_deps ;;
  build) build ;;
  bench)
    build
    say "running sparq-bench (results also in $build/bench-results.json)"
    exec "$build/bench/sparq-bench" --json "$build/bench-results.json" "$@"
    ;;
  test)
    build
    say "running the test suite"
    cd "$build"
    set +e
    ctest --output-on-failure --no-tests=error -j "$jobs" "$@" 2>&1 | tee ctest.log
    rc=${PIPESTATUS[0]}
    set -e
    # ctest lists skipped and failed tests after its summary; CI reads the summary from the last
    # line, so it is repeated there.
    grep -E '^[0-9]+% tests passed' ctest.log | tail -n 1
    exit "$rc"
    ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
