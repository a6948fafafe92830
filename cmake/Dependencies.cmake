# Every dependency is a Debian 12 package; tools/setup.sh installs the missing ones.
find_package(OpenCL 1.2 REQUIRED)            # ocl-icd-opencl-dev + opencl-c-headers
find_path(SPARQ_CLHPP_DIR CL/opencl.hpp REQUIRED)   # opencl-clhpp-headers (library-internal only)
find_package(fmt REQUIRED)                   # libfmt-dev: all message formatting
find_package(CLBlast REQUIRED)               # libclblast-dev: exact integer-valued GEMMs (Mamba W8A8)
find_package(nlohmann_json 3 REQUIRED)       # nlohmann-json3-dev: bench JSON output, anchor JSON input
find_package(CLI11 REQUIRED)                 # libcli11-dev: command lines of sparq-bench / sparq-info
find_package(PkgConfig REQUIRED)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)   # libxxhash-dev: cache keys + checksums
find_package(Threads REQUIRED)
if(SPARQ_BUILD_TESTS)
  find_package(GTest REQUIRED)               # libgtest-dev
endif()
if(SPARQ_BUILD_BENCH)
  find_package(benchmark QUIET)              # libbenchmark-dev: fallback micro-benchmarks
endif()
# Python module (python/): pybind11-dev + python3-dev; tests need python3-numpy + python3-pytest.
# Debian's packages belong to /usr/bin/python3, so it is preferred over a pyenv/conda python3
# earlier in PATH (set Python3_EXECUTABLE to choose another one).
if(NOT DEFINED Python3_EXECUTABLE AND EXISTS /usr/bin/python3)
  set(Python3_EXECUTABLE /usr/bin/python3)
endif()
find_package(Python3 3.9 QUIET COMPONENTS Interpreter Development.Module)
if(Python3_FOUND)
  find_package(pybind11 2.6 CONFIG QUIET)
endif()
