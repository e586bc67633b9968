// SPDX-License-Identifier: Apache-2.0
// safetensors: write/read round trips, dtype conversion, load_into (strict and not), and one test
// per kind of malformed file, each expecting a gkd::Error that names the file and the field.
#include <catch2/catch.hpp>

#include <bit>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <gkd/gkd.hpp>
#include <gkd/io/safetensors.hpp>

namespace fs = std::filesystem;
using gkd::io::parse_safetensors;

namespace {

/// A file made of an explicit header text and data bytes.
std::vector<std::byte> make_file(const std::string& header, const std::vector<std::uint8_t>& data = {},
                                 std::uint64_t declared = UINT64_MAX) {
  const std::uint64_t n = declared == UINT64_MAX ? header.size() : declared;
  std::vector<std::byte> out(8 + header.size() + data.size());
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + header.size(), data.data(), data.size());
  return out;
}

std::vector<std::uint8_t> bytes_of(const std::vector<float>& v) {
  std::vector<std::uint8_t> out(v.size() * 4);
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

/// Parses `file` and expects an error whose message contains every piece of `parts`.
void require_error(const std::vector<std::byte>& file, const std::vector<std::string>& parts) {
  try {
    (void)parse_safetensors(file, "bad.safetensors");
    FAIL("no error for a malformed file");
  } catch (const gkd::Error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("bad.safetensors") != std::string::npos);
    for (const auto& p : parts) CHECK(msg.find(p) != std::string::npos);
  }
}

fs::path temp_dir() {
  fs::path dir = fs::temp_directory_path() / ("gkd_test_safetensors_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("safetensors round trip of float and double tensors with metadata", "[io]") {
  const fs::path dir = temp_dir();
  gkd::Generator gen(1);
  auto a = gkd::randn<float>({2, 3, 4}, gen);
  auto t = gkd::randn<float>({3, 5}, gen).transpose(0, 1);  // non-contiguous: written row-major
  auto s = gkd::Tensor<float>::scalar(7.5f);
  auto e = gkd::Tensor<float>::empty({0, 4});
  gkd::NamedTensors<float> state{{"a", a}, {"t", t}, {"s", s}, {"e", e}};
  gkd::io::save_safetensors(dir / "f.safetensors", state, {{"epoch", "3"}, {"note", "qu\"ote\n"}});

  auto loaded = gkd::io::load_safetensors<float>(dir / "f.safetensors");
  REQUIRE(loaded.tensors.size() == 4);
  CHECK(loaded.metadata.at("epoch") == "3");
  CHECK(loaded.metadata.at("note") == "qu\"ote\n");
  for (std::size_t i = 0; i < state.size(); ++i) {
    CHECK(loaded.tensors[i].name == state[i].name);
    CHECK(loaded.tensors[i].tensor.shape() == state[i].tensor.shape());
    CHECK(loaded.tensors[i].tensor.to_vector() == state[i].tensor.to_vector());  // bit-exact
  }
  // The header is padded to 8 bytes, as Python's writer does.
  auto bytes = gkd::io::read_file(dir / "f.safetensors");
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);

  gkd::NamedTensors<double> dstate{{"w", gkd::randn<double>({4, 2}, gen)}};
  gkd::io::save_safetensors(dir / "d.safetensors", dstate);
  auto dl = gkd::io::load_safetensors<double>(dir / "d.safetensors");
  CHECK(dl.tensors[0].tensor.to_vector() == dstate[0].tensor.to_vector());
  CHECK(parse_safetensors(gkd::io::read_file(dir / "d.safetensors")).entries[0].dtype == gkd::io::StDtype::F64);
  // F64 beyond float's range reads as +-inf from half an ulp above FLT_MAX, else rounds to nearest.
  const double flt_max = std::numeric_limits<float>::max();
  gkd::NamedTensors<double> big{{"b", gkd::Tensor<double>::from({5}, {1e300, -1e300, flt_max * (1 + 0x1p-25),
                                                                       0x1.ffffffp127, -std::numeric_limits<double>::infinity()})}};
  gkd::io::save_safetensors(dir / "big.safetensors", big);
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(gkd::io::load_safetensors<float>(dir / "big.safetensors").tensors[0].tensor.to_vector() ==
        std::vector<float>{inf, -inf, std::numeric_limits<float>::max(), inf, -inf});
  // An F64 file read as float rounds to nearest.
  auto as_float = gkd::io::load_safetensors<float>(dir / "d.safetensors");
  for (std::size_t i = 0; i < 8; ++i)
    CHECK(as_float.tensors[0].tensor.data()[i] == static_cast<float>(dstate[0].tensor.data()[i]));
  fs::remove_all(dir);
}

