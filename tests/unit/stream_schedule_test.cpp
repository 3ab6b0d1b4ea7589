// schedule_streams: which stream each layer gets and which earlier layers it waits for, on small
// hand-made plans whose answers follow from the rules (chains stay on one stream, a second branch
// takes an idle stream, arena reuse adds waits).
#include <gtest/gtest.h>

#include "engine/stream_schedule.h"

namespace posert {
namespace {

// Tensors: id, arena offset and size; layers: inputs -> outputs.
EnginePlan plan(const std::vector<std::pair<int64_t, int64_t>>& tensors,
                const std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>>& layers) {
  EnginePlan p;
  for (const auto& [off, bytes] : tensors) {
    PlanTensor t;
    t.offset = off;
    t.bytes = bytes;
    p.tensors.push_back(t);
  }
  for (const auto& [in, out] : layers) {
    PlanLayer l;
    l.op = OpKind::Relu;
    l.inputs = in;
    l.outputs = out;
    p.layers.push_back(l);
  }
  return p;
}

auto never = [](const PlanLayer&) { return false; };

TEST(StreamSchedule, ChainStaysOnOneStream) {
  const EnginePlan p = plan({{0, 64}, {64, 64}, {128, 64}, {192, 64}}, {{{0}, {1}}, {{1}, {2}}, {{2}, {3}}});
  const StreamSchedule s = schedule_streams(p, 4, never);
  EXPECT_EQ(s.streams, 1);
  EXPECT_EQ(s.stream, (std::vector<int>{0, 0, 0}));
  for (const auto& w : s.waits) EXPECT_TRUE(w.empty());
}

TEST(StreamSchedule, BranchesRunOnTwoStreamsAndJoin) {
  // 0: t0 -> t1; 1: t1 -> t2; 2: t1 -> t3 (a second branch); 3: t2, t3 -> t4.
  const EnginePlan p = plan({{0, 64}, {64, 64}, {128, 64}, {192, 64}, {256, 64}},
                            {{{0}, {1}}, {{1}, {2}}, {{1}, {3}}, {{2, 3}, {4}}});
  const StreamSchedule s = schedule_streams(p, 4, never);
  EXPECT_EQ(s.streams, 2);
  // Layer 2 cannot continue stream 0 (its last layer is 1, not its producer 0): it takes stream 1
  // and waits for layer 0. Layer 3 continues stream 1 (after its producer 2) and waits for layer 1.
  EXPECT_EQ(s.stream, (std::vector<int>{0, 0, 1, 1}));
  EXPECT_EQ(s.waits[2], (std::vector<int>{0}));
  EXPECT_EQ(s.waits[3], (std::vector<int>{1}));
  EXPECT_TRUE(s.signals[0] && s.signals[1] && s.signals[3]);
  EXPECT_EQ(s.last_on_stream[1], 3);
  // One stream: the same plan runs in order with no waits.
  const StreamSchedule one = schedule_streams(p, 1, never);
  EXPECT_EQ(one.streams, 1);
  for (const auto& w : one.waits) EXPECT_TRUE(w.empty());
}

TEST(StreamSchedule, ArenaReuseAddsWaits) {
  // The branch plan of the previous test, but the branch's output t3 reuses t2's bytes (as a
  // planner may when it assumes sequential order): layer 2 now also depends on layer 1 (write
  // after write), so it continues stream 0 behind layer 1 instead of running beside it.
  const EnginePlan p = plan({{0, 64}, {64, 64}, {128, 64}, {128, 64}, {256, 64}},
                            {{{0}, {1}}, {{1}, {2}}, {{1}, {3}}, {{3}, {4}}});
  const StreamSchedule s = schedule_streams(p, 4, never);
  EXPECT_EQ(s.stream, (std::vector<int>{0, 0, 0, 0}));
}

TEST(StreamSchedule, WriteAfterReadKeepsOrder) {
  // Layer 2 reads only the input t0, so it is independent of layers 0 and 1 and runs beside them...
  const EnginePlan free_plan = plan({{0, 64}, {64, 64}, {128, 64}, {192, 64}}, {{{0}, {1}}, {{1}, {2}}, {{0}, {3}}});
  const StreamSchedule f = schedule_streams(free_plan, 4, never);
  EXPECT_EQ(f.stream, (std::vector<int>{0, 0, 1}));
  EXPECT_TRUE(f.waits[2].empty());
  // ...unless its output reuses t1's bytes, which layer 1 reads: then it waits for layer 1.
  const EnginePlan reuse = plan({{0, 64}, {64, 64}, {128, 64}, {64, 64}}, {{{0}, {1}}, {{1}, {2}}, {{0}, {3}}});
  const StreamSchedule r = schedule_streams(reuse, 4, never);
  EXPECT_EQ(r.stream, (std::vector<int>{0, 0, 0}));
}

TEST(StreamSchedule, SerializedLayersStayInOrderOnStreamZero) {
  const EnginePlan p = plan({{0, 64}, {64, 64}, {128, 64}, {192, 64}, {256, 64}},
                            {{{0}, {1}}, {{1}, {2}}, {{1}, {3}}, {{2, 3}, {4}}});
  const StreamSchedule s = schedule_streams(p, 4, [](const PlanLayer&) { return true; });
  EXPECT_EQ(s.streams, 1);
  EXPECT_EQ(s.stream, (std::vector<int>{0, 0, 0, 0}));
}

}  // namespace
}  // namespace posert
