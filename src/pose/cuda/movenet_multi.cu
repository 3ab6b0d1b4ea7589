// MoveNet MultiPose on the GPU: movenet_multi_raw + decode_movenet_multi + the crop transform in
// two kernels: centres (5x5 NMS, top 6, boxes, regression; block per item), then keypoint argmax
// for all six people over (cell chunk, item) blocks, computed inside each person's box only, the
// item's last block writing the rows and scores. Float for float as the CPU; exp is exp_as_cpu
// (see decode_common.cuh).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "engine/engine_env.h"
#include "pose/cuda/decode_common.cuh"
#include "pose/cuda/device_decoders.h"
#include "pose/movenet_multi.h"

namespace posert::cuda::detail {

namespace {

constexpr int kK = kPoseKeypoints;
constexpr int kPeople = kMoveNetMultiPeople;
constexpr float kStride = 4.0f;
constexpr int kMaxGrid = 64;  // the centre peaks of one item live in shared memory

struct Person {
  int cell;
  float score;
  float box[4];  // ymin, xmin, ymax, xmax in grid units, clipped to the grid
  float ry[kK], rx[kK];
};

struct MultiArgs {
  const float *centre, *heat, *reg, *off, *box_scale, *box_off;
  int G;
  float min_pose_score;
  float input_size;
  const CropTransform* tf;
  Person* people;  // [N, 6]
  int chunk;       // cells per keypoint block; gridDim.x = ceil(G * G / chunk) blocks per item
  unsigned long long* keys;  // [N, 6, 17] best (value, cell) so far, 0 = none; reset by the last block
  unsigned* done;            // [N] keypoint blocks of the item finished; reset by the last block
  void* out;
  int max_poses;
  bool exhaustive;  // $POSERT_DECODE_EXHAUSTIVE: every cell of the chunk computed (no box spans)
};

// TopK's order: key descending (NaN peaks rank as -inf), lower index first.
__device__ __forceinline__ float topk_key(float v) { return isnan(v) ? -HUGE_VALF : v; }
__device__ __forceinline__ bool topk_before(float ka, int ia, float kb, int ib) {
  return ka > kb || (ka == kb && ia < ib);
}

// A cell as TopK ranks it: key = topk_key(value); empty = after every cell.
struct Cand {
  float k;
  int i;
};
__device__ __forceinline__ Cand cand_empty() { return {-HUGE_VALF, INT_MAX}; }
__device__ __forceinline__ bool cand_before(Cand a, Cand b) { return topk_before(a.k, a.i, b.k, b.i); }
__device__ __forceinline__ Cand warp_best(Cand c) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const Cand other{__shfl_xor_sync(0xffffffffu, c.k, o), __shfl_xor_sync(0xffffffffu, c.i, o)};
    if (cand_before(other, c)) c = other;
  }
  return c;
}

constexpr int kCentreThreads = 1024;
constexpr int kCentreWarps = kCentreThreads / 32;
constexpr int kCentreCells = (kMaxGrid * kMaxGrid + kCentreThreads - 1) / kCentreThreads;  // per thread

