// Optimized batched CPU decoders. Each keeps its reference's float operations, in the same order,
// on every value that reaches a result, so results are bitwise equal; the speed comes from
// threads over batch items (and over keypoints/people within an item), 4-wide SIMD on the
// dense loops, tables computed once per grid, and skipping work that provably cannot change an
// argmax (bounded by monotonicity of the float operations, see the single-pose and MultiPose
// keypoint searches).
#include "pose/cpu_decode.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "engine/engine_env.h"
#include "pose/movenet_multi.h"
#include "pose/movenet_single.h"
#include "pose/posenet.h"
#include "posert/error.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace posert {

namespace {

constexpr int kK = kPoseKeypoints;

// ---- 4-wide float/int vectors: SSE2 where available, plain arrays otherwise. Every lane
// operation is the IEEE float32 operation the scalar code does (no FMA, no approximations).
#if defined(__SSE2__)
struct V4 {
  __m128 v;
};
struct I4 {
  __m128i v;
};
inline V4 load(const float* p) { return {_mm_loadu_ps(p)}; }
inline void store(float* p, V4 a) { _mm_storeu_ps(p, a.v); }
inline V4 set1(float x) { return {_mm_set1_ps(x)}; }
inline I4 iset1(int x) { return {_mm_set1_epi32(x)}; }
inline void istore(int* p, I4 a) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), a.v); }
inline V4 operator+(V4 a, V4 b) { return {_mm_add_ps(a.v, b.v)}; }
inline V4 operator-(V4 a, V4 b) { return {_mm_sub_ps(a.v, b.v)}; }
inline V4 operator*(V4 a, V4 b) { return {_mm_mul_ps(a.v, b.v)}; }
inline V4 operator/(V4 a, V4 b) { return {_mm_div_ps(a.v, b.v)}; }
inline V4 vsqrt(V4 a) { return {_mm_sqrt_ps(a.v)}; }
// max(v, acc) as `v > acc ? v : acc`: a NaN v leaves acc unchanged (maxps returns its second
// operand when either is NaN), so accumulating this way ignores NaN.
inline V4 vmax_acc(V4 v, V4 acc) { return {_mm_max_ps(v.v, acc.v)}; }
// `a < b ? a : b` (minps): b when either is NaN.
inline V4 vmin(V4 a, V4 b) { return {_mm_min_ps(a.v, b.v)}; }
inline V4 gt_mask(V4 a, V4 b) { return {_mm_cmpgt_ps(a.v, b.v)}; }
inline V4 ge_mask(V4 a, V4 b) { return {_mm_cmpge_ps(a.v, b.v)}; }
inline V4 eq_mask(V4 a, V4 b) { return {_mm_cmpeq_ps(a.v, b.v)}; }
inline V4 mask_and(V4 a, V4 b) { return {_mm_and_ps(a.v, b.v)}; }
inline int movemask(V4 m) { return _mm_movemask_ps(m.v); }
inline V4 select(V4 m, V4 a, V4 b) { return {_mm_or_ps(_mm_and_ps(m.v, a.v), _mm_andnot_ps(m.v, b.v))}; }
inline I4 select(V4 m, I4 a, I4 b) {
  const __m128i mi = _mm_castps_si128(m.v);
  return {_mm_or_si128(_mm_and_si128(mi, a.v), _mm_andnot_si128(mi, b.v))};
}
#else
struct V4 {
  float v[4];
};
struct I4 {
  int v[4];
};
template <class F>
inline V4 map2(V4 a, V4 b, F f) {
  V4 r;
  for (int i = 0; i < 4; ++i) r.v[i] = f(a.v[i], b.v[i]);
  return r;
}
inline V4 load(const float* p) { return {{p[0], p[1], p[2], p[3]}}; }
inline void store(float* p, V4 a) { std::memcpy(p, a.v, sizeof(a.v)); }
inline V4 set1(float x) { return {{x, x, x, x}}; }
inline I4 iset1(int x) { return {{x, x, x, x}}; }
inline void istore(int* p, I4 a) { std::memcpy(p, a.v, sizeof(a.v)); }
inline V4 operator+(V4 a, V4 b) { return map2(a, b, [](float x, float y) { return x + y; }); }
inline V4 operator-(V4 a, V4 b) { return map2(a, b, [](float x, float y) { return x - y; }); }
inline V4 operator*(V4 a, V4 b) { return map2(a, b, [](float x, float y) { return x * y; }); }
inline V4 operator/(V4 a, V4 b) { return map2(a, b, [](float x, float y) { return x / y; }); }
inline V4 vsqrt(V4 a) { return map2(a, a, [](float x, float) { return std::sqrt(x); }); }
inline V4 vmax_acc(V4 v, V4 acc) { return map2(v, acc, [](float x, float m) { return x > m ? x : m; }); }
inline V4 vmin(V4 a, V4 b) { return map2(a, b, [](float x, float y) { return x < y ? x : y; }); }
inline float bits(bool b) {
  const uint32_t u = b ? 0xffffffffu : 0u;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline bool is_set(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u != 0;
}
inline V4 gt_mask(V4 a, V4 b) { return map2(a, b, [](float x, float y) { return bits(x > y); }); }
inline V4 ge_mask(V4 a, V4 b) { return map2(a, b, [](float x, float y) { return bits(x >= y); }); }
inline V4 eq_mask(V4 a, V4 b) { return map2(a, b, [](float x, float y) { return bits(x == y); }); }
inline V4 mask_and(V4 a, V4 b) { return map2(a, b, [](float x, float y) { return bits(is_set(x) && is_set(y)); }); }
inline int movemask(V4 m) {
  int r = 0;
  for (int i = 0; i < 4; ++i) r |= is_set(m.v[i]) ? 1 << i : 0;
  return r;
}
inline V4 select(V4 m, V4 a, V4 b) {
  V4 r;
  for (int i = 0; i < 4; ++i) r.v[i] = is_set(m.v[i]) ? a.v[i] : b.v[i];
  return r;
}
inline I4 select(V4 m, I4 a, I4 b) {
  I4 r;
  for (int i = 0; i < 4; ++i) r.v[i] = is_set(m.v[i]) ? a.v[i] : b.v[i];
  return r;
}
#endif

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The 17 keypoint channels of a cell as 5 overlapping 4-lane groups (lanes 13..15 twice): a
// lane's sequential argmax or max sees the same values in both copies, so the overlap is harmless.
constexpr int kGroupOffset[5] = {0, 4, 8, 12, 13};
constexpr int kGroups = 5;

// Writes poses (<= max_poses, each with 17 keypoints) into one wire item.
void write_item(const Pose* poses, int count, int max_poses, void* item) {
  auto* bytes = static_cast<unsigned char*>(item);
  std::memset(bytes, 0, PoseItemLayout{max_poses}.item_bytes());
  const int32_t c = count;
  std::memcpy(bytes, &c, 4);
  for (int i = 0; i < count; ++i) {
    PoseRecord r;
    r.score = poses[i].score;
    for (int j = 0; j < 4; ++j) r.bbox[j] = poses[i].bbox[j];
    for (int k = 0; k < kK; ++k) {
      r.kpt[k][0] = poses[i].keypoints[k].x;
      r.kpt[k][1] = poses[i].keypoints[k].y;
      r.kpt[k][2] = poses[i].keypoints[k].score;
    }
    std::memcpy(bytes + 16 + static_cast<size_t>(i) * sizeof(PoseRecord), &r, sizeof(r));
  }
}

// Index of the first maximum of v[0..n) the way a sequential `i == 0 || v[i] > best` scan finds it:
// NaN at index 0 sticks (result 0); other NaNs are never chosen.
size_t first_argmax(const float* v, size_t n) {
  if (n == 0 || std::isnan(v[0])) return 0;
  V4 m = set1(kNegInf);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) m = vmax_acc(load(v + i), m);
  float lanes[4];
  store(lanes, m);
  float best = kNegInf;
  for (float x : lanes) best = x > best ? x : best;
  for (; i < n; ++i) best = v[i] > best ? v[i] : best;
  for (size_t j = 0; j < n; ++j)
    if (v[j] == best) return j;
  return 0;
}

}  // namespace

