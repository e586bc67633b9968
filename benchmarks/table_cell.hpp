// SPDX-License-Identifier: Apache-2.0
#pragma once
// One cell of a benchmark table: "OOM" where the run could not allocate, "-" where there is no value
// (negative), else `value` printed with the printf `format`.
#include <cstdio>
#include <string>

namespace gkd::bench {

inline std::string table_cell(double value, bool oom, const char* format) {
  if (oom) return "OOM";
  if (value < 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

}  // namespace gkd::bench
