// Public Engine/Context API over the CUDA runtime (src/engine/cuda). In a build without CUDA
// every entry point says so; cuda_available() tells callers beforehand.
#include "posert/engine.h"

#include "engine/engine_builder.h"
#include "engine/engine_file.h"

#if POSERT_HAVE_CUDA
#include <cuda_runtime.h>

#include <algorithm>

#include "engine/cuda/device_engine.h"
#include "engine/cuda/tuner.h"
#include "kernels/cuda/cuda_kernels.h"
#endif

namespace posert {

struct Engine::Impl {
#if POSERT_HAVE_CUDA
  std::shared_ptr<cuda::DeviceEngine> device;
#endif
  EnginePlan& plan() const {
#if POSERT_HAVE_CUDA
    return device->mutable_plan();
#else
    throw Error("built without CUDA");
#endif
  }
};

struct Context::Impl {
#if POSERT_HAVE_CUDA
  std::shared_ptr<Engine> engine;
  std::unique_ptr<cuda::DeviceContext> ctx;
#endif
};

bool cuda_available(std::string* why) {
#if POSERT_HAVE_CUDA
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    if (why)
      *why = std::string("no usable NVIDIA GPU (cudaGetDeviceCount: ") + (e != cudaSuccess ? cudaGetErrorString(e) : "no device") +
             ")";
    return false;
  }
  return true;
#else
  if (why) *why = "this build has no CUDA backend";
  return false;
#endif
}

#if POSERT_HAVE_CUDA

namespace {
void require_gpu() {
  std::string why;
  if (!cuda_available(&why)) throw Error("the CUDA backend cannot run: " + why + "; use --backend cpu");
}
EngineTensorInfo info(const PlanTensor& t) {
  return {t.name, t.shape, t.storage == Storage::I32 ? "i32" : "f32"};
}
}  // namespace

std::shared_ptr<Engine> Engine::build(const std::string& model, const std::string& models_dir, const BuildOptions& opt) {
  require_gpu();
  PlannedEngine pe = plan_engine(model, models_dir, parse_precision(opt.precision), opt.max_batch);
  pe.plan.target = cuda::current_target();
  auto e = std::make_shared<Engine>();
  e->impl = std::make_shared<Impl>();
  e->impl->device = std::make_shared<cuda::DeviceEngine>(std::move(pe.plan));
  TimingCache cache(opt.timing_cache);
  cuda::tune_engine(*e->impl->device, cache, opt.verbose);
  cache.save();
  if (opt.verbose) {
    const EnginePlan& p = e->impl->device->plan();
    int pairs = 0, fused = 0, groups = 0, chains = 0, chains_fused = 0, expansions = 0, expansions_fused = 0, heads = 0,
        heads_fused = 0, stems = 0, stems_fused = 0;
    for (size_t i = 0; i < p.layers.size(); ++i) {
      pairs += dwpw_pair_possible(p, i);
      fused += dwpw_fused(p, i);
      expansions += pwdw_pair_possible(p, i);
      expansions_fused += pwdw_fused(p, i);
      heads += dwpwpw_possible(p, i);
      heads_fused += dwpwpw_fused(p, i);
      groups += !group_of(p, i).empty();
      chains += chain_conv_possible(p, i);
      chains_fused += chain_fused(p, i);
      stems += stem_possible(p, i);
      stems_fused += stem_fused(p, i);
    }
    std::fprintf(stderr,
                 "tuned %d layer(s), %d from the timing cache; %d of %d 1x1 expansion + depthwise pairs fused; %d of %d "
                 "depthwise + pointwise pairs fused; %d of %d head branches (depthwise + 1x1 + 1x1) fused; %d of %zu "
                 "horizontal groups launched as one; %d of %d elementwise chains computed by the convolution after them; %d of %d "
                 "stems (3x3 convolution + depthwise + 1x1) fused\n",
                 cache.hits + cache.misses, cache.hits, expansions_fused, expansions, fused, pairs, heads_fused, heads, groups,
                 candidate_groups(p).size(), chains_fused, chains, stems_fused, stems);
  }
  return e;
}

std::shared_ptr<Engine> Engine::load(const std::string& path) {
  EnginePlan plan = read_engine_file(path);
  require_gpu();
  const std::string why = cuda::incompatibility(plan, "engine file '" + path + "'");
  if (!why.empty()) throw Error(why);
  auto e = std::make_shared<Engine>();
  e->impl = std::make_shared<Impl>();
  e->impl->device = std::make_shared<cuda::DeviceEngine>(std::move(plan));
  return e;
}

