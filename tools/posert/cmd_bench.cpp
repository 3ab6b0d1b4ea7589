// posert bench (CPU backend): wall time of preprocessing, inference and decoding per image on
// random images, with warm-up, reported as median and p99 over the timed runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "args.h"
#include "commands.h"
#include "engine/engine_plan.h"
#include "engine/gpu_bench.h"
#include "engine/launch_bench.h"
#include "engine/ref_executor.h"
#include "import/tfjs/tfjs_importer.h"
#include "pipeline/pipeline_bench.h"
#include "pipeline/transfer.h"
#include "pose/model_spec.h"
#include "pose/preprocess.h"
#include "posert/detector.h"

namespace posert::cli {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct Stat {
  double p50, p99;
};

Stat stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))]; };
  return {at(0.5), at(0.99)};
}

// A comma-separated list of integers in lo..hi; anything else is a usage error naming `flag`.
std::vector<int> parse_int_list(const std::string& s, const std::string& flag, const std::string& example,
                                const std::string& what, int lo, int hi) {
  std::vector<int> r;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t c = s.find(',', pos);
    const std::string tok = s.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
    try {
      size_t used = 0;
      const int v = std::stoi(tok, &used);
      if (used != tok.size() || v < lo || v > hi) throw 0;
      r.push_back(v);
    } catch (...) {
      throw Error(flag + " needs a list like " + example + " of " + what + " in " + std::to_string(lo) + ".." +
                      std::to_string(hi) + ", got '" + s + "'",
                  ErrorKind::Usage);
    }
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  return r;
}

std::vector<int> parse_batches(const std::string& s) { return parse_int_list(s, "--batch", "1,8,64", "sizes", 1, 4096); }

