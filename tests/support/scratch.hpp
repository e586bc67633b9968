// SPDX-License-Identifier: Apache-2.0
#pragma once
// Test helpers for file-facing tests: a scratch folder removed on scope exit, and the message of the
// gkd::Error a call throws.
#include <filesystem>
#include <functional>
#include <string>
#include <unistd.h>

#include "gkd/core/error.hpp"

namespace gkd::test {

/// An empty folder `<tmp>/gkd_<tag>_<pid>`, created on construction and removed with its contents on
/// destruction.
struct ScratchDir {
  std::filesystem::path path;
  explicit ScratchDir(const std::string& tag)
      : path(std::filesystem::temp_directory_path() / ("gkd_" + tag + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() { std::filesystem::remove_all(path); }
};

/// The what() of the gkd::Error that `f` throws; empty when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const gkd::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace gkd::test
