// The optimizing CUDA engine (TensorRT's role): build an engine for one model on this GPU
// (graph fusion, fp16, per-layer kernel tuning, lifetime-planned memory), save/load it as a
// file, and run it through contexts (one per CUDA stream) with the forward pass as a CUDA graph.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "posert/error.h"

namespace posert {

struct BuildOptions {
  std::string precision = "fp16";  // fp32 | fp16
  int max_batch = 1;
  std::string timing_cache;        // file; empty: keep timings in memory only
  bool verbose = false;            // progress on stderr
};

struct EngineTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // per image (batch dim 1)
  std::string dtype;           // "f32" | "i32" (host-visible type of inputs/outputs)
};

class Engine {
 public:
  // Imports models_dir/<model>.json, cuts it at the model's heads, optimizes and tunes it.
  static std::shared_ptr<Engine> build(const std::string& model, const std::string& models_dir, const BuildOptions& opt);
  // Reads and checks an engine file; refuses one built for another GPU or CUDA version.
  static std::shared_ptr<Engine> load(const std::string& path);
  void save(const std::string& path) const;

  const std::string& model() const;
  int max_batch() const;
  std::string precision() const;
  std::vector<EngineTensorInfo> inputs() const;
  std::vector<EngineTensorInfo> outputs() const;
  int64_t arena_bytes() const;       // activation memory of one context
  int64_t tensor_sum_bytes() const;  // what one buffer per tensor would need
  int64_t weight_bytes() const;
  // Layer list with tactics (the listing `posert inspect --engine` prints).
  std::string describe() const;

  struct Impl;
  std::shared_ptr<Impl> impl;
};

// The builder side of the API (TensorRT's IBuilder role): holds the build options and turns a
// model into an engine for this GPU. Engine::build(model, dir, options) is the one-call form.
class Builder {
 public:
  explicit Builder(BuildOptions options = {}) : options_(std::move(options)) {}
  BuildOptions& options() { return options_; }
  const BuildOptions& options() const { return options_; }
  // Imports models_dir/<model>.json, cuts it at the model's heads, fuses, plans memory and tunes
  // every convolution on this GPU. Throws posert::Error (no GPU, unknown model, bad files).
  std::shared_ptr<Engine> build(const std::string& model, const std::string& models_dir) const {
    return Engine::build(model, models_dir, options_);
  }

 private:
  BuildOptions options_;
};

class Context {
 public:
  // cuda_stream: a cudaStream_t to run on, or null for a stream owned by the context.
  explicit Context(std::shared_ptr<Engine> engine, void* cuda_stream = nullptr);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  void enqueue(int batch);  // asynchronous on stream()
  void run(int batch);      // enqueue, then wait
  void synchronize();
  void* stream() const;
  void* input(int i) const;   // device buffers: max_batch images back to back
  void* output(int i) const;
  void set_use_graphs(bool on);
  // Advances whenever device buffers that enqueue()'s launches use are reallocated (the cuDNN
  // workspace grows for a new batch size, ...): a CUDA graph the caller captured around enqueue()
  // before then points at freed memory and must be captured again.
  uint64_t capture_epoch() const;
  // Synchronous helpers; bytes must not exceed the buffer.
  void upload_input(int i, const void* host, size_t bytes);
  void download_output(int i, void* host, size_t bytes);
  // Per-layer GPU time in microseconds, as the tuner times it: each layer alone, launched up to 8
  // times one after the other in a CUDA graph, the graph's time divided by the launches (median
  // of 9 graph launches after warm-up), so host-side library work does not count and each launch
  // overlaps the end of the one before it as in the engine's graph. Overwrites activations.
  std::vector<std::pair<std::string, double>> profile_layers(int batch);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// True when this build has the CUDA backend and a GPU is usable; otherwise `why` says why not.
bool cuda_available(std::string* why);

}  // namespace posert
