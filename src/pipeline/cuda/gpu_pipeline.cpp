#include "pipeline/cuda/gpu_pipeline.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <tuple>

#include "core/thread_pool.h"
#include "engine/cuda/device_engine.h"
#include "kernels/cuda/cuda_kernels.h"
#include "pipeline/cuda/gpu_preprocess.h"
#include "pose/cuda/gpu_decode.h"
#include "pose/pose_record.h"

namespace posert::cuda {

namespace {

// Pinned host + device buffer pair that only grows (growth happens off the steady-state path:
// the first frame of a larger size).
// Bytes a width x height RGB frame takes in the pinned upload buffer: packed rows, 256-byte aligned.
size_t packed_frame_bytes(int width, int height) {
  return (static_cast<size_t>(width) * height * 3 + 255) / 256 * 256;
}

// `mapped` is the device address of `host` (mapped pinned memory), for kernels that read or
// write it in place.
struct Staging {
  void* host = nullptr;
  void* mapped = nullptr;
  void* dev = nullptr;
  size_t cap = 0;
  void reserve(size_t bytes, const char* what) {
    if (bytes <= cap) return;
    const size_t want = std::max(bytes, cap * 3 / 2);  // grow by half at least: fewer reallocations
    release();
    check(cudaHostAlloc(&host, want, cudaHostAllocMapped), what);
    // No device address where the device cannot map host memory: the pipeline then copies.
    if (cudaHostGetDevicePointer(&mapped, host, 0) != cudaSuccess) {
      mapped = nullptr;
      cudaGetLastError();  // not sticky; clear it
    }
    check(cudaMalloc(&dev, want), what);
    cap = want;
  }
  void release() {
    if (host) cudaFreeHost(host);
    if (dev) cudaFree(dev);
    host = mapped = dev = nullptr;
    cap = 0;
  }
};

struct EventSet {
  cudaEvent_t e[6]{};
  EventSet() {
    for (auto& x : e) check(cudaEventCreate(&x), "cudaEventCreate");
  }
  ~EventSet() {
    for (auto& x : e) cudaEventDestroy(x);
  }
  double ms(int a, int b) const {
    float m = 0;
    check(cudaEventElapsedTime(&m, e[a], e[b]), "cudaEventElapsedTime");
    return m;
  }
};

}  // namespace

namespace {
// Whether two descriptors read the same rows and bytes (all but the byte order).
bool same_geometry(const FrameDesc& a, const FrameDesc& b) {
  return a.offset == b.offset && a.width == b.width && a.height == b.height && a.pitch == b.pitch && a.crop_x == b.crop_x &&
         a.crop_y == b.crop_y && a.crop_w == b.crop_w && a.crop_h == b.crop_h;
}
}  // namespace

MappedRows mapped_rows(const FrameDesc& d, int out_w, int out_h) {
  MappedRows r;
  const auto [c0, c1] = sampled_span(out_w, d.crop_w);
  const int ix0 = std::max(d.crop_x + c0, 0), ix1 = std::min(d.crop_x + c1, d.width - 1);
  if (ix0 > ix1) return r;  // the crop misses the frame's columns: nothing is read
  r.first = ix0 * 3;
  r.last = ix1 * 3 + 3;
  auto segment = [&](int iy) -> int64_t {  // bytes a block reads of frame row iy
    if (iy < 0 || iy >= d.height) return 0;
    const int64_t row = d.offset + static_cast<int64_t>(iy) * d.pitch;
    return ((row + r.last + 15) & ~int64_t{15}) - ((row + r.first) & ~int64_t{15});
  };
  for (const auto& [lo, hi] : sampled_pairs(out_h, d.crop_h))
    r.bytes += segment(d.crop_y + lo) + (hi != lo ? segment(d.crop_y + hi) : 0);
  for (int y : sampled_indices(out_h, d.crop_h))
    if (d.crop_y + y >= 0 && d.crop_y + y < d.height) r.rows.push_back(d.crop_y + y);
  return r;
}

struct GpuPipeline::Impl {
  std::shared_ptr<Engine> engine;
  const ModelSpec* spec = nullptr;
  std::unique_ptr<Context> ctx;
  std::unique_ptr<GpuPoseDecoder> decoder;
  cudaStream_t stream = nullptr;
  int max_batch = 1;
  int in_w = 0, in_h = 0;
  PreprocessOut enc = PreprocessOut::RoundedInt32;
  std::vector<const float*> heads;
  PoseItemLayout layout;
  Staging frames;  // packed frames
  Staging meta;    // [FrameDesc x max_batch][CropTransform x max_batch]
  Staging out;     // max_batch pose items
  Transfer transfer = Transfer::Mapped;
  bool can_map = true;  // the device reads and writes mapped pinned host memory (cudaDevAttrCanMapHostMemory)
  // The last mapped_rows of each batch item and the descriptor it was computed for: steady streams
  // (same frame size and crop) reuse it.
  std::vector<std::pair<FrameDesc, MappedRows>> rows_memo;
  bool use_graphs = true;
  bool timing = false;
  uint64_t epoch = 0;  // the engine context's capture epoch the graphs were captured in
  double last_gpu_ms = 0;
  HostTimes last_host;
  Transfer last_mode = Transfer::Copy;
  std::map<std::tuple<int, size_t, Transfer>, cudaGraphExec_t> graphs;
  std::unique_ptr<EventSet> events;
  // Copies large batches of frames into the pinned buffer in parallel (one memcpy stream from
  // pageable memory runs at only a few GB/s); created on first need.
  std::unique_ptr<ThreadPool> copy_pool;

