# SPDX-License-Identifier: Apache-2.0
# Resolves GKD_WITH_CUDA (AUTO/ON/OFF). The CUDA backend is an optional compiled library, gkd::cuda,
# built from kernels/; the header-only CPU path never needs nvcc.
set(GKD_CUDA_ENABLED OFF)
if(NOT GKD_WITH_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(GKD_CUDA_ENABLED ON)
  elseif(GKD_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "GKD_WITH_CUDA=ON but no CUDA compiler was found (set CMAKE_CUDA_COMPILER)")
  endif()
endif()
if(GKD_CUDA_ENABLED)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    # Explicit, never guessed: Hopper (H100/H200) machine code plus PTX for newer cards.
    set(CMAKE_CUDA_ARCHITECTURES 90-real 90-virtual)
  endif()
  enable_language(CUDA)
  add_subdirectory(kernels)
endif()
message(STATUS "gkd: CUDA backend ${GKD_CUDA_ENABLED} (GKD_WITH_CUDA=${GKD_WITH_CUDA})")