TEST_CASE("safetensors reads every supported dtype with exact conversion", "[io]") {
  // F16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), inf; BF16: 1.5, -3; BOOL; I64; I32; U8.
  const std::vector<std::uint8_t> data = {
      0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x7c,  // F16 x5   [0, 10)
      0xc0, 0x3f, 0x40, 0xc0,                                      // BF16 x2  [10, 14)
      0x01, 0x00, 0x01,                                            // BOOL x3  [14, 17)
      0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,              // I64 -5   [17, 25)
      0x00, 0x00, 0x00, 0x01,                                      // I32 2^24 [25, 29)
      0xff,                                                        // U8 255   [29, 30)
  };
  const std::string header =
      R"({"h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]},)"
      R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[10,14]},)"
      R"("m":{"dtype":"BOOL","shape":[3],"data_offsets":[14,17]},)"
      R"("l":{"dtype":"I64","shape":[],"data_offsets":[17,25]},)"
      R"("i":{"dtype":"I32","shape":[1],"data_offsets":[25,29]},)"
      R"("u":{"dtype":"U8","shape":[1,1],"data_offsets":[29,30]}})";
  const auto file = make_file(header, data);
  const auto view = parse_safetensors(file, "dtypes");
  auto get = [&](const char* name) { return gkd::io::read_tensor<double>(view, *view.find(name)).to_vector(); };
  CHECK(get("h") == std::vector<double>{1, -2, 65504, std::ldexp(1.0, -24), INFINITY});
  CHECK(get("b") == std::vector<double>{1.5, -3});
  CHECK(get("m") == std::vector<double>{1, 0, 1});
  CHECK(get("l") == std::vector<double>{-5});
  CHECK(get("i") == std::vector<double>{16777216});
  CHECK(get("u") == std::vector<double>{255});
  CHECK(gkd::io::read_tensor<double>(view, *view.find("u")).shape() == gkd::Shape{1, 1});
  CHECK(gkd::io::read_tensor<double>(view, *view.find("l")).shape() == gkd::Shape{});
}

TEST_CASE("load_into: strict loads in place or throws naming every bad key, non-strict reports", "[io]") {
  const fs::path dir = temp_dir();
  gkd::Generator gen(2);
  gkd::NamedTensors<float> saved{{"conv.weight", gkd::randn<float>({2, 3}, gen)},
                                 {"conv.bias", gkd::randn<float>({2}, gen)},
                                 {"bn.running_mean", gkd::randn<float>({4}, gen)},
                                 {"extra", gkd::randn<float>({1}, gen)}};
  gkd::io::save_safetensors(dir / "s.safetensors", saved);

  SECTION("strict and complete: loads into the model's storage, even through a strided view") {
    auto w = gkd::Tensor<float>::zeros({3, 2});
    gkd::NamedTensors<float> targets{{"conv.weight", w.transpose(0, 1)},
                                     {"conv.bias", gkd::Tensor<float>::zeros({2})},
                                     {"bn.running_mean", gkd::Tensor<float>::zeros({4})},
                                     {"extra", gkd::Tensor<float>::zeros({1})}};
    auto report = gkd::io::load_into(dir / "s.safetensors", targets);
    CHECK(report.ok());
    CHECK(report.loaded.size() == 4);
    CHECK(w.transpose(0, 1).to_vector() == saved[0].tensor.to_vector());
    CHECK(targets[2].tensor.to_vector() == saved[2].tensor.to_vector());
  }
  SECTION("strict with missing, unexpected and mis-shaped keys throws naming all, writes nothing") {
    auto bias = gkd::Tensor<float>::zeros({2});
    gkd::NamedTensors<float> targets{{"conv.weight", gkd::Tensor<float>::zeros({3, 3})},
                                     {"conv.bias", bias},
                                     {"head.weight", gkd::Tensor<float>::zeros({1})}};
    try {
      (void)gkd::io::load_into(dir / "s.safetensors", targets);
      FAIL("strict load did not throw");
    } catch (const gkd::Error& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find("s.safetensors") != std::string::npos);
      CHECK(msg.find("missing keys: head.weight") != std::string::npos);
      CHECK(msg.find("unexpected keys: bn.running_mean, extra") != std::string::npos);
      CHECK(msg.find("conv.weight (expected [3, 3], file has [2, 3])") != std::string::npos);
    }
    CHECK(bias.to_vector() == std::vector<float>{0, 0});  // nothing written
  }
  SECTION("non-strict loads what matches and reports the rest") {
    auto bias = gkd::Tensor<float>::zeros({2});
    gkd::NamedTensors<float> targets{{"conv.weight", gkd::Tensor<float>::zeros({3, 3})},
                                     {"conv.bias", bias},
                                     {"head.weight", gkd::Tensor<float>::zeros({1})}};
    auto report = gkd::io::load_into(dir / "s.safetensors", targets, {.strict = false});
    CHECK_FALSE(report.ok());
    CHECK(report.loaded == std::vector<std::string>{"conv.bias"});
    CHECK(report.missing == std::vector<std::string>{"head.weight"});
    CHECK(report.unexpected == std::vector<std::string>{"bn.running_mean", "extra"});
    REQUIRE(report.mismatched.size() == 1);
    CHECK(report.mismatched[0].name == "conv.weight");
    CHECK(report.mismatched[0].found == gkd::Shape{2, 3});
    CHECK(bias.to_vector() == saved[1].tensor.to_vector());
  }
  SECTION("a prefix selects a namespace of the file") {
    gkd::NamedTensors<float> targets{{"weight", gkd::Tensor<float>::zeros({2, 3})},
                                     {"bias", gkd::Tensor<float>::zeros({2})}};
    auto report = gkd::io::load_into(dir / "s.safetensors", targets, {.strict = true, .prefix = "conv."});
    CHECK(report.ok());
    CHECK(targets[1].tensor.to_vector() == saved[1].tensor.to_vector());
  }
  fs::remove_all(dir);
}

