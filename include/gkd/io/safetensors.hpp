// SPDX-License-Identifier: Apache-2.0
#pragma once
/// @file
/// safetensors files (the weight format PyTorch users exchange): parse, validate, read into
/// float/double tensors, write float32/float64, load into existing tensors with a report.
///
/// Format: an 8-byte little-endian header length N, N bytes of JSON
/// `{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
///   "__metadata__": {"key": "value"}}`, then the byte buffer; offsets are relative to the buffer,
/// and the tensors tile it exactly (sorted by offset: no gap, no overlap, no trailing bytes).
///
/// Contract:
/// - `parse_safetensors(bytes, source)` validates everything before any tensor is read: header
///   length (at most `kMaxHeaderBytes` and inside the file), strict JSON with no duplicate key,
///   non-empty tensor names,
///   the fields of each entry (exactly `dtype`, `shape`, `data_offsets`), known dtype,
///   non-negative shapes whose element count fits in 64 bits, `end - begin == numel * itemsize`,
///   the tiling above, and string-only metadata. Every failure is a `gkd::Error` naming the source
///   (file name), the tensor and the field; nothing is allocated beyond the header's size.
/// - Reading converts to T: F32, F64, F16, BF16 exactly (F64 -> float rounds to nearest, beyond
///   float range to +-inf); integer
///   dtypes (U8, I8, U16, I16, U32, I32, U64, I64) by value conversion, exact while |v| <= 2^24
///   (float) or 2^53 (double), rounded to nearest beyond; BOOL as 0/1 (any other byte is a parse error).
/// - Writing stores `Tensor<float>` as F32 and `Tensor<double>` as F64, any strides (written
///   contiguous, row-major), in the given order, with the header padded by spaces to a multiple of
///   8 bytes (as Python's writer does); files are replaced atomically (see atomic_file.hpp).
/// - `load_into(path, targets, {.strict = ...})` copies tensors into existing tensors in place
///   (their storage is shared with a model, so the model changes). Strict: any missing,
///   unexpected or mis-shaped key throws one error naming them all, and nothing is written.
///   Non-strict: loads what matches and reports the rest in the returned `LoadReport`.
///
/// Example:
/// @code
///   gkd::NamedTensors<float> state{{"fc.weight", w}, {"fc.bias", b}};
///   gkd::io::save_safetensors("model.safetensors", state, {{"epoch", "3"}});
///   auto file = gkd::io::load_safetensors<float>("model.safetensors");   // new tensors
///   gkd::io::LoadReport r = gkd::io::load_into("model.safetensors", state, {.strict = false});
///   if (!r.ok()) std::cerr << r.str();
/// @endcode
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "gkd/core/error.hpp"
#include "gkd/core/named_tensor.hpp"
#include "gkd/core/strided.hpp"
#include "gkd/core/tensor.hpp"
#include "gkd/io/atomic_file.hpp"
#include "gkd/io/json.hpp"

namespace gkd::io {

static_assert(std::endian::native == std::endian::little, "gkd's safetensors code assumes a little-endian host");

/// Largest accepted JSON header (the reference implementation's limit).
inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
/// Largest accepted tensor rank.
inline constexpr std::size_t kMaxRank = 64;

/// Element types of safetensors files that gkd reads.
enum class StDtype { BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64 };

/// The file's name of a dtype ("F32", ...).
inline std::string_view dtype_name(StDtype d) {
  static constexpr std::array<std::string_view, 13> names{"BOOL", "U8",  "I8",  "U16", "I16", "U32", "I32",
                                                          "U64",  "I64", "F16", "BF16", "F32", "F64"};
  return names[static_cast<std::size_t>(d)];
}
/// Bytes per element.
inline std::size_t dtype_size(StDtype d) {
  static constexpr std::array<std::size_t, 13> sizes{1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 2, 4, 8};
  return sizes[static_cast<std::size_t>(d)];
}
/// The dtype called `name`, or false.
inline bool parse_dtype(std::string_view name, StDtype& out) {
  for (int i = 0; i <= static_cast<int>(StDtype::F64); ++i)
    if (dtype_name(static_cast<StDtype>(i)) == name) {
      out = static_cast<StDtype>(i);
      return true;
    }
  return false;
}

/// String metadata of a file (`__metadata__`).
using Metadata = std::map<std::string, std::string>;

/// One tensor as the header describes it; offsets relative to the data buffer.
struct StEntry {
  std::string name;
  StDtype dtype = StDtype::F32;
  Shape shape;
  std::uint64_t begin = 0, end = 0;
};

/// A validated file: header entries (in header order), metadata, and a view of the data buffer
/// inside the bytes that were parsed (which must outlive it).
struct StView {
  std::string source;
  std::vector<StEntry> entries;
  Metadata metadata;
  std::span<const std::byte> data;

