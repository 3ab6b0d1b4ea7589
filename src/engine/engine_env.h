// The CUDA engine's and the decoders' environment switches, parsed strictly (a typo is a usage
// error that names the variable, not a silent default). Plain C++, so CPU builds test them too.
#pragma once
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

#include "posert/error.h"

namespace posert {

// $NAME as an integer in lo..hi; unset or empty: `unset`; anything else is a usage error that
// names the variable and says what was expected (`what`: "streams", "cells").
inline int int_from_env(const char* name, int lo, int hi, int unset, const char* what) {
  const char* env = std::getenv(name);
  if (!env || !*env) return unset;
  int n = 0;
  const char* end = env + std::strlen(env);
  const auto [ptr, ec] = std::from_chars(env, end, n);
  if (ec != std::errc() || ptr != end || n < lo || n > hi)
    throw Error(std::string(name) + "='" + env + "': expected a number of " + what + " from " + std::to_string(lo) + " to " +
                    std::to_string(hi),
                ErrorKind::Usage);
  return n;
}

// $POSERT_STREAMS: how many streams a context's forward pass may use, 1..8; unset or empty: 1.
inline int streams_from_env() { return int_from_env("POSERT_STREAMS", 1, 8, 1, "streams"); }

// $NAME as a switch: "1" or "0"; unset or empty: `unset`; anything else is a usage error that
// names the variable and says what each value does (`on`, `off`).
inline bool switch_from_env(const char* name, bool unset, const char* on, const char* off) {
  const char* env = std::getenv(name);
  if (!env || !*env) return unset;
  if (std::strcmp(env, "1") == 0) return true;
  if (std::strcmp(env, "0") == 0) return false;
  throw Error(std::string(name) + "='" + env + "': expected 1 (" + on + ") or 0 (" + off + ")", ErrorKind::Usage);
}

// $POSERT_PDL: 0 turns programmatic dependent launch off, 1 (or unset/empty) leaves it on where the
// GPU supports it.
inline bool pdl_allowed_by_env() {
  return switch_from_env("POSERT_PDL", true, "on where the GPU supports it", "off");
}

// $POSERT_TUNE_LOG: 1 makes the tuner print every convolution layer's tactic timings and its fusion
// and grouping timings; 0, unset or empty: quiet.
inline bool tune_log_from_env() {
  return switch_from_env("POSERT_TUNE_LOG", false, "print the tuner's fusion timings", "quiet");
}

// $POSERT_DECODE_CELLS_PER_LANE: how many cells each lane of the MoveNet single-pose GPU decoder
// searches (fewer blocks per item for more); unset or empty: 0, chosen from the batch (a knob for
// measuring that choice, not a setting users need).
inline int decode_cells_per_lane_from_env() { return int_from_env("POSERT_DECODE_CELLS_PER_LANE", 1, 4096, 0, "cells"); }

// $POSERT_DECODE_EXHAUSTIVE: 1 makes the MoveNet MultiPose GPU decoder compute every cell's
// weighted keypoint value, not only those inside the person's box, and the single-pose decoder
// compute every cell's exact value, not only those its estimate screen passes; 0, unset or empty:
// box and screen (a knob for tests and A/B timing, not a setting users need).
inline bool decode_exhaustive_from_env() {
  return switch_from_env("POSERT_DECODE_EXHAUSTIVE", false, "every cell's exact value computed",
                         "MultiPose: the cells of the person's box; single pose: the screened cells");
}

// $POSERT_DECODE_STAGED: 0 makes the MoveNet single-pose GPU decoder load its heat values tile by
// tile (the path GPUs before sm_90 take) where it would copy the block's whole chunk into shared
// memory at the start; 1, unset or empty: staged where the GPU has the copy engine (a knob for
// tests and A/B timing, not a setting users need).
inline bool decode_staged_from_env() {
  return switch_from_env("POSERT_DECODE_STAGED", true, "the chunk staged whole on sm_90+", "tile by tile");
}

// $POSERT_DECODE_POLL: 0 makes the MoveNet single-pose GPU decoder gather its blocks' results
// through a global counter (the last block to count assembles the pose) where it would have each
// item's last block (in x) wait for the other blocks' keys (only where an item has at most 8
// blocks and every block of the launch can be resident at once); 1, unset or empty: wait where that
// holds (a knob for tests and A/B timing).
inline bool decode_poll_from_env() {
  return switch_from_env("POSERT_DECODE_POLL", true, "each item's last block waits for the others' keys",
                         "the last block to count assembles the pose");
}

// $POSERT_POOL_SPIN_US: how long the CPU decoders' idle threads spin before they sleep, 0..100000
// microseconds (0: sleep at once, a futex wake-up per thread per job); unset or empty: `unset`
// (the decoders pass ThreadPool::kDefaultSpinUs). A knob for A/B timing of the CPU baseline.
inline int pool_spin_us_from_env(int unset) {
  return int_from_env("POSERT_POOL_SPIN_US", 0, 100000, unset, "microseconds");
}

}  // namespace posert