  FrameDesc* desc_host() const { return static_cast<FrameDesc*>(meta.host); }
  CropTransform* tf_host() const {
    return reinterpret_cast<CropTransform*>(static_cast<char*>(meta.host) + max_batch * sizeof(FrameDesc));
  }
  // The descriptors and transforms in device memory (Copy) or read in place (the mapped modes).
  const FrameDesc* desc_dev(Transfer t) const {
    return static_cast<const FrameDesc*>(t == Transfer::Copy ? meta.dev : meta.mapped);
  }
  const CropTransform* tf_dev(Transfer t) const {
    return reinterpret_cast<const CropTransform*>(reinterpret_cast<const char*>(desc_dev(t)) + max_batch * sizeof(FrameDesc));
  }
  size_t meta_bytes() const { return max_batch * (sizeof(FrameDesc) + sizeof(CropTransform)); }

  void clear_graphs() {
    for (auto& [k, g] : graphs) cudaGraphExecDestroy(g);
    graphs.clear();
  }
  // The graphs hold the engine's device addresses (its cuDNN workspace, ...): when the context has
  // moved them (Context::capture_epoch), they are captured again.
  void check_epoch() {
    if (ctx->capture_epoch() == epoch) return;
    clear_graphs();
    epoch = ctx->capture_epoch();
  }

  // The staged batch: its total packed frame bytes, the transfer mode it runs with, and for the
  // mapped modes what the preprocessing kernel reads over PCIe.
  struct Staged {
    size_t bytes = 0;
    Transfer mode = Transfer::Copy;
    int64_t mapped_read = 0;
  };