// ================================================================================================
// Pose decoders
// ================================================================================================

struct CpuPoseDecoder::Impl {
  ModelSpec spec;
  DecodeOptions opt;
  ThreadPool pool;
  int G = 0;
  int cells = 0;
  std::vector<int> channels;  // per head

  // MoveNet single
  std::vector<float> centre_weight;  // G*G, movenet_centre_weight once per grid

  // Per-call scratch, grown as needed.
  std::vector<int> centre_cell;           // single: per item
  std::vector<int> kbest;                 // single: per item x 17; multi: per item x 6 x 17
  std::vector<float> worker_floats;       // per worker: G*G (single centre) + the keypoint search's
                                          // per-block table, PoseNet scores etc.
  size_t worker_stride = 0;

  struct Person {
    int cell = 0;
    float score = 0;
    float box[4]{};
    float ry[kK]{}, rx[kK]{};
    int ylo = 0, yhi = 0, xlo = 0, xhi = 0;  // cells inside the box: [ylo, yhi) x [xlo, xhi)
  };
  std::vector<Person> people;    // multi: per item x 6
  std::vector<float> block_max;  // multi: per item x G x nblocks x 17
  int nblocks = 0;
  static constexpr int kBlock = 8;

  // PoseNet
  PoseNetParams pn;

  Impl(const ModelSpec& s, const DecodeOptions& o, int threads)
      : spec(s), opt(o), pool(threads, pool_spin_us_from_env(ThreadPool::kDefaultSpinUs)) {}

  // Inputs of one call.
  const std::vector<const float*>* heads = nullptr;
  const CropTransform* transforms = nullptr;
  unsigned char* out = nullptr;
  int max_poses = 1;

  const float* head(int i, int b) const {
    return (*heads)[static_cast<size_t>(i)] + static_cast<size_t>(b) * cells * channels[static_cast<size_t>(i)];
  }
  CropTransform transform(int b) const { return transforms ? transforms[b] : CropTransform{}; }
  unsigned char* item(int b) const { return out + static_cast<size_t>(b) * PoseItemLayout{max_poses}.item_bytes(); }
  float* worker_buf(int w) { return worker_floats.data() + static_cast<size_t>(w) * worker_stride; }

  // ---------------------------------------------------------------- MoveNet single
  void single_centre(int b, int worker) {
    const float* centre = head(0, b);
    float* v = worker_buf(worker);
    size_t i = 0;
    for (; i + 4 <= static_cast<size_t>(cells); i += 4) store(v + i, load(centre + i) * load(&centre_weight[i]));
    for (; i < static_cast<size_t>(cells); ++i) v[i] = centre[i] * centre_weight[i];
    centre_cell[static_cast<size_t>(b)] = static_cast<int>(first_argmax(v, static_cast<size_t>(cells)));
  }

