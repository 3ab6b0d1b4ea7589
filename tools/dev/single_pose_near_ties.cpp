// How often a lane of the MoveNet single-pose GPU decoder's one-pass search (src/pose/cuda/
// movenet_single.cu, staged chunks) has its two or three largest keypoint values within the
// estimate screen's cut, on the decode bench's random heads (random_pose_heads; seed 17 + batch,
// the one `posert bench --stage decode` uses, and the 19 after it). Exact float values stand in for the
// kernel's estimates (within 2^-20 of them). The split is the kernel's: `blocks` blocks an item,
// lane l of warp k takes cells lo + l, lo + l + 32, ... of its block's chunk for keypoint k.
//
// Build against the CPU library (from the repository root, after scripts/setup.sh):
//   g++ -O2 -std=c++20 -Isrc -Iinclude tools/dev/single_pose_near_ties.cpp build/libposert_lib.a -lpthread -o /tmp/nt
//   /tmp/nt movenet-lightning 16 8     # model, batch, blocks an item (batch 16 on an H100: 8)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/tensor.h"
#include "pose/decode_bench.h"
#include "pose/model_spec.h"
#include "pose/movenet_single.h"

using namespace posert;

int main(int argc, char** argv) {
  const char* model = argc > 1 ? argv[1] : "movenet-lightning";
  const int n = argc > 2 ? std::atoi(argv[2]) : 16, blocks = argc > 3 ? std::atoi(argv[3]) : 8;
  const ModelSpec& spec = find_model_spec(model);
  if (spec.decoder != DecoderKind::MoveNetSingle || n < 1 || blocks < 1) {
    std::fprintf(stderr, "usage: %s SINGLE-POSE-MODEL BATCH BLOCKS-AN-ITEM\n", argv[0]);
    return 2;
  }
  const int G = spec.input_size / 4, cells = G * G, K = kPoseKeypoints, seeds = 20;
  const int chunk = (cells + blocks - 1) / blocks;
  for (int cut_log2 : {-14, -16, -17, -18}) {
    const double cut = 1.0 - std::ldexp(1.0, cut_log2);
    long lanes = 0, two = 0, three = 0, slow_blocks = 0, slow_items = 0;
    for (int s = 0; s < seeds; ++s) {
      const auto heads = random_pose_heads(spec, n, static_cast<uint32_t>(17 + n + s));
      const float* centre = heads[0].data<float>();
      const float* heat = heads[1].data<float>();
      const float* reg = heads[2].data<float>();
      for (int b = 0; b < n; ++b) {
        int best = 0;
        float best_v = -1;
        for (int i = 0; i < cells; ++i) {
          const float v = centre[static_cast<size_t>(b) * cells + i] * movenet_centre_weight(G, i / G, i % G);
          if (v > best_v) best_v = v, best = i;
        }
        bool item_slow = false;
        for (int blk = 0; blk < blocks; ++blk) {
          const int lo = blk * chunk, hi = std::min(lo + chunk, cells);
          bool block_slow = false;
          for (int k = 0; k < K; ++k) {
            const float* r = reg + (static_cast<size_t>(b) * cells + best) * 2 * K;
            const float ry = static_cast<float>(best / G) + r[2 * k], rx = static_cast<float>(best % G) + r[2 * k + 1];
            for (int lane = 0; lane < 32; ++lane) {
              if (lo + lane + 32 >= hi) continue;  // under two cells: no near-tie (and not counted)
              float e1 = -INFINITY, e2 = -INFINITY, e3 = -INFINITY;
              for (int c = lo + lane; c < hi; c += 32) {
                const float dy = static_cast<float>(c / G) - ry, dx = static_cast<float>(c % G) - rx;
                const float v = heat[(static_cast<size_t>(b) * cells + c) * K + k] /
                                (std::sqrt(dy * dy + dx * dx) + kMoveNetKeypointDistEps);
                if (v > e1) e3 = e2, e2 = e1, e1 = v;
                else if (v > e2) e3 = e2, e2 = v;
                else if (v > e3) e3 = v;
              }
              ++lanes;
              if (e2 >= e1 * cut) ++two, block_slow = true;
              if (e3 >= e1 * cut) ++three;
            }
          }
          slow_blocks += block_slow;
          item_slow |= block_slow;
        }
        slow_items += item_slow;
      }
    }
    std::printf("%s batch %d, %d blocks an item, cut 1 - 2^%d: lanes with two within the cut %.2e (1 in %.0f), "
                "with three %ld; blocks with such a lane %.1f%%, items %.1f%%\n",
                model, n, blocks, cut_log2, static_cast<double>(two) / lanes, two ? static_cast<double>(lanes) / two : 0.0,
                three, 100.0 * slow_blocks / (static_cast<double>(seeds) * n * blocks),
                100.0 * slow_items / (static_cast<double>(seeds) * n));
  }
}
