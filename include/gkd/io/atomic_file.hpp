// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// Whole-file reads and crash-safe whole-file writes (POSIX).
///
/// `write_file_atomically(path, bytes)` writes a temporary file in the directory of `path`, fsyncs
/// it, renames it over `path` and fsyncs the directory. Readers see either the old file or the
/// complete new one, never a mixture, even if the process or the machine dies at any point; a
/// crash may leave a stale `<name>.tmp.*` file beside it, never a damaged `path`. On an error the
/// temporary file is removed and `path` is untouched. `read_file(path, max_bytes)` reads a whole
/// file, refusing files larger than `max_bytes` before allocating.
///
/// Example:
/// @code
///   std::vector<std::byte> bytes = gkd::io::read_file("in.bin");
///   gkd::io::write_file_atomically("out.bin", bytes);
/// @endcode
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gkd/core/error.hpp"

namespace gkd::io {

namespace detail {

inline std::string errno_text() { return std::strerror(errno); }

/// Closes a file descriptor when it goes out of scope.
struct FileDescriptor {
  int fd = -1;
  explicit FileDescriptor(int f) : fd(f) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
  /// Closes now and reports failure (a failed close can mean lost data).
  bool close() {
    const int f = fd;
    fd = -1;
    return ::close(f) == 0;
  }
};

inline void write_all(int fd, const std::byte* data, std::size_t size, const std::filesystem::path& path) {
  while (size > 0) {
    const ::ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    GKD_CHECK(n > 0, "write_file_atomically", path.string() << ": write failed: " << errno_text());
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace detail

/// Reads the whole file. @throws gkd::Error naming the file if it cannot be opened or read, or
/// is larger than `max_bytes`
inline std::vector<std::byte> read_file(const std::filesystem::path& path,
                                        std::uint64_t max_bytes = std::uint64_t{1} << 40) {
  detail::FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  GKD_CHECK(file.fd >= 0, "read_file", path.string() << ": cannot open: " << detail::errno_text());
  struct ::stat info {};
  GKD_CHECK(::fstat(file.fd, &info) == 0, "read_file", path.string() << ": cannot stat: " << detail::errno_text());
  GKD_CHECK(S_ISREG(info.st_mode), "read_file", path.string() << ": not a regular file");
  const auto size = static_cast<std::uint64_t>(info.st_size);
  GKD_CHECK(size <= max_bytes, "read_file",
            path.string() << ": file of " << size << " bytes exceeds the limit of " << max_bytes << " bytes");
  std::vector<std::byte> bytes(static_cast<std::size_t>(size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ::ssize_t n = ::read(file.fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    GKD_CHECK(n >= 0, "read_file", path.string() << ": read failed: " << detail::errno_text());
    GKD_CHECK(n > 0, "read_file", path.string() << ": file shrank while being read (" << done << " of " << size
                                                << " bytes)");
    done += static_cast<std::size_t>(n);
  }
  return bytes;
}

/// Reads a whole text file (at most 64 MiB). @throws gkd::Error as read_file
inline std::string read_text(const std::filesystem::path& path) {
  const std::vector<std::byte> bytes = read_file(path, std::uint64_t{64} << 20);
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

/// Replaces `path` with `bytes` atomically and durably (temporary file in the same directory,
/// fsync, rename, fsync of the directory).
/// @param before_rename called after the temporary file is complete and synced, just before the
///        rename (a test hook to simulate a failure or crash there; if it throws, the temporary
///        file is removed and the exception propagates)
inline void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> bytes,
                                  const std::function<void()>& before_rename = {}) {
  constexpr const char* op = "write_file_atomically";
  GKD_CHECK(path.has_filename(), op, "'" << path.string() << "' does not name a file");
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  static std::atomic<std::uint64_t> counter{0};
  const std::filesystem::path temp =
      dir / (path.filename().string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++));
  detail::FileDescriptor file(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  GKD_CHECK(file.fd >= 0, op, temp.string() << ": cannot create the temporary file: " << detail::errno_text());
  try {
    detail::write_all(file.fd, bytes.data(), bytes.size(), temp);
    GKD_CHECK(::fsync(file.fd) == 0, op, temp.string() << ": fsync failed: " << detail::errno_text());
    GKD_CHECK(file.close(), op, temp.string() << ": close failed: " << detail::errno_text());
    if (before_rename) before_rename();
    GKD_CHECK(::rename(temp.c_str(), path.c_str()) == 0, op,
              "cannot rename " << temp.string() << " to " << path.string() << ": " << detail::errno_text());
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  detail::FileDescriptor directory(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  GKD_CHECK(directory.fd >= 0, op, dir.string() << ": cannot open the directory to sync it: " << detail::errno_text());
  GKD_CHECK(::fsync(directory.fd) == 0, op, dir.string() << ": directory fsync failed: " << detail::errno_text());
}

/// Writes a text file atomically (see write_file_atomically).
inline void write_text_atomically(const std::filesystem::path& path, std::string_view text) {
  write_file_atomically(path, std::as_bytes(std::span(text.data(), text.size())));
}

}  // namespace gkd::io
