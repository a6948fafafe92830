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