  /// The entry called `name`, or nullptr.
  [[nodiscard]] const StEntry* find(std::string_view name) const {
    for (const auto& e : entries)
      if (e.name == name) return &e;
    return nullptr;
  }
};

namespace detail {

inline constexpr const char* kOp = "safetensors";

inline std::uint64_t checked_uint(const json::Value& v, const std::string& source, const std::string& where) {
  auto n = json::as_uint64(v);
  GKD_CHECK(n.has_value(), kOp,
            source << ": " << where << " must be a non-negative integer, got "
                   << (v.kind == json::Value::Kind::number ? v.text : json::kind_name(v.kind)));
  return *n;
}

inline StEntry parse_entry(const std::string& name, const json::Value& v, const std::string& source) {
  GKD_CHECK(!name.empty(), kOp, source << ": a tensor has an empty name");
  const std::string where = "tensor '" + name + "'";
  GKD_CHECK(v.is_object(), kOp, source << ": " << where << " must be an object, got " << json::kind_name(v.kind));
  for (const auto& key : v.keys)
    GKD_CHECK(key == "dtype" || key == "shape" || key == "data_offsets", kOp,
              source << ": " << where << " has an unknown field '" << key << "'");
  StEntry e;
  e.name = name;
  const json::Value* dtype = v.find("dtype");
  GKD_CHECK(dtype, kOp, source << ": " << where << " has no field 'dtype'");
  GKD_CHECK(dtype->is_string(), kOp, source << ": " << where << ": field 'dtype' must be a string");
  GKD_CHECK(parse_dtype(dtype->text, e.dtype), kOp,
            source << ": " << where << ": unknown or unsupported dtype '" << dtype->text
                   << "' (supported: BOOL, U8, I8, U16, I16, U32, I32, U64, I64, F16, BF16, F32, F64)");

  const json::Value* shape = v.find("shape");
  GKD_CHECK(shape, kOp, source << ": " << where << " has no field 'shape'");
  GKD_CHECK(shape->is_array(), kOp, source << ": " << where << ": field 'shape' must be an array");
  GKD_CHECK(shape->items.size() <= kMaxRank, kOp,
            source << ": " << where << ": field 'shape' has rank " << shape->items.size() << " (at most " << kMaxRank
                   << ")");
  // The product of the non-zero sizes must fit in int64, so that strides and numel never overflow.
  std::uint64_t extent = 1;
  bool empty = false;
  for (std::size_t i = 0; i < shape->items.size(); ++i) {
    const std::uint64_t s = checked_uint(shape->items[i], source, where + ": field 'shape' entry " + std::to_string(i));
    GKD_CHECK(s <= static_cast<std::uint64_t>(INT64_MAX), kOp,
              source << ": " << where << ": field 'shape' entry " << i << " (" << s << ") is too large");
    if (s == 0) empty = true;
    GKD_CHECK(s == 0 || extent <= static_cast<std::uint64_t>(INT64_MAX) / s, kOp,
              source << ": " << where << ": field 'shape' has more elements than 64 bits can count");
    if (s != 0) extent *= s;
    e.shape.push_back(static_cast<std::int64_t>(s));
  }
  const std::uint64_t numel = empty ? 0 : extent;

  const json::Value* offsets = v.find("data_offsets");
  GKD_CHECK(offsets, kOp, source << ": " << where << " has no field 'data_offsets'");
  GKD_CHECK(offsets->is_array() && offsets->items.size() == 2, kOp,
            source << ": " << where << ": field 'data_offsets' must be an array [begin, end]");
  e.begin = checked_uint(offsets->items[0], source, where + ": field 'data_offsets' begin");
  e.end = checked_uint(offsets->items[1], source, where + ": field 'data_offsets' end");
  GKD_CHECK(e.begin <= e.end, kOp,
            source << ": " << where << ": field 'data_offsets' [" << e.begin << ", " << e.end << "] ends before it begins");
  const std::uint64_t item = dtype_size(e.dtype);
  GKD_CHECK(numel <= UINT64_MAX / item && e.end - e.begin == numel * item, kOp,
            source << ": " << where << ": field 'data_offsets' [" << e.begin << ", " << e.end << "] spans "
                   << e.end - e.begin << " bytes, but shape " << to_string(e.shape) << " of " << dtype_name(e.dtype)
                   << " needs " << numel << " x " << item << " bytes");
  return e;
}

inline Metadata parse_metadata(const json::Value& v, const std::string& source) {
  GKD_CHECK(v.is_object(), kOp, source << ": field '__metadata__' must be an object, got " << json::kind_name(v.kind));
  Metadata out;
  for (std::size_t i = 0; i < v.keys.size(); ++i) {
    GKD_CHECK(v.items[i].is_string(), kOp,
              source << ": field '__metadata__': value of '" << v.keys[i] << "' must be a string, got "
                     << json::kind_name(v.items[i].kind));
    out.emplace(v.keys[i], v.items[i].text);
  }
  return out;
}

/// Little-endian load of an unaligned value.
template <class U>
inline U load(const std::byte* p) {
  U u;
  std::memcpy(&u, p, sizeof(U));
  return u;
}

/// IEEE half to float, exact (subnormals, infinities and NaN included).
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu;
  std::uint32_t mantissa = h & 0x3FFu;
  std::uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    std::uint32_t e = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mantissa & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

/// Converts `count` elements of `dtype` at `src` and hands each to `put(i, value)`.
template <Real T, class Put>
void convert(StDtype dtype, const std::byte* src, std::int64_t count, Put&& put) {
  auto each = [&](auto tag, auto f) {
    using U = decltype(tag);
    for (std::int64_t i = 0; i < count; ++i) put(i, f(load<U>(src + static_cast<std::size_t>(i) * sizeof(U))));
  };
  auto cast = [](auto u) { return static_cast<T>(u); };
  switch (dtype) {
    case StDtype::F32: each(float{}, cast); break;
    case StDtype::F64:
      each(double{}, [](double u) {
        // From half an ulp above FLT_MAX (ties to even) the result is +-inf as IEEE rounds, spelled
        // out because the plain cast of such a value is undefined in C++.
        if constexpr (std::same_as<T, float>)
          if (std::abs(u) >= 0x1.ffffffp127 && std::isfinite(u))
            return std::copysign(std::numeric_limits<float>::infinity(), static_cast<float>(u > 0 ? 1 : -1));
        return static_cast<T>(u);
      });
      break;
    case StDtype::F16: each(std::uint16_t{}, [](std::uint16_t u) { return static_cast<T>(half_to_float(u)); }); break;
    case StDtype::BF16:
      each(std::uint16_t{}, [](std::uint16_t u) {
        return static_cast<T>(std::bit_cast<float>(static_cast<std::uint32_t>(u) << 16));
      });
      break;
    case StDtype::U8: each(std::uint8_t{}, cast); break;
    case StDtype::I8: each(std::int8_t{}, cast); break;
    case StDtype::U16: each(std::uint16_t{}, cast); break;
    case StDtype::I16: each(std::int16_t{}, cast); break;
    case StDtype::U32: each(std::uint32_t{}, cast); break;
    case StDtype::I32: each(std::int32_t{}, cast); break;
    case StDtype::U64: each(std::uint64_t{}, cast); break;
    case StDtype::I64: each(std::int64_t{}, cast); break;
    case StDtype::BOOL: each(std::uint8_t{}, cast); break;  // 0 or 1, checked by parse_safetensors
  }
}

}  // namespace detail

/// Validates a whole safetensors file held in `bytes` (see the file comment for the rules).
/// @param source the file name used in error messages
/// @throws gkd::Error naming source, tensor and field on any violation
inline StView parse_safetensors(std::span<const std::byte> bytes, std::string source = "<memory>") {
  using detail::kOp;
  GKD_CHECK(bytes.size() >= 8, kOp,
            source << ": file of " << bytes.size() << " bytes is shorter than the 8-byte header length");
  const auto header_size = detail::load<std::uint64_t>(bytes.data());
  GKD_CHECK(header_size <= kMaxHeaderBytes, kOp,
            source << ": header length " << header_size << " exceeds the limit of " << kMaxHeaderBytes << " bytes");
  GKD_CHECK(header_size <= bytes.size() - 8, kOp,
            source << ": header length " << header_size << " runs past the end of the file (" << bytes.size()
                   << " bytes)");
  GKD_CHECK(header_size >= 2 && bytes[8] == std::byte{'{'}, kOp,
            source << ": the header does not start with '{' (not a safetensors file?)");
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), static_cast<std::size_t>(header_size));
  const json::Value header = json::parse(text, source + " header");
  GKD_CHECK(header.is_object(), kOp, source << ": the header must be a JSON object");

  StView view;
  view.source = source;
  view.data = bytes.subspan(8 + static_cast<std::size_t>(header_size));
  for (std::size_t i = 0; i < header.keys.size(); ++i) {
    if (header.keys[i] == "__metadata__") {
      view.metadata = detail::parse_metadata(header.items[i], source);
      continue;
    }
    view.entries.push_back(detail::parse_entry(header.keys[i], header.items[i], source));
  }

  // The tensors must tile the data buffer: sorted by offset, each begins where the previous ends.
  std::vector<const StEntry*> order;
  order.reserve(view.entries.size());
  for (const auto& e : view.entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const StEntry* a, const StEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::uint64_t covered = 0;
  const StEntry* previous = nullptr;
  for (const StEntry* e : order) {
    GKD_CHECK(e->begin >= covered, kOp,
              source << ": tensor '" << e->name << "': field 'data_offsets' [" << e->begin << ", " << e->end
                     << "] overlaps tensor '" << previous->name << "' [" << previous->begin << ", " << previous->end
                     << "]");
    GKD_CHECK(e->begin == covered, kOp,
              source << ": tensor '" << e->name << "': field 'data_offsets' [" << e->begin << ", " << e->end
                     << "] leaves a gap of " << e->begin - covered << " bytes after offset " << covered);
    GKD_CHECK(e->end <= view.data.size(), kOp,
              source << ": tensor '" << e->name << "': field 'data_offsets' [" << e->begin << ", " << e->end
                     << "] runs past the data buffer (" << view.data.size() << " bytes)");
    covered = e->end;
    previous = e;
  }
  GKD_CHECK(covered == view.data.size(), kOp,
            source << ": " << view.data.size() - covered << " bytes of trailing data after the last tensor (offset "
                   << covered << ")");
  for (const auto& e : view.entries) {
    if (e.dtype != StDtype::BOOL) continue;
    for (std::uint64_t i = e.begin; i < e.end; ++i) {
      const auto b = std::to_integer<unsigned>(view.data[static_cast<std::size_t>(i)]);
      GKD_CHECK(b <= 1, kOp,
                source << ": tensor '" << e.name << "': BOOL element " << i - e.begin << " holds byte " << b
                       << " (only 0 and 1 are valid)");
    }
  }
  return view;
}

