// The CUDA engine's environment switches ($POSERT_STREAMS, $POSERT_PDL, $POSERT_TUNE_LOG,
// $POSERT_DECODE_CELLS_PER_LANE, $POSERT_DECODE_EXHAUSTIVE): defaults when unset,
// the accepted values, and a usage error naming the variable for anything else.
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <string>

#include "engine/engine_env.h"

namespace posert {
namespace {

// Sets `name` for the test's scope and restores what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) had_ = true, old_ = old;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_, old_.c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

void expect_usage_error(const std::function<void()>& f, const std::string& name) {
  try {
    f();
    ADD_FAILURE() << name << " accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
}

TEST(EngineEnv, Streams) {
  {
    ScopedEnv e("POSERT_STREAMS", nullptr);
    EXPECT_EQ(streams_from_env(), 1);
  }
  {
    ScopedEnv e("POSERT_STREAMS", "");
    EXPECT_EQ(streams_from_env(), 1);
  }
  for (const char* ok : {"1", "4", "8"}) {
    ScopedEnv e("POSERT_STREAMS", ok);
    EXPECT_EQ(streams_from_env(), std::atoi(ok));
  }
  for (const char* bad : {"0", "9", "-2", "four", "4x", " 4", "99999999999"}) {
    ScopedEnv e("POSERT_STREAMS", bad);
    expect_usage_error([] { streams_from_env(); }, "POSERT_STREAMS");
  }
}

TEST(EngineEnv, ProgrammaticLaunch) {
  {
    ScopedEnv e("POSERT_PDL", nullptr);
    EXPECT_TRUE(pdl_allowed_by_env());
  }
  {
    ScopedEnv e("POSERT_PDL", "1");
    EXPECT_TRUE(pdl_allowed_by_env());
  }
  {
    ScopedEnv e("POSERT_PDL", "0");
    EXPECT_FALSE(pdl_allowed_by_env());
  }
  for (const char* bad : {"off", "2", "00", "true"}) {
    ScopedEnv e("POSERT_PDL", bad);
    expect_usage_error([] { pdl_allowed_by_env(); }, "POSERT_PDL");
  }
}

TEST(EngineEnv, TuneLog) {
  for (const char* off : {"", "0"}) {
    ScopedEnv e("POSERT_TUNE_LOG", off);
    EXPECT_FALSE(tune_log_from_env());
  }
  {
    ScopedEnv e("POSERT_TUNE_LOG", nullptr);
    EXPECT_FALSE(tune_log_from_env());
  }
  {
    ScopedEnv e("POSERT_TUNE_LOG", "1");
    EXPECT_TRUE(tune_log_from_env());
  }
  ScopedEnv e("POSERT_TUNE_LOG", "yes");
  expect_usage_error([] { tune_log_from_env(); }, "POSERT_TUNE_LOG");
}

TEST(EngineEnv, DecodeCellsPerLane) {
  {
    ScopedEnv e("POSERT_DECODE_CELLS_PER_LANE", nullptr);
    EXPECT_EQ(decode_cells_per_lane_from_env(), 0);
  }
  {
    ScopedEnv e("POSERT_DECODE_CELLS_PER_LANE", "");
    EXPECT_EQ(decode_cells_per_lane_from_env(), 0);
  }
  for (const char* ok : {"1", "9", "4096"}) {
    ScopedEnv e("POSERT_DECODE_CELLS_PER_LANE", ok);
    EXPECT_EQ(decode_cells_per_lane_from_env(), std::atoi(ok));
  }
  for (const char* bad : {"0", "4097", "-3", "nine", "9 ", "99999999999"}) {
    ScopedEnv e("POSERT_DECODE_CELLS_PER_LANE", bad);
    expect_usage_error([] { decode_cells_per_lane_from_env(); }, "POSERT_DECODE_CELLS_PER_LANE");
  }
}

TEST(EngineEnv, DecodeExhaustive) {
  for (const char* off : {"", "0"}) {
    ScopedEnv e("POSERT_DECODE_EXHAUSTIVE", off);
    EXPECT_FALSE(decode_exhaustive_from_env());
  }
  {
    ScopedEnv e("POSERT_DECODE_EXHAUSTIVE", nullptr);
    EXPECT_FALSE(decode_exhaustive_from_env());
  }
  {
    ScopedEnv e("POSERT_DECODE_EXHAUSTIVE", "1");
    EXPECT_TRUE(decode_exhaustive_from_env());
  }
  for (const char* bad : {"yes", "2", "01", "on"}) {
    ScopedEnv e("POSERT_DECODE_EXHAUSTIVE", bad);
    expect_usage_error([] { decode_exhaustive_from_env(); }, "POSERT_DECODE_EXHAUSTIVE");
  }
}

}  // namespace
}  // namespace posert