  // Keypoints kGroupOffset[g] .. +3 of item b: per keypoint (lane) the reference's sequential
  // argmax over cells of heat / (distance to the regressed position + eps), the same expression
  // on every cell it evaluates, but evaluated only in the blocks of kBlock cells of a row that can
  // hold the maximum. A block is skipped when, in every lane, an upper bound of its values is
  // below `known`, the largest exact value of cells evaluated first (cell 0 and the 3x3 cells
  // nearest the regressed position, clamped to the grid): the bound is hmax / den_lb, where hmax
  // is the block's largest heat value (NaN ignored) and den_lb the denominator with the smallest
  // dx * dx of the block's columns. Rounding is monotone, so every cell of the block has
  // den >= den_lb and, for h >= 0, h / den <= hmax / den_lb; a negative h gives a value <= 0, so
  // the bound is max(0, hmax / den_lb) (NaN kept: a NaN bound never skips). A skipped block's
  // values are strictly below the maximum, so the in-order strict-greater scan of the other
  // blocks, started from cell 0's value as the reference's is, picks the reference's cell (the
  // first maximal one, or cell 0 when its value is NaN). A NaN cell elsewhere never wins either
  // way. `scratch` holds nblocks * 4 floats.
  void single_keypoints(int b, int g, float* scratch) {
    const int best = centre_cell[static_cast<size_t>(b)];
    const float* heat = head(1, b);
    const float* reg = head(2, b) + static_cast<size_t>(best) * 2 * kK;
    const int cy = best / G, cx = best % G;
    float ryv[4], rxv[4];
    for (int l = 0; l < 4; ++l) {
      const int k = kGroupOffset[g] + l;
      ryv[l] = static_cast<float>(cy) + reg[2 * k];
      rxv[l] = static_cast<float>(cx) + reg[2 * k + 1];
    }
    const V4 ry = load(ryv), rx = load(rxv), eps = set1(kMoveNetKeypointDistEps);
    const float* h = heat + kGroupOffset[g];
    // Cell 0's value: where the reference's scan starts.
    const V4 dy0 = set1(0.0f) - ry, dx0 = set1(0.0f) - rx;
    const V4 v0 = load(h) / (vsqrt(dy0 * dy0 + dx0 * dx0) + eps);
    V4 known = vmax_acc(v0, set1(kNegInf));
    // Seed: the 3x3 cells nearest each lane's regressed position (per lane, the same operations).
    auto nearest = [this](float v) {
      const float r = std::nearbyint(v);
      if (!(r >= 0.0f)) return 0;
      if (!(r <= static_cast<float>(G - 1))) return G - 1;
      return static_cast<int>(r);
    };
    int ny[4], nx[4];
    for (int l = 0; l < 4; ++l) ny[l] = nearest(ryv[l]), nx[l] = nearest(rxv[l]);
    for (int oy = -1; oy <= 1; ++oy)
      for (int ox = -1; ox <= 1; ++ox) {
        float Y[4], X[4], hv[4];
        for (int l = 0; l < 4; ++l) {
          const int y = std::clamp(ny[l] + oy, 0, G - 1), x = std::clamp(nx[l] + ox, 0, G - 1);
          Y[l] = static_cast<float>(y), X[l] = static_cast<float>(x);
          hv[l] = h[static_cast<size_t>(y * G + x) * kK + l];
        }
        const V4 dy = load(Y) - ry, dx = load(X) - rx;
        known = vmax_acc(load(hv) / (vsqrt(dy * dy + dx * dx) + eps), known);
      }
    // The smallest dx * dx of each block's columns.
    for (int blk = 0; blk < nblocks; ++blk) {
      V4 m = set1(HUGE_VALF);
      for (int x = blk * kBlock; x < std::min(G, (blk + 1) * kBlock); ++x) {
        const V4 dx = set1(static_cast<float>(x)) - rx;
        m = vmin(dx * dx, m);
      }
      store(scratch + 4 * blk, m);
    }
    const V4 zero = set1(0.0f);
    V4 bv = v0;
    I4 bi = iset1(0);
    for (int y = 0; y < G; ++y) {
      const V4 dy = set1(static_cast<float>(y)) - ry;
      const V4 dy2 = dy * dy;
      for (int blk = 0; blk < nblocks; ++blk) {
        const int x0 = blk * kBlock, x1 = std::min(G, x0 + kBlock);
        V4 hmax = set1(kNegInf);
        for (int x = x0; x < x1; ++x) hmax = vmax_acc(load(h + static_cast<size_t>(y * G + x) * kK), hmax);
        // max(0, q) with a NaN q kept: vmax_acc(v, acc) keeps acc when either is NaN.
        const V4 bound = vmax_acc(zero, hmax / (vsqrt(dy2 + load(scratch + 4 * blk)) + eps));
        if (movemask(gt_mask(known, bound)) == 0xF) continue;
        for (int x = x0; x < x1; ++x) {
          const int cell = y * G + x;
          const V4 dx = set1(static_cast<float>(x)) - rx;
          const V4 v = load(h + static_cast<size_t>(cell) * kK) / (vsqrt(dy2 + dx * dx) + eps);
          const V4 gt = gt_mask(v, bv);
          bv = select(gt, v, bv);
          bi = select(gt, iset1(cell), bi);
        }
      }
    }
    int idx[4];
    istore(idx, bi);
    // Group 4 repeats keypoints 13..15 of group 3; only its keypoint 16 is new (and written once).
    for (int l = g == 4 ? 3 : 0; l < 4; ++l) kbest[static_cast<size_t>(b) * kK + kGroupOffset[g] + l] = idx[l];
  }

  void single_finish(int b) {
    const int G_ = G;
    const float* heat = head(1, b);
    const float* off = head(3, b);
    const float scale = movenet_output_scale(G_);
    const float s = static_cast<float>(spec.input_size);
    Pose p;
    p.keypoints.resize(kK);
    float sum = 0;
    float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    for (int k = 0; k < kK; ++k) {
      const size_t kb = static_cast<size_t>(kbest[static_cast<size_t>(b) * kK + k]);
      const int ky = static_cast<int>(kb) / G_, kx = static_cast<int>(kb) % G_;
      const float yy = static_cast<float>(ky) + off[kb * 2 * kK + 2 * k];
      const float xx = static_cast<float>(kx) + off[kb * 2 * kK + 2 * k + 1];
      Keypoint& kp = p.keypoints[k];
      kp.y = (yy * scale) * s;
      kp.x = (xx * scale) * s;
      kp.score = heat[kb * kK + k];
      sum += kp.score;
      x0 = k == 0 ? kp.x : std::min(x0, kp.x);
      y0 = k == 0 ? kp.y : std::min(y0, kp.y);
      x1 = k == 0 ? kp.x : std::max(x1, kp.x);
      y1 = k == 0 ? kp.y : std::max(y1, kp.y);
    }
    p.score = sum / kK;
    p.bbox = {x0, y0, x1 - x0, y1 - y0};
    map_pose(p, transform(b));
    write_item(&p, 1, 1, item(b));
  }

  // ---------------------------------------------------------------- MoveNet multi
  // The reference's weighted(): the keypoint heatmap times a Gaussian around the person's
  // regressed keypoint inside the box, h * 0 (or NaN) outside.
  float multi_weighted(const float* heat, const Person& P, int cell, int k) const {
    const float Y = static_cast<float>(cell / G), X = static_cast<float>(cell % G);
    const float dy = Y - P.ry[k], dx = X - P.rx[k];
    const float d2 = dy * dy + dx * dx;
    const float h = heat[static_cast<size_t>(cell) * kK + k];
    if (Y >= P.box[0] && X >= P.box[1] && Y < P.box[2] && X < P.box[3])
      return h * std::exp(-d2 / (static_cast<float>(G) * kMoveNetMultiSigmaPerCell));
    return std::isnan(d2) ? d2 : h * 0.0f;
  }