/// A new contiguous tensor holding entry `e` of `view`, converted to T.
template <Real T>
Tensor<T> read_tensor(const StView& view, const StEntry& e) {
  Tensor<T> out = Tensor<T>::empty(e.shape);
  T* d = out.data();
  detail::convert<T>(e.dtype, view.data.data() + e.begin, out.numel(), [d](std::int64_t i, T v) { d[i] = v; });
  return out;
}

/// Writes entry `e` of `view` into `target` in place (any strides, host or GPU). @pre target.shape() == e.shape
template <Real T>
void read_tensor_into(const StView& view, const StEntry& e, const Tensor<T>& target) {
  GKD_CHECK(target.shape() == e.shape, detail::kOp,
            view.source << ": tensor '" << e.name << "' has shape " << to_string(e.shape) << ", target has "
                        << to_string(target.shape()));
  if (!target.device().is_cpu()) {  // staged on the host, then copied
    gkd::detail::copy_into(target, read_tensor<T>(view, e).to(target.device()));
    return;
  }
  if (target.is_contiguous()) {
    T* d = target.data();
    detail::convert<T>(e.dtype, view.data.data() + e.begin, target.numel(), [d](std::int64_t i, T v) { d[i] = v; });
    return;
  }
  const Tensor<T> staged = read_tensor<T>(view, e);
  const T* s = staged.data();
  gkd::detail::strided_for_each<2>(target.shape(), {&target.strides(), &staged.strides()},
                                   [d = target.data(), s](const auto& o) { d[o[0]] = s[o[1]]; });
}

