# SPDX-License-Identifier: Apache-2.0
# The committed PyTorch golden set must stay small (under 5 MB).
cmake_minimum_required(VERSION 3.24)
file(GLOB files ${GOLDEN_DIR}/*.txt)
set(total 0)
foreach(f IN LISTS files)
  file(SIZE ${f} size)
  math(EXPR total "${total} + ${size}")
endforeach()
if(total GREATER 5000000)
  message(FATAL_ERROR "tests/golden holds ${total} bytes, over the 5 MB budget")
endif()
message(STATUS "tests/golden: ${total} bytes")
