# Compiler rules of ARCHITECTURE §2: no contraction, no fast-math, FMA instructions where the CPU
# has them (std::fma is then one instruction; the bits are the same either way).
add_library(sparq_exact_flags INTERFACE)
target_compile_options(sparq_exact_flags INTERFACE -ffp-contract=off -fno-fast-math -Wall -Wextra)
# The API is used with designated initializers ({.device = "pocl"}); GCC 12's -Wextra flags every
# member left to its default there, which is the point of defaults.
target_compile_options(sparq_exact_flags INTERFACE -Wno-missing-field-initializers)
include(CheckCXXCompilerFlag)
check_cxx_compiler_flag(-mfma SPARQ_HAS_MFMA)
if(SPARQ_HAS_MFMA AND CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  # -mfma only lets the compiler emit vfmadd for explicit std::fma calls; contraction stays off.
  target_compile_options(sparq_exact_flags INTERFACE -mfma)
endif()
if(SPARQ_WERROR)
  target_compile_options(sparq_exact_flags INTERFACE -Werror)
endif()