/// The bytes of a safetensors file holding `tensors` (F32 for float, F64 for double) and `metadata`.
/// GPU tensors are copied to the host first.
/// @throws gkd::Error for an undefined tensor, an empty, repeated or reserved name, or
///         a name or metadata string that is not valid UTF-8 (the header is JSON)
template <Real T>
std::vector<std::byte> serialize_safetensors(const NamedTensors<T>& tensors, const Metadata& metadata = {}) {
  using detail::kOp;
  constexpr std::string_view dtype = std::same_as<T, float> ? "F32" : "F64";
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      GKD_CHECK(json::is_valid_utf8(k) && json::is_valid_utf8(v), kOp,
                "metadata key or value '" << k << "' is not valid UTF-8");
      header += (first ? "" : ",") + json::quote(k) + ":" + json::quote(v);
      first = false;
    }
    header += "}";
  }
  std::unordered_set<std::string> names;
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    GKD_CHECK(!name.empty(), kOp, "tensor " << i << " has an empty name");
    GKD_CHECK(name != "__metadata__", kOp, "tensor " << i << " uses the reserved name '__metadata__'");
    GKD_CHECK(names.insert(name).second, kOp, "tensor name '" << name << "' appears twice");
    GKD_CHECK(json::is_valid_utf8(name), kOp, "tensor name '" << name << "' is not valid UTF-8");
    GKD_CHECK(t.defined(), kOp, "tensor '" << name << "' is undefined");
    const std::uint64_t bytes = static_cast<std::uint64_t>(t.numel()) * sizeof(T);
    header += (header.size() > 1 ? "," : "") + json::quote(name) + ":{\"dtype\":\"" + std::string(dtype) +
              "\",\"shape\":[";
    for (std::size_t d = 0; d < t.dim(); ++d) {  // appended piece by piece: GCC 12's -Wrestrict misfires on a + b here
      if (d) header += ',';
      header += std::to_string(t.shape()[d]);
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');

  std::vector<std::byte> out(8 + header.size() + offset);
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  std::byte* dst = out.data() + 8 + header.size();
  for (const auto& [name, t] : tensors) {
    const Tensor<T> c = t.device().is_cpu() ? t.contiguous_copy_if_needed() : t.cpu();
    const std::size_t bytes = static_cast<std::size_t>(c.numel()) * sizeof(T);
    if (bytes) std::memcpy(dst, c.data(), bytes);
    dst += bytes;
  }
  return out;
}