void Engine::save(const std::string& path) const { write_engine_file(path, impl->plan()); }
const std::string& Engine::model() const { return impl->plan().model; }
int Engine::max_batch() const { return impl->plan().max_batch; }
std::string Engine::precision() const { return precision_name(impl->plan().precision); }
int64_t Engine::arena_bytes() const { return impl->plan().arena_bytes; }
int64_t Engine::tensor_sum_bytes() const { return impl->plan().activation_sum_bytes; }
int64_t Engine::weight_bytes() const { return impl->device->weight_bytes(); }

std::vector<EngineTensorInfo> Engine::inputs() const {
  std::vector<EngineTensorInfo> r;
  for (int t : impl->plan().inputs) r.push_back(info(impl->plan().tensors[t]));
  return r;
}
std::vector<EngineTensorInfo> Engine::outputs() const {
  std::vector<EngineTensorInfo> r;
  for (int t : impl->plan().outputs) r.push_back(info(impl->plan().tensors[t]));
  return r;
}

std::string Engine::describe() const { return describe_plan(impl->plan()); }

Context::Context(std::shared_ptr<Engine> engine, void* stream) : impl_(std::make_unique<Impl>()) {
  impl_->engine = std::move(engine);
  impl_->ctx = std::make_unique<cuda::DeviceContext>(impl_->engine->impl->device, static_cast<cudaStream_t>(stream));
}
Context::~Context() = default;
void Context::enqueue(int batch) { impl_->ctx->enqueue(batch); }
void Context::run(int batch) {
  impl_->ctx->enqueue(batch);
  impl_->ctx->synchronize();
}
void Context::synchronize() { impl_->ctx->synchronize(); }
void* Context::stream() const { return impl_->ctx->stream(); }
uint64_t Context::capture_epoch() const { return impl_->ctx->capture_epoch(); }
void Context::set_use_graphs(bool on) { impl_->ctx->set_use_graphs(on); }

void* Context::input(int i) const {
  const auto& p = impl_->engine->impl->plan();
  if (i < 0 || i >= static_cast<int>(p.inputs.size())) throw Error("engine input index out of range");
  return impl_->ctx->tensor(p.inputs[i]);
}
void* Context::output(int i) const {
  const auto& p = impl_->engine->impl->plan();
  if (i < 0 || i >= static_cast<int>(p.outputs.size())) throw Error("engine output index out of range");
  return impl_->ctx->tensor(p.outputs[i]);
}
void Context::upload_input(int i, const void* host, size_t bytes) {
  const auto& p = impl_->engine->impl->plan();
  if (i < 0 || i >= static_cast<int>(p.inputs.size()) || bytes > static_cast<size_t>(p.tensors[p.inputs[i]].bytes))
    throw Error("upload_input: index or size out of range");
  cuda::check(cudaMemcpyAsync(input(i), host, bytes, cudaMemcpyHostToDevice, impl_->ctx->stream()), "upload");
  impl_->ctx->synchronize();
}
void Context::download_output(int i, void* host, size_t bytes) {
  const auto& p = impl_->engine->impl->plan();
  if (i < 0 || i >= static_cast<int>(p.outputs.size()) || bytes > static_cast<size_t>(p.tensors[p.outputs[i]].bytes))
    throw Error("download_output: index or size out of range");
  cuda::check(cudaMemcpyAsync(host, output(i), bytes, cudaMemcpyDeviceToHost, impl_->ctx->stream()), "download");
  impl_->ctx->synchronize();
}