  void multi_prepare(int b, int worker) {
    const float* centre = head(0, b);
    const float* heat = head(1, b);
    const float* reg = head(2, b);
    const float* box_scale = head(4, b);
    const float* box_off = head(5, b);
    const float Gf = static_cast<float>(G);
    // Centre NMS, separable 5x5 max ignoring NaN (a NaN centre gives NaN either way).
    float* rowmax = worker_buf(worker);
    float* peaks = rowmax + cells;
    for (int y = 0; y < G; ++y)
      for (int x = 0; x < G; ++x) {
        float m = kNegInf;
        for (int xx = std::max(0, x - 2); xx <= std::min(G - 1, x + 2); ++xx) {
          const float v = centre[y * G + xx];
          m = v > m ? v : m;
        }
        rowmax[y * G + x] = m;
      }
    for (int y = 0; y < G; ++y)
      for (int x = 0; x < G; ++x) {
        float m = kNegInf;
        for (int yy = std::max(0, y - 2); yy <= std::min(G - 1, y + 2); ++yy) {
          const float v = rowmax[yy * G + x];
          m = v > m ? v : m;
        }
        const float c = centre[y * G + x];
        peaks[y * G + x] = c * (std::fabs(c - m) < kMoveNetMultiNmsEps ? 1.0f : 0.0f);
      }
    // TopK 6 by (value desc, index asc), NaN as -inf: one pass with a sorted insertion list.
    int top[kMoveNetMultiPeople];
    float topk[kMoveNetMultiPeople];
    int count = 0;
    for (int i = 0; i < cells; ++i) {
      const float key = std::isnan(peaks[i]) ? -HUGE_VALF : peaks[i];
      if (count == kMoveNetMultiPeople && !(key > topk[count - 1])) continue;
      int pos = count < kMoveNetMultiPeople ? count : kMoveNetMultiPeople - 1;
      while (pos > 0 && key > topk[pos - 1]) {
        if (pos < kMoveNetMultiPeople) top[pos] = top[pos - 1], topk[pos] = topk[pos - 1];
        --pos;
      }
      top[pos] = i;
      topk[pos] = key;
      if (count < kMoveNetMultiPeople) ++count;
    }
    Person* people_b = &people[static_cast<size_t>(b) * kMoveNetMultiPeople];
    for (int p = 0; p < kMoveNetMultiPeople; ++p) {
      Person& P = people_b[p];
      P = Person{};
      P.cell = top[p];
      P.score = peaks[P.cell];
      const float cy = static_cast<float>(P.cell / G), cx = static_cast<float>(P.cell % G);
      const float h = std::max(box_scale[P.cell * 2], 0.0f), w = std::max(box_scale[P.cell * 2 + 1], 0.0f);
      const float by = cy + box_off[P.cell * 2], bx = cx + box_off[P.cell * 2 + 1];
      const float raw[4] = {by - h * 0.5f, bx - w * 0.5f, by + h * 0.5f, bx + w * 0.5f};
      for (int i = 0; i < 4; ++i) P.box[i] = std::max(std::min(raw[i], Gf), 0.0f);
      for (int k = 0; k < kK; ++k) {
        P.ry[k] = cy + reg[static_cast<size_t>(P.cell) * 2 * kK + 2 * k];
        P.rx[k] = cx + reg[static_cast<size_t>(P.cell) * 2 * kK + 2 * k + 1];
      }
      // The box test is separable: rows with box[0] <= Y < box[2], columns likewise (an interval).
      P.ylo = G, P.yhi = 0, P.xlo = G, P.xhi = 0;
      for (int i = 0; i < G; ++i) {
        const float f = static_cast<float>(i);
        if (f >= P.box[0] && f < P.box[2]) P.ylo = std::min(P.ylo, i), P.yhi = i + 1;
        if (f >= P.box[1] && f < P.box[3]) P.xlo = std::min(P.xlo, i), P.xhi = i + 1;
      }
    }
    // Max of each keypoint heatmap over blocks of kBlock cells of a row (NaN ignored): an upper
    // bound that lets the keypoint search skip whole blocks.
    float* bm = &block_max[static_cast<size_t>(b) * G * nblocks * kK];
    for (int y = 0; y < G; ++y)
      for (int blk = 0; blk < nblocks; ++blk) {
        V4 m[kGroups];
        for (auto& v : m) v = set1(kNegInf);
        for (int x = blk * kBlock; x < std::min(G, (blk + 1) * kBlock); ++x) {
          const float* h = heat + static_cast<size_t>(y * G + x) * kK;
          for (int g = 0; g < kGroups; ++g) m[g] = vmax_acc(load(h + kGroupOffset[g]), m[g]);
        }
        float* dst = bm + (static_cast<size_t>(y) * nblocks + blk) * kK;
        for (int g = 0; g < kGroups; ++g) store(dst + kGroupOffset[g], m[g]);  // overlap: same values
      }
  }

  // Argmax over cells of multi_weighted(cell, p, k) as the reference's sequential strict-greater
  // scan defines it (first maximal cell; NaN ignored unless at cell 0, where it wins). Outside the
  // box every finite h gives +-0, so the outside contributes (0, first outside cell with finite h).
  // Inside, a cell with h < best (best > 0) cannot beat best: exp(...) is in [0, 1] and float
  // multiplication is monotone, so h * exp(...) <= max(h, 0) < best. That skips exp for most
  // cells; the candidates are combined order-independently (larger value, then smaller index).
  int multi_argmax(const float* heat, const float* bm, const Person& P, int k) const {
    if (std::isnan(multi_weighted(heat, P, 0, k))) return 0;
    int out_cell = -1;
    auto find_outside = [&](int y, int xa, int xb) {
      for (int x = xa; x < xb && out_cell < 0; ++x)
        if (std::isfinite(heat[static_cast<size_t>(y * G + x) * kK + k])) out_cell = y * G + x;
    };
    for (int y = 0; y < G && out_cell < 0; ++y) {
      if (y < P.ylo || y >= P.yhi || P.xlo >= P.xhi) {
        find_outside(y, 0, G);
      } else {
        find_outside(y, 0, P.xlo);
        find_outside(y, P.xhi, G);
      }
    }
    bool has = false;
    float bv = 0;
    int bi = 0;
    const float sigma = static_cast<float>(G) * kMoveNetMultiSigmaPerCell;
    auto visit = [&](int y, int x) {
      const int cell = y * G + x;
      const float h = heat[static_cast<size_t>(cell) * kK + k];
      if (has && bv > 0 && h < bv) return;
      const float dy = static_cast<float>(y) - P.ry[k], dx = static_cast<float>(x) - P.rx[k];
      const float d2 = dy * dy + dx * dx;
      const float v = h * std::exp(-d2 / sigma);
      if (std::isnan(v)) return;
      if (!has || v > bv || (v == bv && cell < bi)) has = true, bv = v, bi = cell;
    };
    if (P.ylo < P.yhi && P.xlo < P.xhi) {
      // Seed the bound with the 5x5 cells nearest the regressed position (clamped to the box).
      auto clamp_cell = [](float v, int lo, int hi) {
        const float r = std::nearbyint(v);
        if (!(r >= static_cast<float>(lo))) return lo;
        if (!(r <= static_cast<float>(hi - 1))) return hi - 1;
        return static_cast<int>(r);
      };
      const int sy = clamp_cell(P.ry[k], P.ylo, P.yhi), sx = clamp_cell(P.rx[k], P.xlo, P.xhi);
      for (int y = std::max(P.ylo, sy - 2); y <= std::min(P.yhi - 1, sy + 2); ++y)
        for (int x = std::max(P.xlo, sx - 2); x <= std::min(P.xhi - 1, sx + 2); ++x) visit(y, x);
      for (int y = P.ylo; y < P.yhi; ++y)
        for (int blk = P.xlo / kBlock; blk * kBlock < P.xhi; ++blk) {
          if (has && bv > 0 && bm[(static_cast<size_t>(y) * nblocks + blk) * kK + k] < bv) continue;
          for (int x = std::max(P.xlo, blk * kBlock); x < std::min(P.xhi, (blk + 1) * kBlock); ++x) visit(y, x);
        }
    }
    if (!has) return out_cell >= 0 ? out_cell : 0;
    if (out_cell < 0 || bv > 0) return bi;
    if (bv < 0) return out_cell;
    return std::min(bi, out_cell);  // both 0: the earlier cell
  }

