// Opcodes of the fused ElementwiseChain op and a scalar evaluator shared by every backend's
// kernel, so the CPU reference and GPU kernels apply exactly the same arithmetic.
#pragma once
#include <cmath>
#include <cstdint>

namespace posert {

enum class ChainOp : int32_t { Add = 1, Sub = 2, RSub = 3, Mul = 4, Div = 5, Sigmoid = 6, Relu = 7, Relu6 = 8 };

// Applies one step. `c` is the step's constant for this element (unused by unary steps).
#if defined(__CUDACC__)
__host__ __device__
#endif
inline float chain_step(int32_t op, float x, float c) {
#if defined(__CUDA_ARCH__)
  // Rounded intrinsics: never contracted into a multiply-add with a neighbouring step, so every
  // kernel that inlines the chain (its own, a convolution's loads) computes the same bits.
  switch (static_cast<ChainOp>(op)) {
    case ChainOp::Add: return __fadd_rn(x, c);
    case ChainOp::Sub: return __fsub_rn(x, c);
    case ChainOp::RSub: return __fsub_rn(c, x);
    case ChainOp::Mul: return __fmul_rn(x, c);
    case ChainOp::Div: return __fdiv_rn(x, c);
    default: break;
  }
#endif
  switch (static_cast<ChainOp>(op)) {
    case ChainOp::Add: return x + c;
    case ChainOp::Sub: return x - c;
    case ChainOp::RSub: return c - x;
    case ChainOp::Mul: return x * c;
    case ChainOp::Div: return x / c;
    case ChainOp::Sigmoid: return 1.0f / (1.0f + expf(-x));
    case ChainOp::Relu: return x > 0.0f ? x : 0.0f;
    case ChainOp::Relu6: return fminf(fmaxf(x, 0.0f), 6.0f);
  }
  return x;
}

inline bool chain_op_is_unary(int32_t op) { return op >= 6; }

}  // namespace posert
