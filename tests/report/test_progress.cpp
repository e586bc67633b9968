// SPDX-License-Identifier: Apache-2.0
// ProgressBar on a scripted clock: exact interactive (carriage return) and log (plain lines) output,
// throughput in steps and items, ETA, resumed work, throttling, and bad input.
#include <gkd/report/progress.hpp>

#include <catch2/catch.hpp>
#include <sstream>

#include "support/scratch.hpp"

using gkd::report::ProgressBar;
using gkd::report::ProgressOptions;

namespace {
struct FakeClock {
  double now = 0;
  ProgressOptions options(bool interactive) {
    ProgressOptions o;
    o.interactive = interactive;
    o.bar_width = 8;
    o.clock = [this] { return now; };
    return o;
  }
};
}  // namespace

TEST_CASE("durations read MM:SS, H:MM:SS from an hour, --:-- when unknown", "[report]") {
  using gkd::report::format_duration;
  CHECK(format_duration(0) == "00:00");
  CHECK(format_duration(59.6) == "01:00");
  CHECK(format_duration(754) == "12:34");
  CHECK(format_duration(3725) == "1:02:05");
  CHECK(format_duration(NAN) == "--:--");
  CHECK(format_duration(-1) == "--:--");
}

TEST_CASE("interactive: each update redraws one line in place, finish ends it with the elapsed time", "[report]") {
  FakeClock clock;
  std::ostringstream out;
  auto options = clock.options(true);
  options.redraw_interval_s = 0;
  ProgressBar bar("epoch 1/2", 4, out, options);
  CHECK(bar.interactive());
  CHECK(out.str().empty());

  clock.now = 2;
  bar.update(1, {{"loss", 0.5}});
  const std::string l1 = "epoch 1/2 [##......] 1/4  25% loss=0.5 | 0.50 it/s | ETA 00:06";
  CHECK(out.str() == "\r" + l1);

  clock.now = 4;
  bar.update(2, {{"loss", 0.25}, {"ce", 0.125}});
  const std::string l2 = "epoch 1/2 [####....] 2/4  50% loss=0.25 ce=0.125 | 0.50 it/s | ETA 00:04";
  CHECK(out.str() == "\r" + l1 + "\r" + l2);

  clock.now = 5;
  bar.update(3, {{"loss", 1e-5}});  // a shorter line: spaces wipe the rest of the previous one
  const std::string l3 = "epoch 1/2 [######..] 3/4  75% loss=1e-05 | 0.60 it/s | ETA 00:02";
  REQUIRE(l3.size() < l2.size());
  const std::string pad(l2.size() - l3.size(), ' ');
  CHECK(out.str() == "\r" + l1 + "\r" + l2 + "\r" + l3 + pad);

  clock.now = 8;
  bar.update(4, {{"loss", 0.03125}});
  const std::string l4 = "epoch 1/2 [########] 4/4 100% loss=0.03125 | 0.50 it/s | ETA 00:00";
  bar.finish();
  const std::string last = "epoch 1/2 [########] 4/4 100% loss=0.03125 | 0.50 it/s | 00:08 elapsed";
  CHECK(out.str() == "\r" + l1 + "\r" + l2 + "\r" + l3 + pad + "\r" + l4 + "\r" + last + "\n");
  bar.finish();  // idempotent
  CHECK(out.str().back() == '\n');
  CHECK_THROWS_AS(bar.update(4), gkd::Error);
}

TEST_CASE("interactive redraws are throttled, the final line is not", "[report]") {
  FakeClock clock;
  std::ostringstream out;
  auto options = clock.options(true);
  options.redraw_interval_s = 1.0;
  options.bar_width = 0;
  ProgressBar bar("eval", 10, out, options);
  clock.now = 0.2, bar.update(1);
  clock.now = 0.5, bar.update(2);  // within 1 s of the last redraw: skipped
  clock.now = 1.3, bar.update(3);
  clock.now = 1.4, bar.update(4);
  bar.finish();
  const std::string s = out.str();
  CHECK(std::count(s.begin(), s.end(), '\r') == 3);
  CHECK_THAT(s, Catch::StartsWith("\reval 1/10  10% | 5.00 it/s | ETA 00:02"));
  CHECK_THAT(s, Catch::Contains("\reval 3/10  30%"));
  CHECK_THAT(s, !Catch::Contains(" 2/10 "));
  CHECK_THAT(s, Catch::EndsWith("\reval 4/10  40% | 2.86 it/s | 00:01 elapsed\n"));
}

TEST_CASE("not interactive: plain lines at most every log interval, and a final one", "[report]") {
  FakeClock clock;
  std::ostringstream out;
  auto options = clock.options(false);
  options.log_interval_s = 10;
  options.items_per_step = 8;
  options.unit = "img";
  {
    ProgressBar bar("teacher epoch 2/5", 4, out, options);
    clock.now = 3, bar.update(1, {{"loss", 0.75}});
    CHECK(out.str().empty());
    clock.now = 10, bar.update(2, {{"loss", 0.5}});
    clock.now = 15, bar.update(3, {{"loss", 0.375}});
    clock.now = 20, bar.update(4, {{"loss", 0.25}});
    bar.finish();
  }
  CHECK(out.str() ==
        "teacher epoch 2/5 [####....] 2/4  50% loss=0.5 | 1.60 img/s | ETA 00:10\n"
        "teacher epoch 2/5 [########] 4/4 100% loss=0.25 | 1.60 img/s | ETA 00:00\n"
        "teacher epoch 2/5 [########] 4/4 100% loss=0.25 | 1.60 img/s | 00:20 elapsed\n");
  CHECK(out.str().find('\r') == std::string::npos);
}

TEST_CASE("unknown rate, resumed work, values given at finish, and the default detection", "[report]") {
  FakeClock clock;
  std::ostringstream out;
  auto options = clock.options(true);
  options.initial_step = 100;
  options.bar_width = 4;
  ProgressBar bar("distill", 200, out, options);
  bar.update(100);
  CHECK(out.str() == "\rdistill [##..] 100/200  50% | - it/s | ETA --:--");
  clock.now = 10;
  bar.update(110);
  CHECK_THAT(out.str(), Catch::EndsWith("\rdistill [##..] 110/200  55% | 1.00 it/s | ETA 01:30"));
  clock.now = 100;
  bar.update(200);
  bar.finish({{{"dice", 0.8125}}});
  CHECK_THAT(out.str(), Catch::EndsWith("\rdistill [####] 200/200 100% dice=0.8125 | 1.00 it/s | 01:40 elapsed\n"));

  std::ostringstream log;
  CHECK_FALSE(ProgressBar("x", 1, log).interactive());  // not a terminal stream
  // A bar dropped unfinished (an exception mid-epoch) ends its interactive line.
  std::ostringstream dropped;
  {
    ProgressBar b("x", 5, dropped, clock.options(true));
    b.update(1);
  }
  CHECK_THAT(dropped.str(), Catch::EndsWith("\n"));
}

TEST_CASE("bad steps and totals throw naming the bar", "[report]") {
  std::ostringstream out;
  using gkd::test::error_of;
  CHECK_THAT(error_of([&] { ProgressBar("train", 0, out); }), Catch::Contains("ProgressBar") && Catch::Contains("train"));
  ProgressBar bar("train", 3, out);
  CHECK_THAT(error_of([&] { bar.update(4); }), Catch::Contains("ProgressBar::update") && Catch::Contains("step 4"));
  CHECK_THROWS_AS(bar.update(-1), gkd::Error);
}