  // Packs the frames into the pinned staging buffer, fills the descriptors and picks the transfer
  // mode. The mapped modes run as Copy where a frame is too wide for the mapped kernel, or where it
  // would read more than the frames hold (a resize that shrinks by less than 2x, or enlarges:
  // neighbouring output rows sample the same source rows, and each block reads its own); otherwise only the rows (and
  // columns) the kernel reads are copied into the pinned buffer.
  Staged stage(const std::vector<FrameView>& fr, const std::vector<CropRect>* crops) {
    const int n = static_cast<int>(fr.size());
    if (n < 1 || n > max_batch)
      throw Error("batch of " + std::to_string(n) + " frames is outside the engine's range 1.." + std::to_string(max_batch));
    if (crops && crops->size() != fr.size()) throw Error("one crop rectangle per frame is needed");
    Staged st;
    size_t total = 0;
    for (const auto& f : fr) {
      if (!f.pixels || f.width <= 0 || f.height <= 0 || f.width > 32768 || f.height > 32768)
        throw Error("frame of " + std::to_string(f.width) + "x" + std::to_string(f.height) + " pixels is empty or too large");
      if (f.pitch != 0 && f.pitch < f.width * 3) throw Error("frame pitch is smaller than width * 3");
      total += packed_frame_bytes(f.width, f.height);
    }
    st.bytes = total;
    // A frame written in place (frame_slot) must sit exactly where this batch packs it; anything
    // else in the buffer would be overwritten by the packing, or freed if the buffer grows.
    const char* base = static_cast<const char*>(frames.host);
    for (size_t b = 0, at = 0; b < fr.size(); at += packed_frame_bytes(fr[b].width, fr[b].height), ++b) {
      const char* px = reinterpret_cast<const char*>(fr[b].pixels);
      const bool inside = base && px >= base && px < base + frames.cap;
      const bool packed = fr[b].pitch == 0 || fr[b].pitch == fr[b].width * 3;
      if (inside && (px != base + at || !packed))
        throw Error("frame " + std::to_string(b) + " (" + std::to_string(fr[b].width) + "x" + std::to_string(fr[b].height) +
                    ") lies in the pinned upload buffer but not at its slot: call frame_slot with this batch's frame sizes");
    }
    const size_t old_cap = frames.cap;
    frames.reserve(total, "pinned frame buffer");
    if (frames.cap != old_cap) clear_graphs();  // captured copies point at the old buffers
    std::vector<size_t> offsets(n);
    std::vector<const MappedRows*> reads(transfer == Transfer::Copy ? 0 : n);
    if (rows_memo.size() < static_cast<size_t>(max_batch)) rows_memo.resize(max_batch);  // before pointers into it
    bool mappable = transfer != Transfer::Copy && can_map && frames.mapped && meta.mapped && out.mapped;
    size_t off = 0;
    for (int b = 0; b < n; ++b) {
      const FrameView& f = fr[b];
      const size_t row = static_cast<size_t>(f.width) * 3;
      CropRect c = crops ? (*crops)[b] : letterbox_crop(make_letterbox(f.width, f.height, std::max(in_w, in_h)));
      if (c.w <= 0 || c.h <= 0 || c.w > 65536 || c.h > 65536 || std::abs(c.x) > 65536 || std::abs(c.y) > 65536)
        throw Error("crop rectangle of frame " + std::to_string(b) + " (" + std::to_string(c.w) + "x" + std::to_string(c.h) +
                    " at " + std::to_string(c.x) + "," + std::to_string(c.y) + ") is empty, too large or too far out");
      FrameDesc& d = desc_host()[b];
      d.offset = static_cast<int64_t>(off);
      d.width = f.width;
      d.height = f.height;
      d.pitch = static_cast<int32_t>(row);
      d.bgr = f.bgr ? 1 : 0;
      d.crop_x = c.x;
      d.crop_y = c.y;
      d.crop_w = c.w;
      d.crop_h = c.h;
      tf_host()[b] = crop_transform(c, in_w, in_h);
      if (mappable && !mapped_preprocess_fits(f.width)) mappable = false;
      if (mappable) {
        auto& [key, rows] = rows_memo[b];
        if (!same_geometry(key, d)) {
          rows = mapped_rows(d, in_w, in_h);
          key = d;
        }
        reads[b] = &rows;
        st.mapped_read += rows.bytes;
      }
      offsets[b] = off;
      off += packed_frame_bytes(f.width, f.height);
    }
    if (mappable && st.mapped_read > static_cast<int64_t>(total)) mappable = false;
    st.mode = mappable ? transfer : Transfer::Copy;
    // Rows are packed (pitch = width * 3) into the pinned buffer; frames in parallel when large.
    // Mapped: only the bytes the kernel reads.
    auto copy_frame = [&](int b, int) {
      const FrameView& f = fr[b];
      const size_t row = static_cast<size_t>(f.width) * 3;
      const size_t pitch = f.pitch ? static_cast<size_t>(f.pitch) : row;
      char* dst = static_cast<char*>(frames.host) + offsets[b];
      if (reinterpret_cast<const char*>(f.pixels) == dst && pitch == row) return;  // written in place (frame_slot)
      if (mappable) {
        const MappedRows& r = *reads[b];
        for (int y : r.rows) std::memcpy(dst + y * row + r.first, f.pixels + y * pitch + r.first, r.last - r.first);
      } else if (pitch == row) {
        std::memcpy(dst, f.pixels, row * f.height);
      } else {
        for (int y = 0; y < f.height; ++y) std::memcpy(dst + y * row, f.pixels + y * pitch, row);
      }
    };
    const size_t copied = mappable ? static_cast<size_t>(st.mapped_read) : total;
    if (n > 1 && copied >= (size_t{8} << 20)) {
      if (!copy_pool) copy_pool = std::make_unique<ThreadPool>(std::min(8, static_cast<int>(std::thread::hardware_concurrency())));
      copy_pool->parallel_for(n, copy_frame);
    } else {
      for (int b = 0; b < n; ++b) copy_frame(b, 0);
    }
    return st;
  }

