#!/usr/bin/env bash
# The `install` test: installs this build into a temporary prefix, checks the layout, builds
# examples/ as a separate CMake project against the installed package (find_package(sparq
# CONFIG) through CMAKE_PREFIX_PATH) and runs each example through that project's ctest, then
# compiles and runs one tiny program with pkg-config alone.
#
# Usage: install_test.sh <build dir> <source dir> <work dir> <c++ compiler> <generator> [launcher]
set -euo pipefail
build=$1 src=$2 work=$3 cxx=$4 generator=$5 launcher=${6:-}
prefix=$work/prefix
fail() { echo "install test: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"

# Layout: the versioned library with its SONAME, the headers, the tools, both package files.
libdir=$(dirname "$(find "$prefix" -name 'libsparq.so.*.*.*' | head -n 1)")
[ -f "$libdir/libsparq.so.0.1.0" ] || fail "no libsparq.so.<version> under $prefix"
[ -L "$libdir/libsparq.so" ] && [ -L "$libdir/libsparq.so.0" ] || fail "missing libsparq.so links"
soname=$(objdump -p "$libdir/libsparq.so" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = libsparq.so.0 ] || fail "SONAME is '$soname', want libsparq.so.0"
for f in include/sparq/sparq.h include/sparq/attention.h bin/sparq-info bin/sparq-bench \
         bin/sparq-pattern; do
  [ -e "$prefix/$f" ] || fail "missing $f"
done
for f in cmake/sparq/sparqConfig.cmake cmake/sparq/sparqConfigVersion.cmake pkgconfig/sparq.pc; do
  [ -f "$libdir/$f" ] || fail "missing $libdir/$f"
done
# Only the public API is exported: no fmt, xxhash or internal (sparq::rt, cl::) symbols.
if nm -D --defined-only -C "$libdir/libsparq.so" | grep -E ' (fmt::|XXH|sparq::rt::|cl::)' | head -n 3 | grep .; then
  fail "libsparq.so exports internal symbols"
fi
"$prefix/bin/sparq-info" >"$work/sparq-info.log" || fail "sparq-info failed: $(cat "$work/sparq-info.log")"

# examples/ against the installed package.
cmake -S "$src/examples" -B "$work/examples" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$cxx" \
  ${launcher:+-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher"} >"$work/examples-configure.log" ||
  fail "configuring examples/ failed: $(cat "$work/examples-configure.log")"
grep -q "sparq_DIR:PATH=$libdir/cmake/sparq" "$work/examples/CMakeCache.txt" ||
  fail "examples/ did not use the installed package: $(grep sparq_DIR "$work/examples/CMakeCache.txt")"
cmake --build "$work/examples" --parallel 2
ctest --test-dir "$work/examples" --output-on-failure -V >"$work/examples-ctest.log" 2>&1 ||
  fail "an example failed: $(tail -n 40 "$work/examples-ctest.log")"
# Each example's own lines ("N: ..."), then the summary.
grep -E '^[0-9]+: ' "$work/examples-ctest.log" | grep -v -E '^[0-9]+: (Test |Working |Environment)'
grep -E 'tests passed' "$work/examples-ctest.log"

# pkg-config alone: compile, link and run a tiny program.
cat >"$work/hello.cpp" <<'CPP'
#include <sparq/sparq.h>
#include <cstdio>
int main() {
  sparq::Context ctx = sparq::Context::create({.device = "fallback"});
  auto t = ctx.upload(std::vector<float>{1.5f, -2.0f}, sparq::DType::f32, {2});
  std::printf("pkg-config: sparq %s, %s\n", sparq::version(), t.desc().describe().c_str());
  return t.download<float>()[1] == -2.0f ? 0 : 1;
}
CPP
export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --modversion sparq)" = 0.1.0 ] || fail "pkg-config --modversion sparq"
# shellcheck disable=SC2046
"$cxx" -std=c++20 "$work/hello.cpp" -o "$work/hello" $(pkg-config --cflags --libs sparq) \
  -Wl,-rpath,"$(pkg-config --variable=libdir sparq)"
"$work/hello"
# The Python module, when it was built (the python tests build it; this test runs after them).
module=$(find "$prefix" -name 'sparq.cpython-*.so' | head -n 1)
if [ -n "$module" ]; then
  env -u LD_LIBRARY_PATH PYTHONPATH="$(dirname "$module")" "${SPARQ_PYTHON:-python3}" -c \
    'import sparq; c = sparq.Context(device="fallback"); print("python: sparq", sparq.version(), "from", sparq.__file__, c)' ||
    fail "the installed Python module does not load"
fi
echo "install test: OK ($prefix)"
