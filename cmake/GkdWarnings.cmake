# SPDX-License-Identifier: Apache-2.0
# gkd_project_target(<target>): warnings, -march=native and sanitizers for gkd's own executables.
# Users of the library never get these flags; they only apply to our tests, examples and benchmarks.
# The flags are for C++ sources; a .cu source in such a target gets nvcc's equivalents.
function(gkd_project_target target)
  set(cxx $<COMPILE_LANGUAGE:CXX>)
  target_compile_options(${target} PRIVATE $<${cxx}:-Wall -Wextra -Wpedantic>)
  if(GKD_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE $<${cxx}:-Werror> $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # GCC 12 warns inside its own avx512fintrin.h when Eigen's GEMM inlines permutes (pitfalls.md #1).
      target_compile_options(${target} PRIVATE $<${cxx}:-Wno-error=maybe-uninitialized>)
    endif()
  endif()
  if(GKD_NATIVE)
    target_compile_options(${target} PRIVATE $<${cxx}:-march=native>)
  endif()
  if(GKD_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${GKD_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${GKD_SANITIZE})
  endif()
endfunction()
