// Per-layer kernel auto-tuning: times every applicable tactic of each convolution on this GPU
// (PoseRT's kernels and cuDNN's algorithms; CUDA events around a CUDA graph of the layer, median
// of repeated launches on random data) and keeps the fastest.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "engine/cuda/device_engine.h"
#include "tune/timing_cache.h"

namespace posert::cuda {

struct LayerTiming {
  std::string layer;
  std::vector<std::pair<int, double>> tactic_us;  // every tactic timed, with its median time
  std::vector<std::pair<int, std::string>> skipped;  // candidates cuDNN refused at run time, and why
  int chosen = 0;
  bool from_cache = false;
};

// Tunes at the engine's max batch; writes the tactics into the engine's plan, records the cuDNN
// version there when a layer uses cuDNN (0 otherwise), plans the arena again for the fusions
// chosen (assign_arena), and leaves the engine holding only the weight forms the chosen tactics
// read.
std::vector<LayerTiming> tune_engine(DeviceEngine& engine, TimingCache& cache, bool verbose);

// Times tactic t of layer i as the runtime runs it: two launches outside capture (cuDNN builds its
// plans there), then CUDA events around a CUDA graph of up to 8 launches of the layer one after
// the other, median of 9, divided by the launches, in microseconds (see tuner.cpp).
// Nothing (the reason in *why) when a cuDNN tactic fails for the layer or cannot be captured.
// The tuner and `posert bench --profile` both use it.
std::optional<double> time_tactic(DeviceContext& ctx, size_t i, int batch, int t, cudaEvent_t e0, cudaEvent_t e1,
                                  std::string* why);

// Fills every non-weight tensor of the context's arena with random data in [-1, 1] (int32 tensors: 0..255).
void fill_random(const DeviceEngine& engine, DeviceContext& ctx, unsigned seed);

}  // namespace posert::cuda
