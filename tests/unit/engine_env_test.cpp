// The CUDA engine's environment switches ($POSERT_STREAMS, $POSERT_PDL, $POSERT_TUNE_LOG,
// $POSERT_DECODE_CELLS_PER_LANE, $POSERT_DECODE_EXHAUSTIVE, $POSERT_DECODE_STAGED,
// $POSERT_DECODE_POLL, $POSERT_POOL_SPIN_US): defaults when unset, the accepted values, and a
// usage error naming the variable for anything else.
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <string>

#include "engine/engine_env.h"
#include "pose/cpu_decode.h"
#include "pose/model_spec.h"
#include "support/test_support.h"

namespace posert {
namespace {

using test::ScopedEnv;

void expect_usage_error(const std::function<void()>& f, const std::string& name) {
  try {
    f();
    ADD_FAILURE() << name << " accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
}

// An integer variable: unset and empty give `unset`, each of `ok` its number, each of `bad` a
// usage error naming the variable.
void expect_int(const char* name, int unset, std::initializer_list<const char*> ok,
                std::initializer_list<const char*> bad, int (*read)()) {
  for (const char* v : {static_cast<const char*>(nullptr), ""}) {
    ScopedEnv e(name, v);
    EXPECT_EQ(read(), unset) << name << (v ? " empty" : " unset");
  }
  for (const char* v : ok) {
    ScopedEnv e(name, v);
    EXPECT_EQ(read(), std::atoi(v)) << name << "=" << v;
  }
  for (const char* v : bad) {
    ScopedEnv e(name, v);
    expect_usage_error([read] { read(); }, name);
  }
}

TEST(EngineEnv, Streams) {
  expect_int("POSERT_STREAMS", 1, {"1", "4", "8"}, {"0", "9", "-2", "four", "4x", " 4", "99999999999"}, streams_from_env);
}

TEST(EngineEnv, DecodeCellsPerLane) {
  expect_int("POSERT_DECODE_CELLS_PER_LANE", 0, {"1", "9", "4096"}, {"0", "4097", "-3", "nine", "9 ", "99999999999"},
             decode_cells_per_lane_from_env);
}

TEST(EngineEnv, PoolSpin) {
  expect_int("POSERT_POOL_SPIN_US", 200, {"0", "50", "100000"}, {"-1", "100001", "fast", "50us", " 5"},
             [] { return pool_spin_us_from_env(200); });
  ScopedEnv e("POSERT_POOL_SPIN_US", nullptr);
  EXPECT_EQ(pool_spin_us_from_env(7), 7);
}

// The CPU decoders read it when they are made: a bad value is refused there, by name.
TEST(EngineEnv, PoolSpinReachesTheCpuDecoders) {
  test::ScopedEnv e("POSERT_POOL_SPIN_US", "soon");
  expect_usage_error([] { CpuHeatmapDecoder d(1); }, "POSERT_POOL_SPIN_US");
  expect_usage_error([] { CpuPoseDecoder d(find_model_spec("movenet-lightning"), {}, 1); }, "POSERT_POOL_SPIN_US");
}

// A 0/1 switch: unset and empty give `unset`, "1" true, "0" false, anything else a usage error
// naming the variable.
void expect_switch(const char* name, bool unset, bool (*read)()) {
  for (const char* v : {static_cast<const char*>(nullptr), ""}) {
    ScopedEnv e(name, v);
    EXPECT_EQ(read(), unset) << name << (v ? " empty" : " unset");
  }
  {
    ScopedEnv e(name, "1");
    EXPECT_TRUE(read()) << name;
  }
  {
    ScopedEnv e(name, "0");
    EXPECT_FALSE(read()) << name;
  }
  for (const char* bad : {"off", "on", "yes", "2", "00", "01", "true", " 1"}) {
    ScopedEnv e(name, bad);
    expect_usage_error([read] { read(); }, name);
  }
}

TEST(EngineEnv, ProgrammaticLaunch) { expect_switch("POSERT_PDL", true, pdl_allowed_by_env); }

TEST(EngineEnv, TuneLog) { expect_switch("POSERT_TUNE_LOG", false, tune_log_from_env); }

TEST(EngineEnv, DecodeExhaustive) { expect_switch("POSERT_DECODE_EXHAUSTIVE", false, decode_exhaustive_from_env); }
TEST(EngineEnv, DecodeStaged) { expect_switch("POSERT_DECODE_STAGED", true, decode_staged_from_env); }
TEST(EngineEnv, DecodePoll) { expect_switch("POSERT_DECODE_POLL", true, decode_poll_from_env); }

}  // namespace
}  // namespace posert