// GT: the grid side as a compile-time constant (64: MultiPose at 256), or 0 (a.G).
template <int GT>
__global__ void __launch_bounds__(kCentreThreads) multi_centres_kernel(MultiArgs a) {
  const int b = blockIdx.x, G = GT > 0 ? GT : a.G, cells = G * G;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const float* centre = a.centre + static_cast<size_t>(b) * cells;
  __shared__ float s_c[kMaxGrid * kMaxGrid];
  __shared__ float s_peak[kMaxGrid * kMaxGrid];  // first the 5-wide row max, then the peaks
  __shared__ Cand s_top[kCentreWarps][kPeople];  // each warp's best six, in order
  __shared__ int s_sel[kPeople];

  // Centre NMS: a cell survives where it (nearly) equals the max of its 5x5 window. The CPU's
  // std::max chain from the cell itself is the max of the window's non-NaN values (NaN only when
  // the cell is NaN, which gives NaN either way); the sign of a zero max cannot change |c - m|.
  // So a separable fmaxf (rows, then columns) gives the same peaks.
  for (int i = tid; i < cells; i += kCentreThreads) s_c[i] = centre[i];
  __syncthreads();
  for (int i = tid; i < cells; i += kCentreThreads) {
    const int y = i / G, x = i % G;
    float m = s_c[i];
    for (int xx = max(0, x - 2); xx <= min(G - 1, x + 2); ++xx) m = fmaxf(m, s_c[y * G + xx]);
    s_peak[i] = m;
  }
  __syncthreads();
  float peak[kCentreCells];
#pragma unroll
  for (int j = 0; j < kCentreCells; ++j) {
    const int i = tid + j * kCentreThreads;
    if (i < cells) {
      const int y = i / G, x = i % G;
      const float c = s_c[i];
      float m = c;
      for (int yy = max(0, y - 2); yy <= min(G - 1, y + 2); ++yy) m = fmaxf(m, s_peak[yy * G + x]);
      peak[j] = __fmul_rn(c, fabsf(__fsub_rn(c, m)) < kMoveNetMultiNmsEps ? 1.0f : 0.0f);
    }
  }
  __syncthreads();  // every row max has been read
#pragma unroll
  for (int j = 0; j < kCentreCells; ++j) {
    const int i = tid + j * kCentreThreads;
    if (i < cells) s_peak[i] = peak[j];
  }
  __syncthreads();

  // Top 6 in TopK's order (a strict total order, so any grouping finds the same six): each warp
  // takes its own best six, lane by lane, with no block barrier; warp 0 then takes the best six
  // of the 32 warps' lists, each already in order.
  Cand mine[kCentreCells];
#pragma unroll
  for (int j = 0; j < kCentreCells; ++j) {
    const int i = tid + j * kCentreThreads;
    mine[j] = i < cells ? Cand{topk_key(peak[j]), i} : cand_empty();
  }
  unsigned taken = 0;  // bit j: mine[j] is in the warp's list
  Cand top = cand_empty();
  for (int r = 0; r < kPeople; ++r) {
    Cand head = cand_empty();
    int hj = 0;
#pragma unroll
    for (int j = 0; j < kCentreCells; ++j)
      if (!((taken >> j) & 1u) && cand_before(mine[j], head)) head = mine[j], hj = j;
    const Cand w = warp_best(head);
    if (head.i != INT_MAX && w.i == head.i) taken |= 1u << hj;  // indices are unique: one owner
    if (lane == r) top = w;
  }
  if (lane < kPeople) s_top[warp][lane] = top;
  __syncthreads();
  if (warp == 0) {
    int pos = 0;
    for (int r = 0; r < kPeople; ++r) {
      const Cand head = lane < kCentreWarps && pos < kPeople ? s_top[lane][pos] : cand_empty();
      const Cand w = warp_best(head);
      if (head.i != INT_MAX && w.i == head.i) ++pos;
      if (lane == 0) s_sel[r] = w.i;
    }
  }
  __syncthreads();

  // Per person: centre cell, box and regressed keypoints.
  Person* people = a.people + static_cast<size_t>(b) * kPeople;
  const float Gf = static_cast<float>(G);
  for (int t = tid; t < kPeople * kK; t += kCentreThreads) {
    const int p = t / kK, k = t % kK, cell = s_sel[p];
    const float* reg = a.reg + (static_cast<size_t>(b) * cells + cell) * 2 * kK;
    people[p].ry[k] = __fadd_rn(static_cast<float>(cell / G), reg[2 * k]);
    people[p].rx[k] = __fadd_rn(static_cast<float>(cell % G), reg[2 * k + 1]);
  }
  if (tid < kPeople) {
    const int p = tid, cell = s_sel[p];
    Person& P = people[p];
    P.cell = cell;
    P.score = s_peak[cell];
    const float cy = static_cast<float>(cell / G), cx = static_cast<float>(cell % G);
    const float* bs = a.box_scale + (static_cast<size_t>(b) * cells + cell) * 2;
    const float* bo = a.box_off + (static_cast<size_t>(b) * cells + cell) * 2;
    const float h = std_max(bs[0], 0.0f), w = std_max(bs[1], 0.0f);
    const float by = __fadd_rn(cy, bo[0]), bx = __fadd_rn(cx, bo[1]);
    const float raw[4] = {__fsub_rn(by, __fmul_rn(h, 0.5f)), __fsub_rn(bx, __fmul_rn(w, 0.5f)),
                          __fadd_rn(by, __fmul_rn(h, 0.5f)), __fadd_rn(bx, __fmul_rn(w, 0.5f))};
    for (int i = 0; i < 4; ++i) P.box[i] = std_max(std_min(raw[i], Gf), 0.0f);
  }
}