  // The stages; `ev` records events between them (profiled runs only).
  void launch(int n, size_t frame_bytes, Transfer t, const EventSet* ev) {
    auto rec = [&](int i) {
      if (ev) check(cudaEventRecord(ev->e[i], stream), "cudaEventRecord");
    };
    rec(0);
    if (t == Transfer::Copy) {
      check(cudaMemcpyAsync(frames.dev, frames.host, frame_bytes, cudaMemcpyHostToDevice, stream), "frame upload");
      check(cudaMemcpyAsync(meta.dev, meta.host, meta_bytes(), cudaMemcpyHostToDevice, stream), "descriptor upload");
    }
    rec(1);
    if (t == Transfer::Copy)
      preprocess_frames(static_cast<const uint8_t*>(frames.dev), desc_dev(t), n, in_w, in_h, enc, ctx->input(0), stream);
    else
      preprocess_frames_mapped(static_cast<const uint8_t*>(frames.mapped), desc_dev(t), n, in_w, in_h, enc, ctx->input(0),
                               stream);
    rec(2);
    ctx->enqueue(n);
    rec(3);
    decoder->enqueue(heads, n, tf_dev(t), t == Transfer::Mapped ? out.mapped : out.dev, stream);
    rec(4);
    if (t != Transfer::Mapped)
      check(cudaMemcpyAsync(out.host, out.dev, n * layout.item_bytes(), cudaMemcpyDeviceToHost, stream), "pose download");
    rec(5);
  }