  void multi_person(int b, int p) {
    const float* heat = head(1, b);
    const float* bm = &block_max[static_cast<size_t>(b) * G * nblocks * kK];
    const Person& P = people[static_cast<size_t>(b) * kMoveNetMultiPeople + p];
    int* best = &kbest[(static_cast<size_t>(b) * kMoveNetMultiPeople + p) * kK];
    for (int k = 0; k < kK; ++k) best[k] = multi_argmax(heat, bm, P, k);
  }

  void multi_finish(int b) {
    const float* heat = head(1, b);
    const float* off = head(3, b);
    const Person* people_b = &people[static_cast<size_t>(b) * kMoveNetMultiPeople];
    const float Gf = static_cast<float>(G);
    const float kStride = 4.0f;
    const float scale = kStride / (Gf * kStride);
    const float s = static_cast<float>(spec.input_size);
    Pose poses[kMoveNetMultiPeople];
    int count = 0;
    for (int p = 0; p < kMoveNetMultiPeople; ++p) {
      float row[kMoveNetMultiRow];
      float cnt = 0, sum = 0;
      for (int k = 0; k < kK; ++k) {
        const int cell = kbest[(static_cast<size_t>(b) * kMoveNetMultiPeople + p) * kK + k];
        float score = multi_weighted(heat, people_b[0], cell, k);
        for (int q = 1; q < kMoveNetMultiPeople; ++q) score = std::max(score, multi_weighted(heat, people_b[q], cell, k));
        const float ky = static_cast<float>(cell / G), kx = static_cast<float>(cell % G);
        row[3 * k + 0] = (ky + off[static_cast<size_t>(cell) * 2 * kK + 2 * k]) * scale;
        row[3 * k + 1] = (kx + off[static_cast<size_t>(cell) * 2 * kK + 2 * k + 1]) * scale;
        row[3 * k + 2] = score;
        const bool counted = score > kMoveNetMultiKeypointThreshold;
        cnt += counted ? 1.0f : 0.0f;
        sum += people_b[p].score * (counted ? score : 0.0f);
      }
      for (int i = 0; i < 4; ++i)
        row[3 * kK + i] = std::max(std::min(people_b[p].box[i] * kStride / (Gf * kStride), 1.0f), 0.0f);
      row[kMoveNetMultiRow - 1] = (1.0f / std::max(cnt, 1.0f)) * sum;
      // decode_movenet_multi's row -> Pose.
      const float score = row[kMoveNetMultiRow - 1];
      if (!(score > 0.0f) || score < opt.min_pose_score) continue;
      Pose& pose = poses[count++];
      pose.score = score;
      pose.keypoints.resize(kK);
      for (int k = 0; k < kK; ++k) pose.keypoints[k] = Keypoint{row[3 * k + 1] * s, row[3 * k] * s, row[3 * k + 2]};
      const float* box = row + 3 * kK;
      pose.bbox = {box[1] * s, box[0] * s, (box[3] - box[1]) * s, (box[2] - box[0]) * s};
      map_pose(pose, transform(b));
    }
    write_item(poses, count, max_poses, item(b));
  }

  // ---------------------------------------------------------------- PoseNet
  void posenet_item(int b, int worker);
};

// PoseNet: sigmoid, part peaks by a separable max, then the reference's grouping (posenet_group)
// fed from a heap instead of a fully sorted queue.
namespace {

constexpr int kPnStride = 16;
constexpr int kPnEdges = 16;

struct PnPart {
  float score;
  int index;  // (y * G + x) * 17 + k: the reference's queue order among equal scores
};

}  // namespace