// The keypoint heatmap weighted by a Gaussian around person P's regressed keypoint k, masked to
// P's box (outside: h * 0, or NaN for a NaN distance, as the CPU's shortcut of the graph).
__device__ __forceinline__ float weighted(const float* heat, int cell, int G, const Person& P, int k, float sigma) {
  const float Y = static_cast<float>(cell / G), X = static_cast<float>(cell % G);
  const float dy = __fsub_rn(Y, P.ry[k]), dx = __fsub_rn(X, P.rx[k]);
  const float d2 = __fadd_rn(__fmul_rn(dy, dy), __fmul_rn(dx, dx));
  const float h = heat[cell * kK + k];
  if (Y >= P.box[0] && X >= P.box[1] && Y < P.box[2] && X < P.box[3])
    return __fmul_rn(h, exp_as_cpu(__fdiv_rn(-d2, sigma)));
  return isnan(d2) ? d2 : __fmul_rn(h, 0.0f);
}

// The integers v in 0..G-1 with lo <= v < hi (a box side, clipped to [0, G], or NaN: none), as the
// range [first, end).
struct Span {
  int first, end;
  __device__ bool has(int v) const { return v >= first && v < end; }
};
__device__ __forceinline__ Span box_span(float lo, float hi, int G) {
  if (isnan(lo) || isnan(hi)) return {0, 0};
  const float Gf = static_cast<float>(G);
  return {static_cast<int>(ceilf(fminf(fmaxf(lo, 0.0f), Gf))), static_cast<int>(ceilf(fminf(fmaxf(hi, 0.0f), Gf)))};
}

// The argmax of weighted(cell, P, k) over the cells [lo, hi) of the calling warp's lanes (each
// lane's candidate; the caller reduces them). Outside P's box every finite heat value gives +-0,
// so the outside contributes the first of its cells with a finite value (infinite or NaN heat
// gives NaN, which never wins); inside, only the box's cells within [lo, hi) are computed, the
// lanes over (row, column) pairs. Where the regressed keypoint is NaN every value is NaN, cell 0's
// too, and the caller's cell-0 rule decides: no candidate. h0: heat[(lo + lane) * 17 + k] (any
// value past hi), loaded once for all six people. exhaustive: every cell computed.
__device__ ArgMax person_argmax(const float* heat, int lo, int hi, int G, const Person& P, int k, float sigma,
                                float h0, bool exhaustive) {
  const int lane = threadIdx.x & 31;
  ArgMax m = argmax_empty();
  if (exhaustive) {
    for (int cell = lo + lane; cell < hi; cell += 32) argmax_take(m, weighted(heat, cell, G, P, k, sigma), cell);
    return m;
  }
  if (isnan(P.ry[k]) || isnan(P.rx[k])) return m;
  const Span ys = box_span(P.box[0], P.box[2], G), xs = box_span(P.box[1], P.box[3], G);
  for (int base = lo; base < hi; base += 32) {
    const int cell = base + lane;
    bool zero = false;
    if (cell < hi) {
      const int y = cell / G, x = cell - y * G;
      zero = !(ys.has(y) && xs.has(x)) && isfinite(base == lo ? h0 : heat[cell * kK + k]);
    }
    const unsigned found = __ballot_sync(0xffffffffu, zero);
    if (found) {
      if (lane == __ffs(found) - 1) m = {0.0f, cell};
      break;
    }
  }
  const int w = xs.end - xs.first;
  const int ya = max(ys.first, lo / G), yb = min(ys.end, (hi - 1) / G + 1);
  if (w <= 0 || ya >= yb) return m;
  const int n = (yb - ya) * w;
  for (int t = lane; t < n; t += 32) {
    const int r = t / w;
    const int cell = (ya + r) * G + xs.first + (t - r * w);
    if (cell >= lo && cell < hi) argmax_take(m, weighted(heat, cell, G, P, k, sigma), cell);
  }
  return m;
}