/// Writes `tensors` and `metadata` to `path` atomically.
template <Real T>
void save_safetensors(const std::filesystem::path& path, const NamedTensors<T>& tensors, const Metadata& metadata = {}) {
  const std::vector<std::byte> bytes = serialize_safetensors(tensors, metadata);
  write_file_atomically(path, bytes);
}

/// Tensors (in header order) and metadata of a file, read into new tensors.
template <Real T>
struct SafetensorsFile {
  NamedTensors<T> tensors;
  Metadata metadata;
};

/// Every tensor of a parsed file as a new tensor of T.
template <Real T>
SafetensorsFile<T> read_all(const StView& view) {
  SafetensorsFile<T> out;
  out.metadata = view.metadata;
  for (const auto& e : view.entries) out.tensors.push_back({e.name, read_tensor<T>(view, e)});
  return out;
}

/// Reads and validates the file at `path` into new tensors of T.
template <Real T>
SafetensorsFile<T> load_safetensors(const std::filesystem::path& path) {
  const std::vector<std::byte> bytes = read_file(path);
  return read_all<T>(parse_safetensors(bytes, path.string()));
}

/// A key whose shape in the file differs from the target's.
struct ShapeMismatch {
  std::string name;
  Shape expected;  ///< the target's
  Shape found;     ///< the file's
};