// --transfer: a list of the GPU pipeline's transfer modes, each once.
std::vector<std::string> parse_transfers(const std::string& s) {
  std::vector<std::string> r;
  size_t pos = 0;
  while (true) {
    const size_t c = s.find(',', pos);
    const std::string tok = s.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
    cuda::parse_transfer(tok, "each mode of --transfer");  // throws naming the modes
    if (std::find(r.begin(), r.end(), tok) != r.end())
      throw Error("--transfer names '" + tok + "' twice in '" + s + "'", ErrorKind::Usage);
    r.push_back(tok);
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  return r;
}

int bench_cuda(const Args& a) {
  GpuBenchOptions o;
  o.model = a.get_or("--model", "movenet-lightning");
  find_model_spec(o.model);
  o.models_dir = a.get_or("--models-dir", default_models_dir());
  o.precision = precision_name(parse_precision(a.get_or("--precision", "fp16")));
  o.batches = parse_batches(a.get_or("--batch", "1"));
  o.iters = a.get_int("--runs", 0, 0, 1000000);
  o.warmup = a.get_int("--warmup", 30, 0, 100000);
  o.profile = a.has("--profile");
  o.use_graphs = !a.has("--no-graphs");
  o.engine_per_batch = !a.has("--one-engine");
  o.engine_path = a.get_or("--engine", "");
  o.timing_cache = a.get_or("--timing-cache", "");
  const GpuBenchReport r = run_gpu_bench(o);
  std::printf("model %s, backend cuda, %s, GPU %s, CUDA runtime %s, %s, CUDA graphs %s\n", o.model.c_str(),
              o.precision.c_str(), r.gpu.c_str(), r.cuda_runtime.c_str(), r.driver.c_str(), o.use_graphs ? "on" : "off");
  std::printf("engine build %.1f s (%s); weights %.2f MiB; activation arena %.2f MiB per context (%.2f MiB without "
              "lifetime planning); %d contexts; device memory used %.1f MiB\n",
              r.build_s, o.engine_per_batch && o.engine_path.empty() ? "one engine per batch size, figures below for the largest"
                                                                     : "one engine",
              r.weight_bytes / 1048576.0, r.arena_bytes / 1048576.0, r.tensor_sum_bytes / 1048576.0, r.contexts,
              r.peak_device_bytes / 1048576.0);
  std::printf("%6s %10s %10s %12s %11s %13s\n", "batch", "p50 ms", "p99 ms", "images/s", "upload ms", "download ms");
  for (const auto& row : r.rows)
    std::printf("%6d %10.4f %10.4f %12.0f %11.4f %13.4f\n", row.batch, row.p50_ms, row.p99_ms, row.images_per_s,
                row.upload_ms, row.download_ms);
  if (!r.profile.empty()) {
    double sum = 0;
    for (const auto& [n, us] : r.profile) sum += us;
    std::printf("\nper-layer GPU time at batch %d (each layer alone, per launch in a CUDA graph of repeated launches; sum %.1f us):\n", r.rows.back().batch, sum);
    for (const auto& [n, us] : r.profile) std::printf("%9.2f us  %5.1f%%  %s\n", us, 100.0 * us / sum, n.c_str());
  }
  return 0;
}

// "64x48" -> {64, 48}
std::pair<int, int> parse_hw(const std::string& s, const char* flag) {
  const size_t x = s.find('x');
  try {
    if (x == std::string::npos) throw 0;
    size_t u1 = 0, u2 = 0;
    const int a = std::stoi(s.substr(0, x), &u1), b = std::stoi(s.substr(x + 1), &u2);
    if (u1 != x || u2 != s.size() - x - 1 || a < 1 || b < 1 || a > 4096 || b > 4096) throw 0;
    return {a, b};
  } catch (...) {
    throw Error(std::string(flag) + " needs HxW like 64x48 (1..4096), got '" + s + "'", ErrorKind::Usage);
  }
}

int bench_e2e(const Args& a) {
  E2eBenchOptions o;
  o.model = a.get_or("--model", "movenet-lightning");
  find_model_spec(o.model);
  o.models_dir = a.get_or("--models-dir", default_models_dir());
  o.precision = precision_name(parse_precision(a.get_or("--precision", "fp16")));
  o.batches = parse_batches(a.get_or("--batch", "1"));
  o.iters = a.get_int("--runs", 0, 0, 1000000);
  o.warmup = a.get_int("--warmup", 30, 0, 100000);
  o.width = a.get_int("--width", 640, 1, 16384);
  o.height = a.get_int("--height", 480, 1, 16384);
  o.timing_cache = a.get_or("--timing-cache", "");
  if (a.has("--transfer")) o.transfers = parse_transfers(a.get_or("--transfer", ""));
  const E2eBenchReport r = run_e2e_bench(o);
  std::printf("model %s, end to end on the GPU (host %dx%d uint8 frames in, host poses out), %s, GPU %s\n", o.model.c_str(),
              o.width, o.height, o.precision.c_str(), r.gpu.c_str());
  std::printf("%6s %-9s %9s %9s %9s %9s %10s %9s %9s %9s | %8s %8s %8s %8s %8s %8s | %11s %9s\n", "batch", "transfer", "gpu p50",
              "gpu p99", "wall p50", "wall p99", "images/s", "pinned50", "pinned99", "pin gpu50", "upload", "preproc", "infer", "decode", "download",
              "staged", "up bytes", "down B");
  for (const auto& w : r.rows)
    std::printf("%6d %-9s %9.4f %9.4f %9.4f %9.4f %10.0f %9.4f %9.4f %9.4f | %8.4f %8.4f %8.4f %8.4f %8.4f %8.4f | %11lld %9lld\n",
                w.batch, w.transfer.c_str(), w.gpu_p50_ms, w.gpu_p99_ms, w.wall_p50_ms, w.wall_p99_ms, w.images_per_s, w.pinned_wall_p50_ms,
                w.pinned_wall_p99_ms, w.pinned_gpu_p50_ms, w.upload_ms, w.preprocess_ms, w.inference_ms, w.decode_ms, w.download_ms,
                w.staged_total_ms, static_cast<long long>(w.upload_bytes), static_cast<long long>(w.download_bytes));
  std::printf("host side of the pinned calls (medians, ms): stage / launch / wait / read poses\n");
  for (const auto& w : r.rows)
    std::printf("%6d %-9s %9.4f %9.4f %9.4f %9.4f\n", w.batch, w.transfer.c_str(), w.pinned_stage_ms, w.pinned_launch_ms,
                w.pinned_wait_ms, w.pinned_results_ms);
  std::printf("times in ms; gpu: CUDA events around the pipeline graph (upload .. download); wall: host time of the call\n"
              "from frames in ordinary (pageable) memory (copy into the pinned buffer, launch, wait, reading the poses);\n"
              "pinned: host time of the call with the frames already in the pinned upload buffer (launch, upload, wait,\n"
              "reading the poses), 'pin gpu50' the GPU time of those calls; the stage columns come from separate\n"
              "stage-by-stage runs (events between stages, all queued behind a spin kernel, no pipeline graph), medians.\n"
              "transfer: copy = async copies of the whole frames up and the poses down; mapped-in = the preprocessing\n"
              "kernel reads only the rows it samples from pinned host memory in place (up bytes: what it reads);\n"
              "mapped = that, and the decoder writes the poses straight into pinned host memory. The modes\n"
              "alternate run by run on one pipeline; 'mapped>copy' marks a mode that ran as copy (frames over\n"
              "5,450 pixels wide, mapped reads that would exceed the frame bytes, or a GPU that cannot map\n"
              "host memory).\n");
  return 0;
}

int bench_decode(const Args& a, const std::string& backend) {
  DecodeBenchOptions o;
  o.model = a.get_or("--model", "movenet-lightning");
  if (o.model != "heatmap") find_model_spec(o.model);
  o.batches = parse_batches(a.get_or("--batch", "1,16,64,256"));
  o.iters = a.get_int("--runs", 0, 0, 1000000);
  o.warmup = a.get_int("--warmup", 3, 0, 100000);
  o.threads = a.get_int("--threads", 0, 0, 1024);
  const auto [hh, hw] = parse_hw(a.get_or("--heatmap", "64x48"), "--heatmap");
  const auto [ih, iw] = parse_hw(a.get_or("--input", "256x192"), "--input");
  o.hm_h = hh;
  o.hm_w = hw;
  o.in_h = ih;
  o.in_w = iw;
  o.keypoints = a.get_int("--keypoints", 17, 1, 256);
  o.top_k = a.get_int("--top-k", 1, 1, 16);
  if (backend == "cpu") {
    const DecodeBenchReport r = run_cpu_decode_bench(o);
    std::printf("decode: %s; CPU only: optimized decoder, %d threads; random heads, medians and p99 in ms\n",
                r.what.c_str(), r.cpu_threads);
    std::printf("%6s %10s %10s %12s %6s\n", "batch", "cpu p50", "cpu p99", "p50 per item", "runs");
    for (const auto& w : r.rows)
      std::printf("%6d %10.4f %10.4f %12.4f %6d\n", w.batch, w.cpu_p50_ms, w.cpu_p99_ms, w.cpu_p50_ms / w.batch,
                  w.cpu_runs);
    return 0;
  }
  const DecodeBenchReport r = run_decode_bench(o);
  std::printf("decode: %s; CPU: optimized decoder, %d threads; GPU %s; random heads, medians and p99 in ms\n",
              r.what.c_str(), r.cpu_threads, r.gpu.c_str());
  std::printf("%6s %10s %10s %10s %10s %9s %10s %9s %10s\n", "batch", "cpu p50", "cpu p99", "cuda p50", "cuda p99", "speedup",
              "idle p50", "speedup", "direct p50");
  for (const auto& w : r.rows)
    std::printf("%6d %10.4f %10.4f %10.4f %10.4f %8.1fx %10.4f %8.1fx %10.4f\n", w.batch, w.cpu_p50_ms, w.cpu_p99_ms,
                w.gpu_p50_ms, w.gpu_p99_ms, w.cpu_p50_ms / w.gpu_p50_ms, w.gpu_idle_p50_ms, w.cpu_p50_ms / w.gpu_idle_p50_ms,
                w.gpu_direct_p50_ms);
  std::printf("cuda: the decoder's kernels as one CUDA graph queued behind other work, as the GPU pipeline runs\n"
              "them after the engine; idle: the same graph launched on an idle stream (the host's launch call and\n"
              "the GPU's start included); direct: the kernels launched one by one (CUDA events around all three)\n");
  std::printf("floor: a CUDA graph of one empty kernel measures %.4f ms queued, %.4f ms idle\n", r.floor_p50_ms,
              r.floor_idle_p50_ms);
  return 0;
}

int bench_launch(const Args& a) {
  LaunchBenchOptions o;
  o.steps = parse_int_list(a.get_or("--steps", "60"), "--steps", "10,60", "step counts", 1, 10000);
  o.iters = a.get_int("--runs", 200, 1, 1000000);
  o.warmup = a.get_int("--warmup", 20, 0, 100000);
  const LaunchBenchReport r = run_launch_bench(o);
  std::printf("launch: N dependent steps of almost no work on %s (%d SMs); each variant queued behind a spin\n"
              "kernel, CUDA events, %d runs, ms\n",
              r.gpu.c_str(), r.sms, r.runs);
  std::printf("%-58s %6s %10s %10s %14s\n", "variant", "steps", "p50", "p99", "us per step");
  for (const auto& w : r.rows) {
    if (!w.ran) {
      std::printf("%-58s %6d   not run: %s\n", w.what.c_str(), w.steps, w.why_not.c_str());
      continue;
    }
    std::printf("%-58s %6d %10.4f %10.4f %14.3f\n", w.what.c_str(), w.steps, w.p50_ms, w.p99_ms,
                1000.0 * (w.p50_ms - r.floor_p50_ms) / w.steps);
  }
  std::printf("us per step: (p50 - floor) / steps, where the floor is a CUDA graph of one empty kernel queued the\n"
              "same way: %.4f ms. Each step reads what the step before wrote in another block (global memory, or\n"
              "shared memory across the cluster), so steps cannot overlap.\n",
              r.floor_p50_ms);
  return 0;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  Args a(argc, argv, 2,
         {"--model", "--backend", "--runs", "--warmup", "--models-dir", "--width", "--height", "--precision", "--batch",
          "--engine", "--timing-cache", "--stage", "--threads", "--transfer", "--heatmap", "--input", "--keypoints", "--top-k",
          "--steps"},
         {"--help", "-h", "--profile", "--no-graphs", "--one-engine"});
  if (a.has("--help") || a.has("-h")) {
    std::puts("usage: posert bench --model NAME [--backend cpu] [--runs N] [--warmup N]\n"
              "                    [--width W --height H]\n"
              "       posert bench --model NAME --backend cuda [--precision fp16|fp32]\n"
              "                    [--batch 1,8,64,256] [--runs N] [--warmup N] [--profile]\n"
              "                    [--no-graphs] [--one-engine] [--engine X.engine]\n"
              "       posert bench --stage e2e --model NAME [--precision P] [--batch LIST]\n"
              "                    [--width W --height H] [--runs N] [--warmup N]\n"
              "                    [--transfer copy,mapped-in,mapped]\n"
              "       posert bench --stage decode --model NAME|heatmap [--backend cpu]\n"
              "                    [--batch 1,16,64,256] [--threads N] [--heatmap 64x48] [--input 256x192]\n"
              "                    [--keypoints 17] [--top-k 1] [--runs N]\n"
              "       posert bench --stage launch [--steps 60] [--runs N] [--warmup N]\n\n"
              "cpu: times the CPU pipeline on random W x H images (default 640x480): preprocessing,\n"
              "inference (reference executor, cut at the heads) and decoding, each as the median\n"
              "and p99 of N timed runs (default 10) after warm-up runs (default 2).\n"
              "cuda: builds (or loads) the engine and times the forward pass per batch size with\n"
              "CUDA events (median and p99 over N runs, default 300 for batch <= 8 else 100, after\n"
              "warm-up), rotating over several contexts so inputs are not served from L2; prints\n"
              "throughput, the pinned-memory upload/download times, device memory, and with\n"
              "--profile the time of each layer alone (per launch in a CUDA graph of up to 8 launches of it,\n"
              "as the tuner times tactics). Each batch size gets its own engine\n"
              "tuned for it, unless --one-engine (one engine, max batch = the largest, tuned there).\n"
              "--stage e2e: the GPU pipeline from host uint8 frames (random W x H) to host poses, one\n"
              "CUDA graph per batch size and transfer mode: GPU time (events) and host wall time,\n"
              "median and p99, with the upload / preprocess / inference / decode / download breakdown\n"
              "and the PCIe bytes, and\n"
              "the host time with the frames already in the pinned upload buffer, for each transfer mode\n"
              "(default all three, alternated run by run).\n"
              "--stage decode: the optimized CPU decoder (N threads, default all cores) against the\n"
              "CUDA decoder on the same random heads per batch size (its kernels as one CUDA graph queued\n"
              "behind other work, as the pipeline runs them; the same graph from an idle stream; the\n"
              "kernels launched one by one; and an empty graph's floor); 'heatmap' is the generic heatmap\n"
              "decoder (K heatmaps of --heatmap size upsampled to --input size, NMS, refinement, top-k).\n"
              "With --backend cpu, the CPU decoder alone (no GPU needed), with its time per item.\n"
              "--stage launch: the floor under a forward pass of N small layers on this GPU: N dependent\n"
              "steps of almost no work as a CUDA graph of N kernels (stream-ordered and with programmatic\n"
              "launch, one block and one block per SM), as one kernel with N grid barriers, and as one\n"
              "thread-block cluster (8 and 16 blocks) with N cluster barriers.");
    return 0;
  }
  const std::string stage = a.get_or("--stage", "");
  const std::string backend = a.get_or("--backend", stage.empty() ? "cpu" : "cuda");
  if (backend != "cpu" && backend != "cuda") throw Error("backend '" + backend + "' is unknown (cpu or cuda)", ErrorKind::Usage);
  // Each mode refuses the options it would ignore.
  if (stage == "e2e" || stage == "decode" || stage == "launch") {
    if (backend != "cuda" && stage != "decode")
      throw Error("--stage " + stage + " runs on the GPU: --backend cpu does not apply", ErrorKind::Usage);
    if (stage == "launch") {
      a.allow_only({"--stage", "--backend", "--steps", "--runs", "--warmup"}, "posert bench --stage launch");
      return bench_launch(a);
    }
    if (stage == "e2e") {
      a.allow_only({"--stage", "--backend", "--model", "--models-dir", "--precision", "--batch", "--runs", "--warmup", "--width",
                    "--height", "--timing-cache", "--transfer"},
                   "posert bench --stage e2e");
      return bench_e2e(a);
    }
    a.allow_only({"--stage", "--backend", "--model", "--batch", "--runs", "--warmup", "--threads", "--heatmap", "--input",
                  "--keypoints", "--top-k"},
                 "posert bench --stage decode");
    return bench_decode(a, backend);
  }
  if (!stage.empty()) throw Error("--stage must be e2e, decode or launch, got '" + stage + "'", ErrorKind::Usage);
  if (backend == "cuda") {
    a.allow_only({"--backend", "--model", "--models-dir", "--precision", "--batch", "--runs", "--warmup", "--engine",
                  "--timing-cache", "--profile", "--no-graphs", "--one-engine"},
                 "posert bench --backend cuda");
    return bench_cuda(a);
  }
  a.allow_only({"--backend", "--model", "--models-dir", "--runs", "--warmup", "--width", "--height"}, "posert bench --backend cpu");
  const auto& spec = find_model_spec(a.get_or("--model", "movenet-lightning"));
  const int runs = a.get_int("--runs", 10, 1, 100000);
  const int warmup = a.get_int("--warmup", 2, 0, 1000);
  const int w = a.get_int("--width", 640, 1, 16384), h = a.get_int("--height", 480, 1, 16384);
  const std::string path = a.get_or("--models-dir", default_models_dir()) + "/" + spec.file_stem + ".json";
  ImportOptions io;
  io.input_size = spec.input_size;
  const Graph g = import_tfjs(path, io);
  RefExecutor exec(g);
  std::mt19937 rng(12345);
  std::vector<double> tpre, tinf, tdec, ttot;
  for (int i = 0; i < warmup + runs; ++i) {
    Image img;
    img.width = w;
    img.height = h;
    img.rgb.resize(static_cast<size_t>(w) * h * 3);
    for (auto& p : img.rgb) p = static_cast<uint8_t>(rng());
    auto t0 = Clock::now();
    Letterbox lb;
    Tensor in = preprocess(img, spec, &lb);
    const double a1 = ms_since(t0);
    auto t1 = Clock::now();
    auto heads = exec.run({in}, spec.head_values);
    const double a2 = ms_since(t1);
    auto t2 = Clock::now();
    std::vector<const Tensor*> ph;
    for (auto& t : heads) ph.push_back(&t);
    auto poses = decode_heads(spec, ph, 0, DecodeOptions{});
    poses_to_image(poses, lb);
    const double a3 = ms_since(t2);
    if (i >= warmup) {
      tpre.push_back(a1);
      tinf.push_back(a2);
      tdec.push_back(a3);
      ttot.push_back(a1 + a2 + a3);
    }
    std::fprintf(stderr, "\r%s run %d/%d", i < warmup ? "warm-up" : "timed", i < warmup ? i + 1 : i - warmup + 1,
                 i < warmup ? warmup : runs);
  }
  std::fprintf(stderr, "\n");
  std::printf("model %s, backend cpu (reference kernels), %dx%d random images, %d runs after %d warm-up\n",
              spec.name.c_str(), w, h, runs, warmup);
  std::printf("%-12s %10s %10s\n", "stage", "p50 ms", "p99 ms");
  const std::pair<const char*, std::vector<double>*> rows[] = {
      {"preprocess", &tpre}, {"inference", &tinf}, {"decode", &tdec}, {"total", &ttot}};
  for (const auto& [name, v] : rows) {
    const Stat s = stats(*v);
    std::printf("%-12s %10.3f %10.3f\n", name, s.p50, s.p99);
  }
  return 0;
}

}  // namespace posert::cli