constexpr int kArgThreads = 32 * kK;  // warp k takes keypoint k
constexpr int kMinCellsPerLane = 2;

// Block (chunk, item): warp k takes the weighted argmax of keypoint k for each of the six people
// over the block's cells (person_argmax: the cells of the person's box, and the first cell
// outside it) and merges it into the item's keys by atomicMax; the item's last block to finish
// (last_block_of_item) writes the rows, scores and records and resets keys and counter.
__global__ void __launch_bounds__(kArgThreads, 2) multi_keypoints_kernel(MultiArgs a) {
  const int b = blockIdx.y, G = a.G, cells = G * G;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const float* heat = a.heat + static_cast<size_t>(b) * cells * kK;
  const float Gf = static_cast<float>(G);
  const float sigma = __fmul_rn(Gf, kMoveNetMultiSigmaPerCell);
  __shared__ Person s_people[kPeople];
  __shared__ int s_best[kPeople][kK];
  __shared__ float s_row[kPeople][kMoveNetMultiRow];
  __shared__ int s_slot[kPeople];
  __shared__ int s_count;
  static_assert(sizeof(Person) % sizeof(unsigned) == 0, "Person is copied word by word");
  for (int i = tid; i < kPeople * static_cast<int>(sizeof(Person) / sizeof(unsigned)); i += kArgThreads)
    reinterpret_cast<unsigned*>(s_people)[i] =
        reinterpret_cast<const unsigned*>(a.people + static_cast<size_t>(b) * kPeople)[i];
  __syncthreads();

  {
    const int k = warp;
    const int lo = blockIdx.x * a.chunk, hi = min(lo + a.chunk, cells);
    const float h0 = lo + lane < hi ? heat[(lo + lane) * kK + k] : 0.0f;
    unsigned long long key[kPeople];  // the six searches first, then their reductions side by side
#pragma unroll
    for (int p = 0; p < kPeople; ++p) {
      const ArgMax m = person_argmax(heat, lo, hi, G, s_people[p], k, sigma, h0, a.exhaustive);
      key[p] = m.i != INT_MAX ? argmax_key(m) : 0ull;
    }
#pragma unroll
    for (int p = 0; p < kPeople; ++p) key[p] = warp_max_key(key[p]);
    if (lane == 0)
#pragma unroll
      for (int p = 0; p < kPeople; ++p)
        if (key[p] != 0) atomicMax(&a.keys[(static_cast<size_t>(b) * kPeople + p) * kK + k], key[p]);
  }
  if (!last_block_of_item(&a.done[b], gridDim.x)) return;  // the whole block
  if (tid < kPeople * kK) {
    const int p = tid / kK, k = tid % kK;
    const unsigned long long key = atomicExch(&a.keys[(static_cast<size_t>(b) * kPeople + p) * kK + k], 0ull);
    // The CPU's scan keeps cell 0 when its value is NaN (nothing compares greater).
    s_best[p][k] = isnan(weighted(heat, 0, G, s_people[p], k, sigma)) ? 0 : argmax_key_index(key);
  }
  if (tid == 0) a.done[b] = 0;  // every block of this launch has counted: ready for the next one
  __syncthreads();

  // Rows of the graph's output: keypoints (y, x, score), the score being the best weighted value
  // of any person at the chosen cell.
  const float scale = __fdiv_rn(kStride, __fmul_rn(Gf, kStride));
  if (tid < kPeople * kK) {
    const int p = tid / kK, k = tid % kK;
    const int cell = s_best[p][k];
    float score = weighted(heat, cell, G, s_people[0], k, sigma);
    for (int q = 1; q < kPeople; ++q) score = std_max(score, weighted(heat, cell, G, s_people[q], k, sigma));
    const float* off = a.off + (static_cast<size_t>(b) * cells + cell) * 2 * kK;
    s_row[p][3 * k + 0] = __fmul_rn(__fadd_rn(static_cast<float>(cell / G), off[2 * k]), scale);
    s_row[p][3 * k + 1] = __fmul_rn(__fadd_rn(static_cast<float>(cell % G), off[2 * k + 1]), scale);
    s_row[p][3 * k + 2] = score;
  }
  __syncthreads();
  if (tid < kPeople) {
    const int p = tid;
    float count = 0, sum = 0;
    for (int k = 0; k < kK; ++k) {
      const float score = s_row[p][3 * k + 2];
      const bool counted = score > kMoveNetMultiKeypointThreshold;
      count = __fadd_rn(count, counted ? 1.0f : 0.0f);
      sum = __fadd_rn(sum, __fmul_rn(s_people[p].score, counted ? score : 0.0f));
    }
    for (int i = 0; i < 4; ++i)
      s_row[p][3 * kK + i] =
          std_max(std_min(__fdiv_rn(__fmul_rn(s_people[p].box[i], kStride), __fmul_rn(Gf, kStride)), 1.0f), 0.0f);
    s_row[p][kMoveNetMultiRow - 1] = __fmul_rn(__fdiv_rn(1.0f, std_max(count, 1.0f)), sum);
  }
  __syncthreads();
  if (tid == 0) {
    int n = 0;
    for (int p = 0; p < kPeople; ++p) {
      const float score = s_row[p][kMoveNetMultiRow - 1];
      const bool keep = score > 0.0f && !(score < a.min_pose_score) && n < a.max_poses;
      s_slot[p] = keep ? n++ : -1;
    }
    s_count = n;
    write_item_header(a.out, b, a.max_poses, n);
  }
  __syncthreads();

  // Kept rows -> records in frame pixels (model-input pixels = row * input_size).
  const CropTransform t = a.tf[b];
  PoseRecord* recs = item_records(a.out, b, a.max_poses);
  const float s = a.input_size;
  if (tid < kPeople * kK) {
    const int p = tid / kK, k = tid % kK;
    if (s_slot[p] >= 0) {
      PoseRecord& r = recs[s_slot[p]];
      r.kpt[k][0] = frame_x(t, __fmul_rn(s_row[p][3 * k + 1], s));
      r.kpt[k][1] = frame_y(t, __fmul_rn(s_row[p][3 * k], s));
      r.kpt[k][2] = s_row[p][3 * k + 2];
    }
  }
  if (tid < kPeople && s_slot[tid] >= 0) {
    const float* row = s_row[tid];
    const float* box = row + 3 * kK;  // ymin, xmin, ymax, xmax
    PoseRecord& r = recs[s_slot[tid]];
    r.score = row[kMoveNetMultiRow - 1];
    r.bbox[0] = frame_x(t, __fmul_rn(box[1], s));
    r.bbox[1] = frame_y(t, __fmul_rn(box[0], s));
    r.bbox[2] = __fmul_rn(__fmul_rn(__fsub_rn(box[3], box[1]), s), t.scale_x);
    r.bbox[3] = __fmul_rn(__fmul_rn(__fsub_rn(box[2], box[0]), s), t.scale_y);
  }
  zero_item_records(a.out, b, a.max_poses, s_count);
}