void CpuPoseDecoder::Impl::posenet_item(int b, int worker) {
  const size_t n = static_cast<size_t>(cells) * kK;
  const float* logits = head(0, b);
  float* scores = worker_buf(worker);
  float* rowmax = scores + n;
  float* colmax = rowmax + n;
  // Sigmoid only where it can matter for the peaks: a logit more than 0.01 below
  // logit(threshold) gives a score below the threshold (float32 sigmoid is within a few ulp of
  // the real one, far inside that margin), so such a cell is neither a peak nor larger than one;
  // it is stored as -inf. The grouping reads exact scores from the logits (posenet_score).
  const float thr = pn.part_threshold;
  float cut = kNegInf;
  if (thr > 1e-6f && thr < 0.999f) cut = static_cast<float>(std::log(static_cast<double>(thr) / (1.0 - thr)) - 0.01);
  for (size_t i = 0; i < n; ++i)
    scores[i] = logits[i] < cut ? kNegInf : posenet_score(logits[i]);
  // Window max per keypoint (NaN ignored): rows, then columns; flat index (y*G + x)*17 + k, so
  // a shift of one cell is 17 floats.
  const int r = pn.local_maximum_radius;
  for (int y = 0; y < G; ++y)
    for (int x = 0; x < G; ++x) {
      const int xa = std::max(0, x - r), xb = std::min(G - 1, x + r);
      float* dst = rowmax + static_cast<size_t>(y * G + x) * kK;
      for (int g = 0; g < kGroups; ++g) {
        V4 m = set1(kNegInf);
        for (int xx = xa; xx <= xb; ++xx) m = vmax_acc(load(scores + static_cast<size_t>(y * G + xx) * kK + kGroupOffset[g]), m);
        store(dst + kGroupOffset[g], m);
      }
    }
  for (int y = 0; y < G; ++y) {
    const int ya = std::max(0, y - r), yb = std::min(G - 1, y + r);
    const size_t row = static_cast<size_t>(G) * kK;
    float* dst = colmax + y * row;
    size_t j = 0;
    for (; j + 4 <= row; j += 4) {
      V4 m = set1(kNegInf);
      for (int yy = ya; yy <= yb; ++yy) m = vmax_acc(load(rowmax + yy * row + j), m);
      store(dst + j, m);
    }
    for (; j < row; ++j) {
      float m = kNegInf;
      for (int yy = ya; yy <= yb; ++yy) m = rowmax[yy * row + j] > m ? rowmax[yy * row + j] : m;
      dst[j] = m;
    }
  }
  // A part is a root candidate when score >= threshold and nothing in its window is larger,
  // i.e. it equals the window max.
  std::vector<PnPart> queue;
  queue.reserve(256);
  const V4 thr4 = set1(thr);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const V4 sv = load(scores + i);
    for (int bits = movemask(mask_and(ge_mask(sv, thr4), eq_mask(sv, load(colmax + i)))); bits; bits &= bits - 1) {
      const size_t j = i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(bits)));
      queue.push_back({scores[j], static_cast<int>(j)});
    }
  }
  for (; i < n; ++i)
    if (scores[i] >= thr && scores[i] == colmax[i]) queue.push_back({scores[i], static_cast<int>(i)});
  auto worse = [](const PnPart& a, const PnPart& c) {
    return a.score < c.score || (a.score == c.score && a.index > c.index);
  };
  std::make_heap(queue.begin(), queue.end(), worse);

  // Roots in the reference's order (score descending, then the earlier part) straight off the
  // heap; the grouping is the reference's own (posenet_group).
  auto end = queue.end();
  std::vector<Pose> outp = posenet_group({G, logits, head(1, b), head(2, b), head(3, b)}, pn, [&](PoseNetRoot* r) {
    if (end == queue.begin()) return false;
    std::pop_heap(queue.begin(), end, worse);
    --end;
    const int cell = end->index / kK;
    *r = {end->score, cell / G, cell % G, end->index % kK};
    return true;
  });
  for (auto& p : outp) map_pose(p, transform(b));
  const int count = std::min(static_cast<int>(outp.size()), max_poses);
  write_item(outp.data(), count, max_poses, item(b));
}

CpuPoseDecoder::CpuPoseDecoder(const ModelSpec& spec, const DecodeOptions& opt, int threads)
    : impl_(std::make_unique<Impl>(spec, opt, threads)) {
  Impl& m = *impl_;
  switch (spec.decoder) {
    case DecoderKind::MoveNetSingle:
      m.G = spec.input_size / 4;
      m.channels = {1, kK, 2 * kK, 2 * kK};
      m.max_poses = 1;
      break;
    case DecoderKind::MoveNetMulti:
      m.G = spec.input_size / 4;
      m.channels = {1, kK, 2 * kK, 2 * kK, 2, 2};
      m.max_poses = kMoveNetMultiPeople;
      break;
    case DecoderKind::PoseNet:
      m.G = (spec.input_size - 1) / kPnStride + 1;
      m.channels = {kK, 2 * kK, 2 * kPnEdges, 2 * kPnEdges};
      m.max_poses = spec.max_people;
      // decode_heads' mapping of DecodeOptions.
      if (opt.min_keypoint_score > 0) m.pn.part_threshold = opt.min_keypoint_score;
      m.pn.max_detections = spec.max_people;
      m.pn.min_pose_score = opt.min_pose_score;
      break;
  }
  if (m.G <= 0 || m.max_poses < 1 || m.max_poses > kMaxPosesPerItem)
    throw Error("CPU decoder: model '" + spec.name + "' has an unsupported input size or max_people");
  if (spec.head_values.size() != m.channels.size())
    throw Error("CPU decoder: model '" + spec.name + "' names " + std::to_string(spec.head_values.size()) +
                " heads, its decoder needs " + std::to_string(m.channels.size()));
  m.cells = m.G * m.G;
  if (spec.decoder == DecoderKind::MoveNetSingle) {
    m.centre_weight.resize(static_cast<size_t>(m.cells));
    for (int y = 0; y < m.G; ++y)
      for (int x = 0; x < m.G; ++x) m.centre_weight[static_cast<size_t>(y * m.G + x)] = movenet_centre_weight(m.G, y, x);
  }
  m.nblocks = (m.G + Impl::kBlock - 1) / Impl::kBlock;
  // PoseNet: scores and peak tables; MoveNet: two grids (single: the centre values, then its
  // keypoint search's per-block table after them).
  m.worker_stride = spec.decoder == DecoderKind::PoseNet ? static_cast<size_t>(m.cells) * kK * 3
                                                         : static_cast<size_t>(m.cells) * 2 + static_cast<size_t>(m.nblocks) * 4;
  m.worker_floats.resize(m.worker_stride * static_cast<size_t>(m.pool.size()));
}

CpuPoseDecoder::~CpuPoseDecoder() = default;

int CpuPoseDecoder::max_poses() const { return impl_->max_poses; }
int CpuPoseDecoder::grid() const { return impl_->G; }
int CpuPoseDecoder::head_channels(int i) const { return impl_->channels.at(static_cast<size_t>(i)); }
int CpuPoseDecoder::threads() const { return impl_->pool.size(); }