  std::vector<std::vector<Pose>> results(int n) const {
    std::vector<std::vector<Pose>> r(n);
    for (int b = 0; b < n; ++b)
      r[b] = poses_from_item(static_cast<const char*>(out.host) + b * layout.item_bytes(), layout.max_poses);
    return r;
  }
};

GpuPipeline::GpuPipeline(std::shared_ptr<Engine> engine, const ModelSpec& spec, const DecodeOptions& opt)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.engine = std::move(engine);
  m.spec = &spec;
  m.max_batch = m.engine->max_batch();
  const auto ins = m.engine->inputs();
  if (ins.size() != 1 || ins[0].shape.size() != 4 || ins[0].shape[3] != 3)
    throw Error("the " + spec.name + " engine does not take one [N, H, W, 3] image input");
  m.in_h = static_cast<int>(ins[0].shape[1]);
  m.in_w = static_cast<int>(ins[0].shape[2]);
  if (m.in_h != spec.input_size || m.in_w != spec.input_size)
    throw Error("the engine's input is " + std::to_string(m.in_w) + "x" + std::to_string(m.in_h) + ", the " + spec.name +
                " model takes " + std::to_string(spec.input_size) + "x" + std::to_string(spec.input_size));
  const bool want_int = spec.encoding == InputEncoding::RoundedInt32;
  if ((ins[0].dtype == "i32") != want_int)
    throw Error("the engine's input type " + ins[0].dtype + " does not match the " + spec.name + " input encoding");
  m.enc = want_int ? PreprocessOut::RoundedInt32 : PreprocessOut::FloatMinus1To1;
  m.ctx = std::make_unique<Context>(m.engine);
  int dev = 0, can_map = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&can_map, cudaDevAttrCanMapHostMemory, dev), "cudaDeviceGetAttribute");
  m.can_map = can_map != 0;
  m.stream = static_cast<cudaStream_t>(m.ctx->stream());
  const auto outs = m.engine->outputs();
  for (const auto& h : spec.head_values) {
    int found = -1;
    for (size_t i = 0; i < outs.size(); ++i)
      if (outs[i].name == h) found = static_cast<int>(i);
    if (found < 0) throw Error("the engine has no output '" + h + "' that the " + spec.name + " decoder needs");
    if (outs[found].dtype != "f32") throw Error("engine output '" + h + "' is not float32");
    m.heads.push_back(static_cast<const float*>(m.ctx->output(found)));
  }
  m.decoder = std::make_unique<GpuPoseDecoder>(spec, m.max_batch, opt);
  m.layout.max_poses = m.decoder->max_poses();
  m.meta.reserve(m.meta_bytes(), "pinned descriptor buffer");
  std::memset(m.meta.host, 0, m.meta_bytes());
  m.out.reserve(m.max_batch * m.layout.item_bytes(), "pinned pose buffer");
  m.events = std::make_unique<EventSet>();
}

GpuPipeline::~GpuPipeline() {
  if (!impl_) return;
  cudaStreamSynchronize(impl_->stream);
  impl_->clear_graphs();
  impl_->frames.release();
  impl_->meta.release();
  impl_->out.release();
}

int GpuPipeline::max_batch() const { return impl_->max_batch; }

uint8_t* GpuPipeline::frame_slot(int item, int width, int height) {
  if (item < 0 || item >= impl_->max_batch) throw Error("frame slot " + std::to_string(item) + " is outside the engine's batch");
  if (width <= 0 || height <= 0 || width > 32768 || height > 32768)
    throw Error("frame of " + std::to_string(width) + "x" + std::to_string(height) + " pixels is empty or too large");
  const size_t one = packed_frame_bytes(width, height);  // as stage() packs a batch of these
  const size_t old_cap = impl_->frames.cap;
  impl_->frames.reserve(one * impl_->max_batch, "pinned frame buffer");
  if (impl_->frames.cap != old_cap) impl_->clear_graphs();
  return static_cast<uint8_t*>(impl_->frames.host) + one * item;
}
void* GpuPipeline::stream() const { return impl_->stream; }
void GpuPipeline::set_use_graphs(bool on) { impl_->use_graphs = on; }
void GpuPipeline::set_transfer(Transfer t) { impl_->transfer = t; }
Transfer GpuPipeline::transfer() const { return impl_->transfer; }
Transfer GpuPipeline::last_transfer() const { return impl_->last_mode; }
void GpuPipeline::set_timing(bool on) { impl_->timing = on; }
double GpuPipeline::last_gpu_ms() const { return impl_->last_gpu_ms; }
HostTimes GpuPipeline::last_host_times() const { return impl_->last_host; }

