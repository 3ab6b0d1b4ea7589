// posert run: images in, keypoints JSON (and optional overlay PNGs) out.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

#include "args.h"
#include "commands.h"
#include "engine/engine_plan.h"
#include "io/image.h"
#include "io/overlay.h"
#include "io/results_writer.h"
#include "pipeline/transfer.h"
#include "pose/model_spec.h"
#include "posert/detector.h"

namespace posert::cli {

namespace fs = std::filesystem;

namespace {

const char* kHelp =
    "usage: posert run --model NAME [--backend cpu|cuda] INPUT... -o OUT.json\n"
    "                  [--overlay DIR] [--format posert|coco] [--threshold T]\n"
    "\n"
    "Detects poses in each INPUT image (JPEG or PNG; EXIF orientation is honoured) and writes\n"
    "their COCO-17 keypoints, in the image's pixel coordinates, to OUT.json.\n"
    "\n"
    "options:\n"
    "  --model NAME       movenet-lightning | movenet-thunder | movenet-multipose | posenet\n"
    "                     (default movenet-thunder; 'posert models' lists them)\n"
    "  --backend B        cpu (default: reference kernels) or cuda (optimized engine; built\n"
    "                     for this GPU on first use and cached in ~/.cache/posert)\n"
    "  --engine FILE      run this engine file (from posert build; implies --backend cuda)\n"
    "  --precision P      fp16 (default) or fp32, for the engine built by --backend cuda\n"
    "  --batch N          images per detector call (default 1). With --backend cuda the engine\n"
    "                     takes N frames at once (one CUDA graph: frame transfer, preprocessing,\n"
    "                     network, decoding, only the poses back); an --engine file must\n"
    "                     have been built with --max-batch >= N\n"
    "  --transfer T       with --backend cuda: mapped (default: the preprocessing kernel reads\n"
    "                     only the frame rows it samples from pinned host memory, the poses are\n"
    "                     written straight back), mapped-in (poses copied back) or copy (async\n"
    "                     copies of whole frames). A batch runs as copy where a frame is over\n"
    "                     5,450 px wide, the resize shrinks it by less than 2x, or the GPU cannot\n"
    "                     map host memory\n"
    "  -o, --output FILE  where to write the results JSON (required)\n"
    "  --format F         posert (default) or coco (COCO keypoint results list)\n"
    "  --overlay DIR      also draw skeletons on each image and save DIR/<name>.png\n"
    "  --threshold T      score threshold in [0,1] (default 0.2): overlays draw keypoints\n"
    "                     scoring at least T; multi-person models drop poses scoring below T\n"
    "  --models-dir DIR   folder holding <model>.json/.bin (default: $POSERT_MODELS, else the\n"
    "                     checkout's models/ next to the build, else ./models)\n"
    "  -q, --quiet        no progress output\n";

}  // namespace

int cmd_run(int argc, char** argv) {
  Args a(argc, argv, 2, {"--model", "--backend", "-o", "--output", "--format", "--overlay", "--threshold", "--models-dir",
          "--engine", "--precision", "--batch", "--transfer"},
         {"--help", "-h", "-q", "--quiet"});
  if (a.has("--help") || a.has("-h")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const auto out = a.get("-o") ? a.get("-o") : a.get("--output");
  if (!out) throw Error("missing -o OUT.json (see posert run --help)", ErrorKind::Usage);
  if (a.get("-o") && a.get("--output")) throw Error("give -o or --output, not both", ErrorKind::Usage);
  if (a.positional().empty()) throw Error("no input images given (see posert run --help)", ErrorKind::Usage);
  const ResultsFormat fmt = parse_results_format(a.get_or("--format", "posert"));
  const float threshold = a.get_float("--threshold", 0.2f, 0.0f, 1.0f);
  const bool quiet = a.has("-q") || a.has("--quiet");
  const auto overlay_dir = a.get("--overlay");

  DetectorOptions opt;
  // With --engine the model comes from the engine file unless named.
  opt.model = a.get_or("--model", a.get("--engine") ? "" : "movenet-thunder");
  opt.engine_path = a.get_or("--engine", "");
  opt.backend = a.get_or("--backend", opt.engine_path.empty() ? "cpu" : "cuda");
  opt.precision = precision_name(parse_precision(a.get_or("--precision", "fp16")));
  opt.verbose = !quiet;
  opt.models_dir = a.get_or("--models-dir", "");
  opt.min_pose_score = threshold;
  const int batch = a.get_int("--batch", 1, 1, 4096);
  opt.max_batch = batch;
  if (a.has("--transfer")) {
    if (opt.backend != "cuda") throw Error("--transfer applies to --backend cuda only", ErrorKind::Usage);
    opt.transfer = cuda::transfer_name(cuda::parse_transfer(a.get_or("--transfer", ""), "--transfer"));
  }

  if (!opt.model.empty()) find_model_spec(opt.model);  // an unknown name is a usage error, before any file check
  // Check every input exists before the (slow) model load, so a typo fails fast.
  for (const auto& in : a.positional()) {
    std::error_code ec;
    if (!fs::is_regular_file(in, ec)) throw Error("input '" + in + "' does not exist or is not a file");
  }
  if (const auto parent = fs::path(*out).parent_path(); !parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec || !fs::is_directory(parent))
      throw Error("cannot create the folder '" + parent.string() + "' for " + *out + ": " + ec.message());
  }
  if (overlay_dir) {
    std::error_code ec;
    fs::create_directories(*overlay_dir, ec);
    if (ec || !fs::is_directory(*overlay_dir))
      throw Error("cannot create overlay folder '" + *overlay_dir + "': " + ec.message());
  }
  // Two inputs with the same file name would overwrite each other's overlay.
  std::set<std::string> stems;
  for (const auto& in : a.positional())
    if (overlay_dir && !stems.insert(fs::path(in).stem().string()).second)
      throw Error("two inputs are named '" + fs::path(in).stem().string() +
                  "': their overlays would overwrite each other", ErrorKind::Usage);

  Detector det(opt);
  std::vector<FrameResult> frames;
  std::vector<std::pair<std::string, Image>> overlays;
  const auto t0 = std::chrono::steady_clock::now();
  const auto& inputs = a.positional();
  for (size_t first = 0; first < inputs.size(); first += static_cast<size_t>(batch)) {
    const size_t last = std::min(inputs.size(), first + static_cast<size_t>(batch));
    std::vector<Image> imgs;
    std::vector<FrameRef> refs;
    for (size_t i = first; i < last; ++i) imgs.push_back(read_image(inputs[i]));
    for (const auto& img : imgs) refs.push_back(FrameRef{img.rgb.data(), img.width, img.height});
    const auto t = std::chrono::steady_clock::now();
    auto poses = det.detect_batch(refs);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
    for (size_t i = first; i < last; ++i) {
      Image& img = imgs[i - first];
      FrameResult fr;
      fr.source = inputs[i];
      fr.index = static_cast<int>(i);
      fr.width = img.width;
      fr.height = img.height;
      fr.poses = std::move(poses[i - first]);
      if (!quiet)
        std::fprintf(stderr, "[%zu/%zu] %s: %dx%d, %zu pose(s), %.0f ms%s\n", i + 1, inputs.size(), inputs[i].c_str(),
                     img.width, img.height, fr.poses.size(), ms, last - first > 1 ? " (whole batch)" : "");
      if (overlay_dir) {
        draw_poses(img, fr.poses, threshold);
        overlays.emplace_back((fs::path(*overlay_dir) / (fs::path(inputs[i]).stem().string() + ".png")).string(),
                              std::move(img));
      }
      frames.push_back(std::move(fr));
    }
  }
  // Outputs are written only after every input succeeded: no partial results on failure.
  write_results(*out, det.model_name(), frames, fmt);
  for (const auto& [path, img] : overlays) write_png(path, img);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!quiet) {
    std::fprintf(stderr, "wrote %s (%zu image(s), model %s, %.1f s)\n", out->c_str(), frames.size(),
                 det.model_name().c_str(), total);
    if (overlay_dir) std::fprintf(stderr, "wrote %zu overlay(s) to %s/\n", overlays.size(), overlay_dir->c_str());
  }
  return 0;
}

}  // namespace posert::cli
