// How the GPU keypoint decoders split a batch into blocks: host arithmetic only (no CUDA), so the
// CPU tests check it.
#pragma once
#include <cstdint>

namespace posert {

// Cells per lane for the (chunk, item) keypoint kernels (a block's 32 lanes per warp share a
// chunk of an item's `cells`): at least min_per_lane, and enough that the n items' blocks fit in
// `slots` blocks where that is possible; large batches get fewer, larger chunks.
inline int cells_per_lane(int cells, int n, int slots, int min_per_lane) {
  int per_lane = min_per_lane;
  auto blocks = [&](int pl) { return static_cast<int64_t>(n) * ((cells + 32 * pl - 1) / (32 * pl)); };
  while (blocks(per_lane) > slots && 32 * per_lane < cells) ++per_lane;
  return per_lane;
}

// The (chunk, item) grid for `per_lane` cells per lane: blocks per item, and cells per block.
struct CellSplit {
  int blocks, chunk;
};
inline CellSplit split_cells(int cells, int per_lane) {
  const int blocks = (cells + 32 * per_lane - 1) / (32 * per_lane);
  const int b = blocks > 1 ? blocks : 1;
  return {b, (cells + b - 1) / b};
}

// The MoveNet single-pose kernel: at most one block per SM where that takes at most 16 cells per
// lane, else as many blocks as the GPU runs at once (`resident`). Measured on an H100 (132 SMs, 3
// blocks of this kernel per SM; posert bench --stage decode with $POSERT_DECODE_CELLS_PER_LANE,
// 2026-12-07): at batch 16, one block per SM (lightning 9 cells per lane, thunder 16-18) took
// 0.0100 / 0.0117 ms against 0.0113 / 0.0136 for three per SM (3 and 6 cells per lane); at batch
// 64 and up one block per SM would need 36+ cells per lane, and the resident rule kept its time.
inline int movenet_single_cells_per_lane(int cells, int n, int sms, int resident, int min_per_lane) {
  constexpr int kMaxPerLaneOneBlockPerSm = 16;
  const int one_per_sm = cells_per_lane(cells, n, sms, min_per_lane);
  return one_per_sm <= kMaxPerLaneOneBlockPerSm ? one_per_sm : cells_per_lane(cells, n, resident, min_per_lane);
}

}  // namespace posert