/// What `load_into` did: keys loaded, targets absent from the file (`missing`), file tensors with
/// no target (`unexpected`), and keys whose shapes differ (`mismatched`, not loaded).
struct LoadReport {
  std::vector<std::string> loaded, missing, unexpected;
  std::vector<ShapeMismatch> mismatched;

  /// True when every target was loaded and the file held nothing else.
  [[nodiscard]] bool ok() const noexcept { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  /// "missing keys: a, b; unexpected keys: c; mis-shaped keys: d (expected [2], file has [3])".
  [[nodiscard]] std::string str() const {
    std::ostringstream out;
    auto list = [&](const char* what, const std::vector<std::string>& keys) {
      if (keys.empty()) return;
      if (out.tellp() > 0) out << "; ";
      out << what << ": ";
      for (std::size_t i = 0; i < keys.size(); ++i) out << (i ? ", " : "") << keys[i];
    };
    list("missing keys", missing);
    list("unexpected keys", unexpected);
    if (!mismatched.empty()) {
      if (out.tellp() > 0) out << "; ";
      out << "mis-shaped keys: ";
      for (std::size_t i = 0; i < mismatched.size(); ++i)
        out << (i ? ", " : "") << mismatched[i].name << " (expected " << to_string(mismatched[i].expected)
            << ", file has " << to_string(mismatched[i].found) << ")";
    }
    return out.str();
  }
};

/// How `load_into` matches file tensors to targets.
struct LoadOptions {
  /// Throw (writing nothing) unless every target is in the file with its shape and the file has
  /// no other tensor; otherwise load what matches.
  bool strict = true;
  /// Only file tensors whose names start with `prefix` take part, matched with the prefix removed
  /// (e.g. "model." inside a checkpoint).
  std::string prefix = {};
};

/// How the tensors of `view` whose names start with `prefix` (matched without it) pair with
/// `targets`: fills `missing`, `unexpected` and `mismatched`; `loaded` stays empty.
/// @throws gkd::Error if a target name appears twice
template <Real T>
LoadReport match_keys(const StView& view, const NamedTensors<T>& targets, const std::string& prefix = {}) {
  LoadReport report;
  auto strip = [&](const std::string& name) -> std::optional<std::string> {
    if (name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
    return name.substr(prefix.size());
  };
  std::unordered_map<std::string, const StEntry*> file;
  for (const auto& e : view.entries)
    if (auto key = strip(e.name)) file.emplace(*key, &e);
  std::unordered_set<std::string> wanted;
  for (const auto& [name, t] : targets) {
    GKD_CHECK(wanted.insert(name).second, detail::kOp, "target name '" << name << "' appears twice");
    auto it = file.find(name);
    if (it == file.end()) report.missing.push_back(name);
    else if (it->second->shape != t.shape()) report.mismatched.push_back({name, t.shape(), it->second->shape});
  }
  for (const auto& e : view.entries)
    if (auto key = strip(e.name); key && !wanted.count(*key)) report.unexpected.push_back(*key);
  return report;
}

/// Copies the tensors of `view` into `targets` in place, matching by name.
/// @throws gkd::Error in strict mode naming every missing, unexpected and mis-shaped key (and
///         then nothing is written)
template <Real T>
LoadReport load_into(const StView& view, const NamedTensors<T>& targets, const LoadOptions& options = {}) {
  LoadReport report = match_keys(view, targets, options.prefix);
  GKD_CHECK(!options.strict || report.ok(), detail::kOp,
            view.source << ": strict load failed (nothing was loaded): " << report.str());
  std::unordered_map<std::string_view, const StEntry*> by_name;
  for (const auto& e : view.entries) by_name.emplace(e.name, &e);
  for (const auto& [name, t] : targets) {
    auto it = by_name.find(options.prefix + name);
    if (it == by_name.end() || it->second->shape != t.shape()) continue;
    const StEntry* e = it->second;
    read_tensor_into(view, *e, t);
    report.loaded.push_back(name);
  }
  return report;
}

/// Reads the file at `path` into `targets` in place; see the overload above.
template <Real T>
LoadReport load_into(const std::filesystem::path& path, const NamedTensors<T>& targets, const LoadOptions& options = {}) {
  const std::vector<std::byte> bytes = read_file(path);
  return load_into(parse_safetensors(bytes, path.string()), targets, options);
}

}  // namespace gkd::io