class MoveNetMultiDecoder : public DeviceDecoder {
 public:
  MoveNetMultiDecoder(const ModelSpec& spec, int max_batch, const PoseItemLayout& layout, float min_pose_score)
      : G_(spec.input_size / 4),
        input_size_(static_cast<float>(spec.input_size)),
        min_pose_score_(min_pose_score),
        max_poses_(layout.max_poses),
        people_(static_cast<size_t>(max_batch) * kPeople * sizeof(Person), "MoveNet MultiPose person workspace"),
        keys_(static_cast<size_t>(max_batch) * kPeople * kK * sizeof(unsigned long long),
              "MoveNet MultiPose keypoint workspace"),
        done_(static_cast<size_t>(max_batch) * sizeof(unsigned), "MoveNet MultiPose keypoint workspace") {
    if (G_ < 3 || G_ > kMaxGrid)
      throw Error(spec.name + ": the GPU MultiPose decoder supports grids of 3.." + std::to_string(kMaxGrid) +
                  " cells, the model has " + std::to_string(G_));
    if (max_batch > 65535) throw Error(spec.name + " GPU decoder: max_batch " + std::to_string(max_batch) + " is above 65535");
    // The keypoint kernel expects zero keys and counters and leaves them so.
    cuda_check(cudaMemset(keys_.as<void>(), 0, static_cast<size_t>(max_batch) * kPeople * kK * sizeof(unsigned long long)),
               "clearing the MoveNet MultiPose keypoint workspace");
    cuda_check(cudaMemset(done_.as<void>(), 0, static_cast<size_t>(max_batch) * sizeof(unsigned)),
               "clearing the MoveNet MultiPose keypoint workspace");
    cuda_check(cudaDeviceSynchronize(), "clearing the MoveNet MultiPose keypoint workspace");
    resident_ = resident_blocks(multi_keypoints_kernel, kArgThreads, "MoveNet MultiPose decoder occupancy");
    exhaustive_ = decode_exhaustive_from_env();
  }