TEST_CASE("safetensors writer rejects names it cannot store", "[io]") {
  auto t = gkd::Tensor<float>::zeros({1});
  CHECK_THROWS_WITH(gkd::io::serialize_safetensors<float>({{"a", t}, {"a", t}}), Catch::Contains("'a' appears twice"));
  CHECK_THROWS_WITH(gkd::io::serialize_safetensors<float>({{"__metadata__", t}}), Catch::Contains("reserved"));
  CHECK_THROWS_WITH(gkd::io::serialize_safetensors<float>({{"", t}}), Catch::Contains("empty name"));
  CHECK_THROWS_WITH(gkd::io::serialize_safetensors<float>({{"u", gkd::Tensor<float>()}}), Catch::Contains("undefined"));
  CHECK_THROWS_WITH(gkd::io::serialize_safetensors<float>({{"bad\xff", t}}), Catch::Contains("not valid UTF-8"));
  CHECK_THROWS_WITH(gkd::io::serialize_safetensors<float>({{"w", t}}, {{"k", "\xc0\x80"}}),
                    Catch::Contains("not valid UTF-8"));
  CHECK_THROWS_WITH(gkd::io::load_safetensors<float>("/nonexistent/x.safetensors"),
                    Catch::Contains("/nonexistent/x.safetensors"));
}