std::vector<std::vector<Pose>> GpuPipeline::run(const std::vector<FrameView>& fr, const std::vector<CropRect>* crops) {
  Impl& m = *impl_;
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const int n = static_cast<int>(fr.size());
  const Impl::Staged st = m.stage(fr, crops);
  const size_t bytes = st.bytes;
  const Transfer t = st.mode;
  m.last_mode = t;
  const auto t1 = Clock::now();
  if (m.timing) check(cudaEventRecord(m.events->e[0], m.stream), "cudaEventRecord");
  if (!m.use_graphs) {
    m.ctx->set_use_graphs(true);
    m.launch(n, bytes, t, nullptr);
  } else {
    const auto key = std::make_tuple(n, bytes, t);
    m.check_epoch();
    auto it = m.graphs.find(key);
    if (it != m.graphs.end()) {
      check(cudaGraphLaunch(it->second, m.stream), "cudaGraphLaunch (pipeline)");
    } else {
      // First run of this shape: launched directly (libraries such as cuDNN set up their plans on
      // a shape's first call, which stream capture forbids), then captured without running, so
      // the next run replays the graph.
      if (m.graphs.size() >= 16) m.clear_graphs();  // many frame sizes: keep the cache bounded
      m.ctx->set_use_graphs(false);  // the engine's layers go into this graph directly
      m.launch(n, bytes, t, nullptr);
      m.check_epoch();  // a new batch size may have grown the engine's workspace
      cudaGraph_t g = nullptr;
      check(cudaStreamBeginCapture(m.stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
      try {
        m.launch(n, bytes, t, nullptr);
      } catch (...) {
        cudaStreamEndCapture(m.stream, &g);
        if (g) cudaGraphDestroy(g);
        throw;
      }
      check(cudaStreamEndCapture(m.stream, &g), "cudaStreamEndCapture");
      cudaGraphExec_t exec = nullptr;
      const cudaError_t e = cudaGraphInstantiate(&exec, g, 0);
      cudaGraphDestroy(g);
      check(e, "cudaGraphInstantiate (pipeline)");
      m.graphs.emplace(key, exec);
    }
  }
  if (m.timing) check(cudaEventRecord(m.events->e[5], m.stream), "cudaEventRecord");
  const auto t2 = Clock::now();
  check(cudaStreamSynchronize(m.stream), "pipeline");
  const auto t3 = Clock::now();
  auto r = m.results(n);
  if (m.timing) {
    m.last_gpu_ms = m.events->ms(0, 5);
    auto ms = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    m.last_host = {ms(t0, t1), ms(t1, t2), ms(t2, t3), ms(t3, Clock::now())};
  }
  return r;
}

std::vector<std::vector<Pose>> GpuPipeline::run_profiled(const std::vector<FrameView>& fr, StageTimes* t,
                                                         const std::vector<CropRect>* crops) {
  Impl& m = *impl_;
  const int n = static_cast<int>(fr.size());
  const Impl::Staged st = m.stage(fr, crops);
  const size_t bytes = st.bytes;
  const Transfer tr = st.mode;
  m.last_mode = tr;
  m.ctx->set_use_graphs(true);
  // The GPU is held by a spin kernel while the host queues the stages, so each stage's events
  // time its GPU work, not the host's launch of it (the mapped modes have no copy in front to
  // cover that).
  spin(200000, m.stream);
  m.launch(n, bytes, tr, m.events.get());
  check(cudaStreamSynchronize(m.stream), "pipeline");
  if (t) {
    t->upload = m.events->ms(0, 1);
    t->preprocess = m.events->ms(1, 2);
    t->inference = m.events->ms(2, 3);
    t->decode = m.events->ms(3, 4);
    t->download = m.events->ms(4, 5);
    t->total = m.events->ms(0, 5);
    if (tr == Transfer::Copy) {
      t->upload_bytes = static_cast<int64_t>(bytes + m.meta_bytes());
    } else {
      // The rows, each block's descriptor, and the decoder's crop transforms.
      t->upload_bytes = st.mapped_read + static_cast<int64_t>(n) * m.in_h * static_cast<int64_t>(sizeof(FrameDesc)) +
                        static_cast<int64_t>(n) * static_cast<int64_t>(sizeof(CropTransform));
    }
    t->download_bytes = static_cast<int64_t>(n * m.layout.item_bytes());
  }
  return m.results(n);
}

}  // namespace posert::cuda
