# SPDX-License-Identifier: Apache-2.0
# gkd_project_target(<target>): warnings, -march=native and sanitizers for gkd's own executables.
# Users of the library never get these flags; they only apply to our tests, examples and benchmarks.
# The flags are for C++ sources; a .cu source in such a target gets nvcc's equivalents.

# GCC 12 warns inside its own avx512fintrin.h when Eigen inlines AVX-512 permutes and unpacks
# (pitfalls.md #1): -Wmaybe-uninitialized at -O2/-O3, and at the tests' -O1 or -Og -Wuninitialized ("'__Y' is
# used uninitialized", from _mm512_undefined_ps). The second is kept fatal unless the build targets
# AVX-512 (through -march=native or the user's own flags), where it cannot be avoided.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  include(CheckCXXSourceCompiles)
  if(GKD_NATIVE)
    set(CMAKE_REQUIRED_FLAGS -march=native)
  endif()
  check_cxx_source_compiles("#ifndef __AVX512F__\n#error no AVX-512\n#endif\nint main() { return 0; }"
                            GKD_TARGETS_AVX512)
  unset(CMAKE_REQUIRED_FLAGS)
endif()

function(gkd_project_target target)
  set(cxx $<COMPILE_LANGUAGE:CXX>)
  target_compile_options(${target} PRIVATE $<${cxx}:-Wall -Wextra -Wpedantic>)
  if(GKD_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE $<${cxx}:-Werror> $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${target} PRIVATE $<${cxx}:-Wno-error=maybe-uninitialized>)
      if(GKD_TARGETS_AVX512)
        target_compile_options(${target} PRIVATE $<${cxx}:-Wno-error=uninitialized>)
      endif()
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