TEST_CASE("safetensors parser: malformed headers give clear errors", "[io]") {
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const auto two = bytes_of({1, 2});
  SECTION("sanity: the well-formed file parses") { CHECK(parse_safetensors(make_file("{" + ok_entry + "}", two)).entries.size() == 1); }
  SECTION("file shorter than 8 bytes") { require_error(std::vector<std::byte>(5), {"shorter than the 8-byte"}); }
  SECTION("header length beyond the file") {
    require_error(make_file("{" + ok_entry + "}", two, 1000), {"header length 1000 runs past the end"});
  }
  SECTION("absurd header length is refused before allocating") {
    require_error(make_file("{}", {}, std::uint64_t{1} << 62), {"exceeds the limit"});
  }
  SECTION("not JSON") { require_error(make_file("{\"w\": nope}"), {"header", "byte"}); }
  SECTION("truncated JSON") { require_error(make_file("{\"w\": {\"dtype\": \"F3"), {"unterminated string"}); }
  SECTION("header not starting with {") { require_error(make_file("[1, 2]"), {"does not start with '{'"}); }
  SECTION("garbage after the JSON object") { require_error(make_file("{}x"), {"after the JSON value"}); }
  SECTION("invalid UTF-8 in a key") { require_error(make_file("{\"\xff\":1}"), {"UTF-8"}); }
  SECTION("deep nesting") {
    require_error(make_file("{\"__metadata__\":" + std::string(100, '[') + std::string(100, ']') + "}"), {"nesting"});
  }
  SECTION("duplicate keys") {
    require_error(make_file("{" + ok_entry + "," + ok_entry + "}", two), {"duplicate key \"w\""});
  }
  SECTION("empty tensor name") {
    require_error(make_file(R"({"":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", two), {"empty name"});
  }
  SECTION("entry not an object") { require_error(make_file(R"({"w": 3})"), {"tensor 'w' must be an object"}); }
  SECTION("missing dtype") {
    require_error(make_file(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", two), {"'w'", "no field 'dtype'"});
  }
  SECTION("missing shape") {
    require_error(make_file(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", two), {"'w'", "no field 'shape'"});
  }
  SECTION("missing data_offsets") {
    require_error(make_file(R"({"w":{"dtype":"F32","shape":[2]}})", two), {"'w'", "no field 'data_offsets'"});
  }
  SECTION("unknown field") {
    require_error(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", two),
                  {"unknown field 'x'"});
  }
  SECTION("unknown dtype") {
    require_error(make_file(R"({"w":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}})", two),
                  {"'w'", "unknown or unsupported dtype 'F99'"});
  }
  SECTION("negative shape") {
    require_error(make_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", two),
                  {"'w'", "field 'shape' entry 0", "non-negative integer, got -2"});
  }
  SECTION("fractional shape") {
    require_error(make_file(R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", two), {"'shape' entry 0"});
  }
  SECTION("huge shape whose element count overflows") {
    require_error(make_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", two),
                  {"'w'", "more elements than 64 bits"});
  }
  SECTION("huge shape that fits in 64 bits but not in the data") {
    require_error(make_file(R"({"w":{"dtype":"F64","shape":[1000000000000],"data_offsets":[0,8]}})", two),
                  {"'w'", "data_offsets", "needs 1000000000000 x 8 bytes"});
  }
  SECTION("size above 2^64 in a shape") {
    require_error(make_file(R"({"w":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}})", two),
                  {"'shape' entry 0"});
  }
  SECTION("offsets end before they begin") {
    require_error(make_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", two), {"ends before it begins"});
  }
  SECTION("offsets out of range") {
    require_error(make_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", two),
                  {"'w'", "runs past the data buffer (8 bytes)"});
  }
  SECTION("offsets inconsistent with dtype size and shape") {
    require_error(make_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", two),
                  {"'w'", "spans 8 bytes", "needs 3 x 4 bytes"});
  }
  SECTION("overlapping tensors") {
    require_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                            two),
                  {"overlaps tensor 'a'"});
  }
  SECTION("gap between tensors") {
    require_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", two), {"'a'", "gap of 4 bytes"});
  }
  SECTION("trailing garbage after the last tensor") {
    auto three = bytes_of({1, 2, 3});
    require_error(make_file("{" + ok_entry + "}", three), {"4 bytes of trailing data"});
  }
  SECTION("data_offsets not a pair") {
    require_error(make_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", two), {"[begin, end]"});
  }
  SECTION("metadata value not a string") {
    require_error(make_file(R"({"__metadata__":{"epoch":3}})"), {"__metadata__", "'epoch' must be a string"});
  }
  SECTION("BOOL byte other than 0 or 1") {
    require_error(make_file(R"({"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", {1, 7}),
                  {"'m'", "holds byte 7"});
  }
  SECTION("rank above the limit") {
    std::string shape = "[";
    for (int i = 0; i < 65; ++i) shape += (i ? ",1" : "1");
    require_error(make_file(R"({"w":{"dtype":"F32","shape":)" + shape + R"(],"data_offsets":[0,4]}})", bytes_of({1})),
                  {"rank 65"});
  }
}

TEST_CASE("safetensors parser accepts spec edge cases", "[io]") {
  // Empty file body, zero-element tensors sharing an offset, whitespace padding, escaped names.
  CHECK(parse_safetensors(make_file("{}        ")).entries.empty());
  auto v = parse_safetensors(make_file(R"({"a":{"dtype":"F32","shape":[0,1000],"data_offsets":[0,0]},)"
                                       R"("b\u00e9\n":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}  )"));
  REQUIRE(v.entries.size() == 2);
  CHECK(v.entries[1].name == "b\xc3\xa9\n");
  CHECK(gkd::io::read_tensor<float>(v, v.entries[0]).shape() == gkd::Shape{0, 1000});
}
