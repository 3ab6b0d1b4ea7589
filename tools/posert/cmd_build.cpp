// posert build: optimize a model for this GPU and write the engine file.
#include <chrono>
#include <cstdio>

#include "args.h"
#include "commands.h"
#include "engine/engine_plan.h"
#include "posert/detector.h"
#include "posert/engine.h"

namespace posert::cli {

int cmd_build(int argc, char** argv) {
  Args a(argc, argv, 2, {"--model", "--precision", "--max-batch", "-o", "--output", "--models-dir", "--timing-cache"},
         {"--help", "-h", "-q", "--quiet"});
  if (a.has("--help") || a.has("-h")) {
    std::puts("usage: posert build --model NAME --precision fp32|fp16 --max-batch N -o X.engine\n"
              "                    [--timing-cache FILE] [--models-dir DIR]\n\n"
              "Imports the model, cuts it at its output heads, fuses layers (residual adds and\n"
              "activations into convolutions, elementwise chains), plans tensor memory by lifetime,\n"
              "times every kernel variant it offers for each convolution on this GPU and keeps the\n"
              "fastest, then fuses each 3x3 depthwise + 1x1 pair and launches independent sibling layers\n"
              "together where that measures faster (POSERT_TUNE_LOG=1 prints all the timings), and\n"
              "writes the engine file (docs/engine-format.md). The timing cache (default\n"
              "~/.cache/posert/timing.cache) makes rebuilds fast. Needs an NVIDIA GPU.");
    return 0;
  }
  const auto out = a.get("-o") ? a.get("-o") : a.get("--output");
  if (!out) throw Error("missing -o X.engine (see posert build --help)", ErrorKind::Usage);
  if (!a.get("--model")) throw Error("missing --model NAME (see posert models)", ErrorKind::Usage);
  if (!a.positional().empty()) throw Error("unexpected argument '" + a.positional()[0] + "'", ErrorKind::Usage);
  BuildOptions bo;
  bo.precision = precision_name(parse_precision(a.get_or("--precision", "fp16")));
  bo.max_batch = a.get_int("--max-batch", 1, 1, 4096);
  const char* home = std::getenv("HOME");
  bo.timing_cache = a.get_or("--timing-cache", home ? std::string(home) + "/.cache/posert/timing.cache" : "");
  bo.verbose = !(a.has("-q") || a.has("--quiet"));
  const auto t0 = std::chrono::steady_clock::now();
  auto engine = Builder(bo).build(*a.get("--model"), a.get_or("--models-dir", default_models_dir()));
  engine->save(*out);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (bo.verbose)
    std::fprintf(stderr, "wrote %s: %s %s, max batch %d, arena %.2f MiB (%.2f MiB without planning), built in %.1f s\n",
                 out->c_str(), engine->model().c_str(), engine->precision().c_str(), engine->max_batch(),
                 engine->arena_bytes() / 1048576.0, engine->tensor_sum_bytes() / 1048576.0, s);
  return 0;
}

}  // namespace posert::cli
