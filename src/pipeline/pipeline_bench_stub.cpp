// The pipeline benchmarks in builds without the CUDA backend.
#include "pipeline/pipeline_bench.h"
#include "posert/error.h"

#if !POSERT_HAVE_CUDA
namespace posert {
E2eBenchReport run_e2e_bench(const E2eBenchOptions&) {
  throw Error("this PoseRT was built without the CUDA backend: the end-to-end GPU benchmark needs it");
}
DecodeBenchReport run_decode_bench(const DecodeBenchOptions&) {
  throw Error("this PoseRT was built without the CUDA backend: the decode benchmark compares CPU and CUDA decoders "
              "(--backend cpu times the CPU decoder alone)");
}
}  // namespace posert
#endif