std::vector<std::pair<std::string, double>> Context::profile_layers(int batch) {
  const auto& p = impl_->engine->impl->plan();
  std::vector<std::pair<std::string, double>> r;
  // Two events, destroyed however this returns.
  struct Events {
    cudaEvent_t e[2] = {nullptr, nullptr};
    Events() {
      try {
        for (auto& x : e) cuda::check(cudaEventCreate(&x), "cudaEventCreate");
      } catch (...) {
        release();
        throw;
      }
    }
    ~Events() { release(); }
    void release() {
      for (auto& x : e)
        if (x) cudaEventDestroy(x), x = nullptr;
    }
  };
  Events ev;
  cudaEvent_t e0 = ev.e[0], e1 = ev.e[1];
  // Each layer alone in a CUDA graph of repeated launches, as the tuner times it (time_tactic):
  // launched directly, cuDNN's host-side work per call (tens of microseconds) would hide the GPU time.
  // A depthwise layer fused into the pointwise layer after it launches nothing: the pair is one
  // entry, "DepthwiseConv2D+Conv2D"; a horizontal group is one entry at its leader ("...-group");
  // so is an elementwise chain computed by the convolution after it ("ElementwiseChain+Conv2D") and
  // a 1x1 expansion computed by the depthwise layer after it ("Conv2D+DepthwiseConv2D"), a head
  // branch computed by its last layer ("DepthwiseConv2D+Conv2D+Conv2D") and a stem computed by its
  // 1x1 layer ("Conv2D+DepthwiseConv2D+Conv2D").
  for (size_t i = 0; i < p.layers.size(); ++i) {
    if (launches_nothing(p.layers[i].op, p.layers[i].tactic)) continue;
    std::string why;
    const auto us = cuda::time_tactic(*impl_->ctx, i, batch, p.layers[i].tactic, e0, e1, &why);
    if (!us) throw Error("profiling layer '" + p.layers[i].name + "': " + why);
    if (const auto g = group_of(p, i); !g.empty())
      r.emplace_back(std::string(dwpwpw_fused(p, i) ? "DepthwiseConv2D+Conv2D+Conv2D"
                                 : dwpw_fused(p, i) ? "DepthwiseConv2D+Conv2D"
                                                    : "Conv2D") +
                         "-group" + " x" +
                         std::to_string(g.size()) + " " + p.layers[i].name + " ...",
                     *us);
    else if (dwpw_fused(p, i))
      r.emplace_back("DepthwiseConv2D+Conv2D " + p.layers[i - 1].name + " + " + p.layers[i].name, *us);
    else if (dwpwpw_fused(p, i))
      r.emplace_back("DepthwiseConv2D+Conv2D+Conv2D " + p.layers[dwpwpw_middle(p, i) - 1].name + " + ... + " + p.layers[i].name, *us);
    else if (pwdw_fused(p, i))
      r.emplace_back("Conv2D+DepthwiseConv2D " + p.layers[i - 1].name + " + " + p.layers[i].name, *us);
    else if (chain_fused(p, i))
      r.emplace_back("ElementwiseChain+Conv2D " + p.layers[i - 1].name + " + " + p.layers[i].name, *us);
    else if (stem_fused(p, i))
      r.emplace_back("Conv2D+DepthwiseConv2D+Conv2D " + p.layers[i - 2].name + " + ... + " + p.layers[i].name, *us);
    else
      r.emplace_back(std::string(op_name(p.layers[i].op)) + " " + p.layers[i].name, *us);
  }
  return r;
}

#else  // !POSERT_HAVE_CUDA

namespace {
[[noreturn]] void no_cuda() {
  throw Error("this PoseRT was built without the CUDA backend (nvcc was not found at configure time); use --backend cpu");
}
}  // namespace

std::shared_ptr<Engine> Engine::build(const std::string&, const std::string&, const BuildOptions&) { no_cuda(); }
std::shared_ptr<Engine> Engine::load(const std::string& path) {
  read_engine_file(path);  // still report a bad file as such
  no_cuda();
}
void Engine::save(const std::string&) const { no_cuda(); }
const std::string& Engine::model() const { no_cuda(); }
int Engine::max_batch() const { no_cuda(); }
std::string Engine::precision() const { no_cuda(); }
std::vector<EngineTensorInfo> Engine::inputs() const { no_cuda(); }
std::vector<EngineTensorInfo> Engine::outputs() const { no_cuda(); }
int64_t Engine::arena_bytes() const { no_cuda(); }
int64_t Engine::tensor_sum_bytes() const { no_cuda(); }
int64_t Engine::weight_bytes() const { no_cuda(); }
std::string Engine::describe() const { no_cuda(); }
Context::Context(std::shared_ptr<Engine>, void*) { no_cuda(); }
Context::~Context() = default;
void Context::enqueue(int) { no_cuda(); }
void Context::run(int) { no_cuda(); }
void Context::synchronize() { no_cuda(); }
void* Context::stream() const { no_cuda(); }
uint64_t Context::capture_epoch() const { no_cuda(); }
void* Context::input(int) const { no_cuda(); }
void* Context::output(int) const { no_cuda(); }
void Context::set_use_graphs(bool) { no_cuda(); }
void Context::upload_input(int, const void*, size_t) { no_cuda(); }
void Context::download_output(int, void*, size_t) { no_cuda(); }
std::vector<std::pair<std::string, double>> Context::profile_layers(int) { no_cuda(); }

#endif

}  // namespace posert
