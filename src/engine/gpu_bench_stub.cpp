// run_gpu_bench and run_launch_bench in builds without the CUDA backend.
#include "engine/gpu_bench.h"
#include "engine/launch_bench.h"
#include "posert/error.h"

#if !POSERT_HAVE_CUDA
namespace posert {
GpuBenchReport run_gpu_bench(const GpuBenchOptions&) {
  throw Error("this PoseRT was built without the CUDA backend; 'posert bench --backend cpu' works everywhere");
}
LaunchBenchReport run_launch_bench(const LaunchBenchOptions&) {
  throw Error("this PoseRT was built without the CUDA backend: the launch benchmark times GPU kernels");
}
}  // namespace posert
#endif
