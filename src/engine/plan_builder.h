// Lowers an optimized Graph (see passes/passes.h optimize_for_engine) to an EnginePlan: device
// storage per tensor (fp16 activations in fp16 engines; inputs keep their type, outputs are f32),
// Reshape as views of one buffer, arena offsets from tensor lifetimes, and the weight blob.
// Tactics start at 0; the CUDA tuner fills them in.
#pragma once
#include "engine/engine_plan.h"
#include "ir/graph.h"

namespace posert {

// Throws posert::Error naming the node when the graph has an op the CUDA runtime cannot run.
EnginePlan build_plan(const Graph& g, const std::string& model, Precision precision, int max_batch);

// Arena offsets from tensor lifetimes. Possible: before tuning, every fusion the tuner may choose
// keeps what its kernel reads alive until it runs (the plan builder's choice); Chosen: after
// tuning, only the fusions the plan's tactics use do, so the arena holds no bytes kept for
// fusions the tuner did not take. Sets every activation's offset, arena_bytes and
// activation_sum_bytes.
enum class ArenaFusions { Possible, Chosen };
void assign_arena(EnginePlan& p, ArenaFusions which);

// Ops the CUDA runtime executes.
bool cuda_runtime_supports(OpKind op);

}  // namespace posert