  void enqueue(const std::vector<const float*>& heads, int n, const CropTransform* transforms, void* out,
               void* stream) override {
    // Small batches: many blocks per item, kMinCellsPerLane cells per lane; larger batches: fewer,
    // as many as run in one wave.
    const int cells = G_ * G_;
    const int per_lane = cells_per_lane(cells, n, resident_, kMinCellsPerLane);
    const auto [blocks, chunk] = split_cells(cells, per_lane);
    MultiArgs a{};
    a.centre = heads[0];
    a.heat = heads[1];
    a.reg = heads[2];
    a.off = heads[3];
    a.box_scale = heads[4];
    a.box_off = heads[5];
    a.G = G_;
    a.min_pose_score = min_pose_score_;
    a.input_size = input_size_;
    a.tf = transforms;
    a.people = people_.as<Person>();
    a.chunk = chunk;
    a.keys = keys_.as<unsigned long long>();
    a.done = done_.as<unsigned>();
    a.out = out;
    a.max_poses = max_poses_;
    a.exhaustive = exhaustive_;
    const auto s = static_cast<cudaStream_t>(stream);
    (G_ == 64 ? multi_centres_kernel<64> : multi_centres_kernel<0>)<<<n, kCentreThreads, 0, s>>>(a);
    launch_check("multi_centres_kernel");
    multi_keypoints_kernel<<<dim3(blocks, n), kArgThreads, 0, s>>>(a);
    launch_check("multi_keypoints_kernel");
  }

 private:
  int G_;
  float input_size_;
  float min_pose_score_;
  int max_poses_;
  int resident_ = 1;  // blocks of the keypoint kernel the GPU runs at once
  bool exhaustive_ = false;  // $POSERT_DECODE_EXHAUSTIVE
  DeviceBuffer people_, keys_, done_;
};

}  // namespace

std::unique_ptr<DeviceDecoder> make_movenet_multi_decoder(const ModelSpec& spec, int max_batch,
                                                          const PoseItemLayout& layout, float min_pose_score) {
  return std::make_unique<MoveNetMultiDecoder>(spec, max_batch, layout, min_pose_score);
}

}  // namespace posert::cuda::detail