void CpuPoseDecoder::decode(const std::vector<const float*>& heads, int n, const CropTransform* transforms,
                            void* out) {
  Impl& m = *impl_;
  if (n < 0) throw Error("CPU decoder: negative batch size " + std::to_string(n));
  if (heads.size() != m.channels.size())
    throw Error("CPU decoder for '" + m.spec.name + "': expected " + std::to_string(m.channels.size()) +
                " head pointers, got " + std::to_string(heads.size()));
  if (n == 0) return;
  for (size_t i = 0; i < heads.size(); ++i)
    if (!heads[i]) throw Error("CPU decoder for '" + m.spec.name + "': head " + std::to_string(i) + " is null");
  if (!out) throw Error("CPU decoder for '" + m.spec.name + "': null output buffer");
  m.heads = &heads;
  m.transforms = transforms;
  m.out = static_cast<unsigned char*>(out);
  ThreadPool& pool = m.pool;
  // With at least as many items as threads, one task per item; otherwise also split items.
  const bool per_item = n >= pool.size();
  switch (m.spec.decoder) {
    case DecoderKind::MoveNetSingle:
      m.centre_cell.resize(static_cast<size_t>(n));
      m.kbest.resize(static_cast<size_t>(n) * kK);
      if (per_item) {
        pool.parallel_for(n, [&](int b, int w) {
          m.single_centre(b, w);
          for (int g = 0; g < kGroups; ++g) m.single_keypoints(b, g, m.worker_buf(w) + m.cells);
          m.single_finish(b);
        });
      } else {
        pool.parallel_for(n, [&](int b, int w) { m.single_centre(b, w); });
        pool.parallel_for(n * kGroups,
                          [&](int t, int w) { m.single_keypoints(t / kGroups, t % kGroups, m.worker_buf(w) + m.cells); });
        for (int b = 0; b < n; ++b) m.single_finish(b);
      }
      break;
    case DecoderKind::MoveNetMulti:
      m.people.resize(static_cast<size_t>(n) * kMoveNetMultiPeople);
      m.kbest.resize(static_cast<size_t>(n) * kMoveNetMultiPeople * kK);
      m.block_max.resize(static_cast<size_t>(n) * m.G * m.nblocks * kK);
      if (per_item) {
        pool.parallel_for(n, [&](int b, int w) {
          m.multi_prepare(b, w);
          for (int p = 0; p < kMoveNetMultiPeople; ++p) m.multi_person(b, p);
          m.multi_finish(b);
        });
      } else {
        pool.parallel_for(n, [&](int b, int w) { m.multi_prepare(b, w); });
        pool.parallel_for(n * kMoveNetMultiPeople,
                          [&](int t, int) { m.multi_person(t / kMoveNetMultiPeople, t % kMoveNetMultiPeople); });
        pool.parallel_for(n, [&](int b, int) { m.multi_finish(b); });
      }
      break;
    case DecoderKind::PoseNet:
      pool.parallel_for(n, [&](int b, int w) { m.posenet_item(b, w); });
      break;
  }
  m.heads = nullptr;
}

// ================================================================================================
// Generic heatmap decoder
// ================================================================================================

struct CpuHeatmapDecoder::Scratch {
  std::vector<float> hx;  // h x out_w: source rows interpolated along x
  std::vector<float> u;   // out_h x out_w: the upsampled heatmap
  std::vector<float> rm;  // out_h x out_w: max over the x window
  std::vector<float> cm;  // out_w: max over the full window, one row
};

