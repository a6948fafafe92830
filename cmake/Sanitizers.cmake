# ASan + UBSan builds (tools/sanitize.sh, preset "asan") and coverage-guided fuzzing (libFuzzer,
# clang only). Both apply to every target of the build, library and tests alike.
option(SPARQ_SANITIZE "Build everything with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
option(SPARQ_LIBFUZZER "clang: build fuzz/ targets as libFuzzer binaries (coverage-guided)" OFF)
if(SPARQ_SANITIZE)
  # Any UB report aborts (a test failure), instead of printing and going on.
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=address,undefined)
endif()
if(SPARQ_LIBFUZZER)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SPARQ_LIBFUZZER needs clang (CMAKE_CXX_COMPILER=clang++)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