namespace {

struct Taps {
  std::vector<int> y0, y1, x0, x1;
  std::vector<float> fy, fx;
};

// heatmap_decode.h step 1's source indices and weights, once per axis.
void make_taps(int in, int out, std::vector<int>& i0, std::vector<int>& i1, std::vector<float>& f) {
  const float ratio = static_cast<float>(in) / static_cast<float>(out);
  i0.resize(static_cast<size_t>(out));
  i1.resize(static_cast<size_t>(out));
  f.resize(static_cast<size_t>(out));
  for (int o = 0; o < out; ++o) {
    const float s = (static_cast<float>(o) + 0.5f) * ratio - 0.5f;
    i0[static_cast<size_t>(o)] = std::max(static_cast<int>(std::floor(s)), 0);
    i1[static_cast<size_t>(o)] = std::min(static_cast<int>(std::ceil(s)), in - 1);
    f[static_cast<size_t>(o)] = s - std::floor(s);
  }
}

// Max over x-r..x+r (clipped), NaN ignored, of one row.
void row_window_max(const float* u, float* dst, int w, int r) {
  auto scalar = [&](int x) {
    float m = kNegInf;
    for (int xx = std::max(0, x - r); xx <= std::min(w - 1, x + r); ++xx) m = u[xx] > m ? u[xx] : m;
    dst[x] = m;
  };
  int x = 0;
  for (; x < std::min(r, w); ++x) scalar(x);
  for (; x + 4 + r <= w; x += 4) {
    V4 m = set1(kNegInf);
    for (int d = -r; d <= r; ++d) m = vmax_acc(load(u + x + d), m);
    store(dst + x, m);
  }
  for (; x < w; ++x) scalar(x);
}

void decode_unit(const float* heatmaps, int b, int c, int h, int w, int K, const Taps& tp,
                 const CropTransform* transforms, const HeatmapDecodeParams& p, CpuHeatmapDecoder::Scratch& s,
                 HeatmapPeaks& res) {
  const int OH = p.out_h, OW = p.out_w, r = p.nms_radius;
  const float* H = heatmaps + static_cast<size_t>(b) * h * w * K + c;
  // 1. Upsample: rows along x once per source row, then each output row from two of them.
  for (int sy = 0; sy < h; ++sy) {
    const float* src = H + static_cast<size_t>(sy) * w * K;
    float* dst = &s.hx[static_cast<size_t>(sy) * OW];
    for (int x = 0; x < OW; ++x) {
      const float a = src[static_cast<size_t>(tp.x0[static_cast<size_t>(x)]) * K];
      const float bb = src[static_cast<size_t>(tp.x1[static_cast<size_t>(x)]) * K];
      dst[x] = a + (bb - a) * tp.fx[static_cast<size_t>(x)];
    }
  }
  for (int y = 0; y < OH; ++y) {
    const float* top = &s.hx[static_cast<size_t>(tp.y0[static_cast<size_t>(y)]) * OW];
    const float* bot = &s.hx[static_cast<size_t>(tp.y1[static_cast<size_t>(y)]) * OW];
    const float fy = tp.fy[static_cast<size_t>(y)];
    float* dst = &s.u[static_cast<size_t>(y) * OW];
    int x = 0;
    const V4 fyv = set1(fy);
    for (; x + 4 <= OW; x += 4) {
      const V4 t = load(top + x);
      store(dst + x, t + (load(bot + x) - t) * fyv);
    }
    for (; x < OW; ++x) dst[x] = top[x] + (bot[x] - top[x]) * fy;
    row_window_max(dst, &s.rm[static_cast<size_t>(y) * OW], OW, r);
  }
  // 2-5. Peaks row by row, kept in a sorted list of at most top_k (raster order of discovery
  // makes ties go after the peaks already kept).
  const CropTransform t = transforms ? transforms[b] : CropTransform{};
  const size_t slot = static_cast<size_t>(b) * K + c;
  HeatmapPeak* best = &res.peaks[slot * p.top_k];
  int count = 0;
  const V4 thr = set1(p.threshold);
  for (int y = 0; y < OH; ++y) {
    const int ya = std::max(0, y - r), yb = std::min(OH - 1, y + r);
    const float* u = &s.u[static_cast<size_t>(y) * OW];
    float* cm = s.cm.data();
    int x = 0;
    for (; x + 4 <= OW; x += 4) {
      V4 m = set1(kNegInf);
      for (int yy = ya; yy <= yb; ++yy) m = vmax_acc(load(&s.rm[static_cast<size_t>(yy) * OW + x]), m);
      store(cm + x, m);
    }
    for (; x < OW; ++x) {
      float m = kNegInf;
      for (int yy = ya; yy <= yb; ++yy) {
        const float v = s.rm[static_cast<size_t>(yy) * OW + x];
        m = v > m ? v : m;
      }
      cm[x] = m;
    }
    auto peak = [&](int px) {
      const float v = u[px];
      if (count == p.top_k && !(v > best[count - 1].score)) return;
      float dx = 0, dy = 0;
      if (px > 0 && px < OW - 1) {
        const float L = u[px - 1], C = v, R = u[px + 1];
        const float den = L - 2.0f * C + R;
        if (den < 0) dx = std::clamp(0.5f * (L - R) / den, -0.5f, 0.5f);
      }
      if (y > 0 && y < OH - 1) {
        const float T = u[px - OW], C = v, B = u[px + OW];
        const float den = T - 2.0f * C + B;
        if (den < 0) dy = std::clamp(0.5f * (T - B) / den, -0.5f, 0.5f);
      }
      const float mx = static_cast<float>(px) + 0.5f + dx;
      const float my = static_cast<float>(y) + 0.5f + dy;
      const HeatmapPeak pk{mx * t.scale_x + t.offset_x, my * t.scale_y + t.offset_y, v};
      int pos = count < p.top_k ? count : p.top_k - 1;
      while (pos > 0 && v > best[pos - 1].score) {
        if (pos < p.top_k) best[pos] = best[pos - 1];
        --pos;
      }
      best[pos] = pk;
      if (count < p.top_k) ++count;
    };
    x = 0;
    for (; x + 4 <= OW; x += 4) {
      const V4 uv = load(u + x);
      int bits = movemask(mask_and(ge_mask(uv, thr), eq_mask(uv, load(cm + x))));
      while (bits) {
        const int l = __builtin_ctz(static_cast<unsigned>(bits));
        bits &= bits - 1;
        peak(x + l);
      }
    }
    for (; x < OW; ++x)
      if (u[x] >= p.threshold && u[x] == cm[x]) peak(x);
  }
  res.counts[slot] = count;
}

void decode_heatmaps_impl(const float* heatmaps, int n, int h, int w, int k, const CropTransform* transforms,
                          const HeatmapDecodeParams& p, ThreadPool& pool,
                          std::vector<CpuHeatmapDecoder::Scratch>& scratch, HeatmapPeaks& res) {
  check_heatmap_params(p, h, w, k);
  if (n < 0) throw Error("heatmap decoder: negative batch size", ErrorKind::Usage);
  res.n = n;
  res.k = k;
  res.top_k = p.top_k;
  res.peaks.assign(static_cast<size_t>(n) * k * p.top_k, HeatmapPeak{0, 0, 0});
  res.counts.assign(static_cast<size_t>(n) * k, 0);
  if (n == 0) return;
  if (!heatmaps) throw Error("heatmap decoder: null heatmaps", ErrorKind::Usage);
  Taps tp;
  make_taps(h, p.out_h, tp.y0, tp.y1, tp.fy);
  make_taps(w, p.out_w, tp.x0, tp.x1, tp.fx);
  if (scratch.size() < static_cast<size_t>(pool.size())) scratch.resize(static_cast<size_t>(pool.size()));
  const size_t plane = static_cast<size_t>(p.out_h) * p.out_w;
  for (auto& s : scratch) {
    s.hx.resize(static_cast<size_t>(h) * p.out_w);
    s.u.resize(plane);
    s.rm.resize(plane);
    s.cm.resize(static_cast<size_t>(p.out_w));
  }
  pool.parallel_for(n * k, [&](int task, int worker) {
    decode_unit(heatmaps, task / k, task % k, h, w, k, tp, transforms, p, scratch[static_cast<size_t>(worker)], res);
  });
}

}  // namespace

CpuHeatmapDecoder::CpuHeatmapDecoder(int threads)
    : pool_(threads, pool_spin_us_from_env(ThreadPool::kDefaultSpinUs)) {}
CpuHeatmapDecoder::~CpuHeatmapDecoder() = default;

void CpuHeatmapDecoder::decode(const float* heatmaps, int n, int h, int w, int k, const CropTransform* transforms,
                               const HeatmapDecodeParams& p, HeatmapPeaks& out) {
  decode_heatmaps_impl(heatmaps, n, h, w, k, transforms, p, pool_, scratch_, out);
}

HeatmapPeaks CpuHeatmapDecoder::decode(const float* heatmaps, int n, int h, int w, int k,
                                       const CropTransform* transforms, const HeatmapDecodeParams& p) {
  HeatmapPeaks out;
  decode(heatmaps, n, h, w, k, transforms, p, out);
  return out;
}

HeatmapPeaks decode_heatmaps_cpu(const float* heatmaps, int n, int h, int w, int k, const CropTransform* transforms,
                                 const HeatmapDecodeParams& p, ThreadPool& pool) {
  std::vector<CpuHeatmapDecoder::Scratch> scratch;
  HeatmapPeaks out;
  decode_heatmaps_impl(heatmaps, n, h, w, k, transforms, p, pool, scratch, out);
  return out;
}

}  // namespace posert
