// End-to-end tests of the posert CLI: real photos in, JSON and overlays out, and every kind of
// bad input failing with exit code 1 or 2 and a message naming the culprit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace fs = std::filesystem;

namespace {

struct Result {
  int code;
  std::string output;  // stdout + stderr
};

std::string cli() {
  const char* p = std::getenv("POSERT_CLI");
  return p ? p : std::string(POSERT_BINARY_DIR) + "/bin/posert";
}

Result run(const std::string& args) {
  const std::string cmd = cli() + " " + args + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const int st = pclose(f);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

std::string photo(const std::string& name) { return posert::test::photos_dir() + "/" + name; }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

#define NEED_MODEL(m) \
  if (!posert::test::have_model(m)) GTEST_SKIP() << "model " m " not installed (run scripts/fetch_models.sh)"
#define NEED_PHOTO(p) \
  if (!fs::exists(photo(p))) GTEST_SKIP() << "photo " << photo(p) << " missing (run scripts/fetch_photos.sh)"

TEST(Cli, HelpForEveryCommand) {
  for (const char* c : {"run", "models", "inspect", "bench"}) {
    const Result r = run(std::string(c) + " --help");
    EXPECT_EQ(r.code, 0) << c;
    EXPECT_NE(r.output.find("usage: posert"), std::string::npos) << c;
  }
  EXPECT_EQ(run("--help").code, 0);
}

TEST(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(run("").code, 2);
  EXPECT_EQ(run("frobnicate").code, 2);
  Result r = run("run --model movenet-thunder x.jpg");  // no -o
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("-o"), std::string::npos);
  r = run("run --model no-such-model x.jpg -o out.json");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("no-such-model"), std::string::npos);
  r = run("run --model movenet-thunder --bogus 1 x.jpg -o out.json");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--bogus"), std::string::npos);
  r = run("run --model movenet-thunder --threshold 7 x.jpg -o out.json");
  EXPECT_EQ(r.code, 2);
  r = run("run --model movenet-thunder --format xml x.jpg -o out.json");
  EXPECT_EQ(r.code, 2);
  r = run("run --model movenet-thunder --backend tpu x.jpg -o out.json");
  EXPECT_NE(r.code, 0);
  // --transfer: CUDA only, and one of the three modes; refused before any GPU or file is touched.
  for (const char* args : {"run --model movenet-thunder --transfer mapped x.jpg -o out.json",
                           "run --model movenet-thunder --backend cuda --transfer zero-copy x.jpg -o out.json",
                           "bench --stage e2e --model movenet-lightning --transfer bogus",
                           "bench --stage e2e --model movenet-lightning --transfer copy,copy",
                           "bench --stage decode --model movenet-lightning --transfer copy"}) {
    r = run(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find("--transfer"), std::string::npos) << args << "\n" << r.output;
  }
}

// Each bench mode refuses the options it would ignore (exit 2, naming the option), before it
// touches a GPU: these run on machines without one.
TEST(Cli, BenchRefusesOptionsItsModeIgnores) {
  struct Case {
    const char* args;
    const char* names;
  };
  for (const Case& c : {Case{"bench --stage decode --model movenet-lightning --precision fp32", "--precision"},
                        Case{"bench --stage decode --model movenet-lightning --models-dir /tmp", "--models-dir"},
                        Case{"bench --stage e2e --model movenet-lightning --threads 4", "--threads"},
                        Case{"bench --stage e2e --model movenet-lightning --profile", "--profile"},
                        Case{"bench --stage e2e --model movenet-lightning --backend cpu", "--backend cpu"},
                        Case{"bench --model movenet-lightning --backend cuda --width 320", "--width"},
                        Case{"bench --model movenet-lightning --precision fp16", "--precision"},
                        Case{"bench --model movenet-lightning --batch 1,8", "--batch"},
                        Case{"bench --stage launch --model movenet-lightning", "--model"},
                        Case{"bench --stage launch --batch 1", "--batch"},
                        Case{"bench --stage launch --backend cpu", "--backend cpu"},
                        Case{"bench --stage launch --steps 0", "--steps"},
                        Case{"bench --stage launch --steps 10,x", "--steps"},
                        Case{"bench --stage launch --steps 10001", "--steps"},
                        Case{"bench --stage e2e --model movenet-lightning --steps 10", "--steps"},
                        Case{"bench --stage nope", "e2e, decode or launch"}}) {
    const Result r = run(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.names), std::string::npos) << c.args << "\n" << r.output;
  }
}

// posert bench --stage decode --backend cpu: the CPU decoder alone, on any machine. One row per
// batch size with positive times (p99 >= p50), the per-item figure p50 / batch, and the number
// of runs asked for.
TEST(Cli, BenchDecodeOnTheCpuNeedsNoGpu) {
  struct Case {
    const char* args;
    std::vector<int> batches;
    int runs;
  };
  for (const Case& c :
       {Case{"bench --stage decode --backend cpu --model movenet-lightning --batch 1,3 --runs 4 --warmup 1 --threads 2",
             {1, 3}, 4},
        Case{"bench --stage decode --backend cpu --model heatmap --heatmap 8x6 --input 16x12 --keypoints 3 --batch 2 "
             "--runs 2 --threads 1",
             {2}, 2}}) {
    const Result r = run(c.args);
    ASSERT_EQ(r.code, 0) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find("CPU only"), std::string::npos) << r.output;
    std::vector<int> seen;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
      int batch = 0, runs = 0;
      double p50 = 0, p99 = 0, per_item = 0;
      if (std::sscanf(line.c_str(), "%d %lf %lf %lf %d", &batch, &p50, &p99, &per_item, &runs) != 5) continue;
      seen.push_back(batch);
      EXPECT_GT(p50, 0.0) << line;
      EXPECT_GE(p99, p50) << line;
      EXPECT_NEAR(per_item, p50 / batch, 1e-4) << line;
      EXPECT_EQ(runs, c.runs) << line;
    }
    EXPECT_EQ(seen, c.batches) << r.output;
  }
  // Usage errors (exit 2): an unknown model, an unknown backend.
  for (const char* args : {"bench --stage decode --backend cpu --model no-such-model",
                           "bench --stage decode --backend tpu --model movenet-lightning"}) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
  }
}

TEST(Cli, ModelsListsAllFour) {
  const Result r = run("models");
  EXPECT_EQ(r.code, 0);
  for (const char* m : {"movenet-lightning", "movenet-thunder", "movenet-multipose", "posenet"})
    EXPECT_NE(r.output.find(m), std::string::npos) << m;
  EXPECT_NE(r.output.find("192x192"), std::string::npos);
  EXPECT_NE(r.output.find("385x385"), std::string::npos);
}

TEST(Cli, MissingModelSaysHowToInstall) {
  const std::string dir = posert::test::temp_dir();
  const std::string img = dir + "/x.png";
  write_bytes(img, "not really");
  const Result r = run("run --model movenet-lightning --models-dir " + dir + " " + img + " -o " + dir + "/o.json");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("fetch_models.sh"), std::string::npos) << r.output;
}

TEST(Cli, BadImagesFailWithTheirName) {
  NEED_MODEL("movenet-lightning");
  const std::string dir = posert::test::temp_dir();
  write_bytes(dir + "/empty.jpg", "");
  write_bytes(dir + "/text.jpg", "hello, this is not an image");
  write_bytes(dir + "/trunc.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16));
  for (const char* name : {"empty.jpg", "text.jpg", "trunc.png", "missing.jpg"}) {
    const std::string out = dir + "/o.json";
    const Result r = run("run --model movenet-lightning " + dir + "/" + name + " -o " + out);
    EXPECT_EQ(r.code, 1) << name << ": " << r.output;
    EXPECT_NE(r.output.find(name), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out)) << "partial output written for " << name;
  }
}

TEST(Cli, CorruptModelFailsWithFileName) {
  NEED_MODEL("movenet-lightning");
  NEED_PHOTO("messi5.jpg");
  const std::string dir = posert::test::temp_dir();
  // A model whose weight shard is truncated.
  fs::copy_file(posert::test::models_dir() + "/movenet-lightning.json", dir + "/movenet-lightning.json");
  {
    std::ifstream in(posert::test::models_dir() + "/movenet-lightning.bin", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    write_bytes(dir + "/movenet-lightning.bin", bytes.substr(0, bytes.size() / 2));
  }
  Result r = run("run --model movenet-lightning --models-dir " + dir + " " + photo("messi5.jpg") + " -o " + dir + "/o.json");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("movenet-lightning.bin"), std::string::npos) << r.output;
  // A model.json with a syntax error.
  write_bytes(dir + "/movenet-lightning.json", "{\"modelTopology\": {\"node\": [}");
  r = run("run --model movenet-lightning --models-dir " + dir + " " + photo("messi5.jpg") + " -o " + dir + "/o.json");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("line 1, column"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir + "/o.json"));
}

// A model file is untrusted: lightning with its keypoint heatmap head rewired to the centre
// head's input (1 channel where the decoder reads 17) imports and runs, and the CPU backend
// refuses its heads by name and shape before the decoder reads them, writing nothing.
TEST(Cli, ModelWithAWrongHeadShapeIsRefused) {
  NEED_MODEL("movenet-lightning");
  NEED_PHOTO("messi5.jpg");
  const std::string src = posert::test::models_dir(), dir = posert::test::temp_dir();
  fs::copy_file(src + "/movenet-lightning.bin", dir + "/movenet-lightning.bin", fs::copy_options::overwrite_existing);
  nlohmann::json m;
  std::ifstream(src + "/movenet-lightning.json") >> m;
  int rewired = 0;
  for (auto& n : m["modelTopology"]["node"])
    if (n["name"] == "StatefulPartitionedCall/Sigmoid") {
      n["input"] = nlohmann::json::array({"StatefulPartitionedCall/center_0/conv2d_4/BiasAdd"});
      ++rewired;
    }
  ASSERT_EQ(rewired, 1) << "the lightning model no longer has the node this test rewires";
  std::ofstream(dir + "/movenet-lightning.json") << m.dump();
  const std::string out = dir + "/o.json";
  const Result r = run("run --model movenet-lightning --backend cpu --models-dir " + dir + " " + photo("messi5.jpg") + " -o " + out);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("head 'StatefulPartitionedCall/Sigmoid' has shape [1,48,48,1]"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
}

TEST(Cli, RunOnRealPhotoWritesJsonAndOverlay) {
  NEED_MODEL("movenet-lightning");
  NEED_PHOTO("messi5.jpg");
  const std::string dir = posert::test::temp_dir();
  const Result r = run("run --model movenet-lightning " + photo("messi5.jpg") + " -o " + dir +
                       "/out.json --overlay " + dir + "/ov");
  ASSERT_EQ(r.code, 0) << r.output;
  std::ifstream in(dir + "/out.json");
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["model"], "movenet-lightning");
  EXPECT_EQ(j["keypoint_names"].size(), 17u);
  ASSERT_EQ(j["frames"].size(), 1u);
  const auto& f = j["frames"][0];
  EXPECT_EQ(f["width"], 548);
  EXPECT_EQ(f["height"], 342);
  ASSERT_EQ(f["poses"].size(), 1u);
  const auto& kps = f["poses"][0]["keypoints"];
  ASSERT_EQ(kps.size(), 17u);
  // The player's body spans about x 95..465, y 85..335 of this photo (seen on the image itself):
  // confident keypoints must land there, and the shoulders on his chest.
  int confident = 0;
  for (const auto& k : kps) {
    if (k[2].get<double>() < 0.3) continue;
    ++confident;
    EXPECT_GE(k[0].get<double>(), 95.0);
    EXPECT_LT(k[0].get<double>(), 465.0);
    EXPECT_GE(k[1].get<double>(), 85.0);
    EXPECT_LT(k[1].get<double>(), 335.0);
  }
  EXPECT_GE(confident, 12);
  for (int s : {5, 6}) {  // left and right shoulder
    EXPECT_GT(kps[s][0].get<double>(), 170.0);
    EXPECT_LT(kps[s][0].get<double>(), 300.0);
    EXPECT_GT(kps[s][1].get<double>(), 105.0);
    EXPECT_LT(kps[s][1].get<double>(), 150.0);
  }
  EXPECT_TRUE(fs::exists(dir + "/ov/messi5.png"));
}

TEST(Cli, CocoFormat) {
  NEED_MODEL("movenet-lightning");
  NEED_PHOTO("camera.png");
  const std::string dir = posert::test::temp_dir();
  const Result r = run("run -q --format coco --model movenet-lightning " + photo("camera.png") + " -o " + dir + "/c.json");
  ASSERT_EQ(r.code, 0) << r.output;
  std::ifstream in(dir + "/c.json");
  const auto j = nlohmann::json::parse(in);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["category_id"], 1);
  EXPECT_EQ(j[0]["keypoints"].size(), 51u);
}

// --batch groups the inputs per detector call; the results are those of one image at a time
// (CPU backend here; the CUDA batch path is compared with the CPU in tests/gpu).
TEST(Cli, BatchGivesTheSameResults) {
  NEED_MODEL("movenet-lightning");
  NEED_PHOTO("camera.png");
  NEED_PHOTO("astronaut.png");
  NEED_PHOTO("messi5.jpg");
  const std::string dir = posert::test::temp_dir();
  const std::string in = photo("camera.png") + " " + photo("astronaut.png") + " " + photo("messi5.jpg");
  const Result one = run("run -q --model movenet-lightning " + in + " -o " + dir + "/one.json");
  ASSERT_EQ(one.code, 0) << one.output;
  const Result two = run("run -q --model movenet-lightning --batch 2 " + in + " -o " + dir + "/two.json");
  ASSERT_EQ(two.code, 0) << two.output;
  std::ifstream a(dir + "/one.json"), b(dir + "/two.json");
  const auto ja = nlohmann::json::parse(a), jb = nlohmann::json::parse(b);
  ASSERT_EQ(ja["frames"].size(), 3u);
  EXPECT_EQ(ja, jb);
  const Result bad = run("run -q --model movenet-lightning --batch 0 " + in + " -o " + dir + "/bad.json");
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_FALSE(fs::exists(dir + "/bad.json"));
}

TEST(Cli, CreatesTheOutputFolder) {
  NEED_MODEL("movenet-lightning");
  NEED_PHOTO("camera.png");
  const std::string out = posert::test::temp_dir() + "/new/sub/r.json";
  const Result r = run("run -q --model movenet-lightning " + photo("camera.png") + " -o " + out);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(out));
}

TEST(Cli, BadEngineFilesAreRefusedByName) {
  const std::string dir = posert::test::temp_dir();
  write_bytes(dir + "/garbage.engine", "this is not an engine");
  write_bytes(dir + "/short.engine", "POSERTEN\x01");
  write_bytes(dir + "/x.png", "x");
  for (const char* f : {"garbage.engine", "short.engine"}) {
    Result r = run("inspect --engine " + dir + "/" + f);
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_NE(r.output.find(f), std::string::npos) << r.output;
    r = run("run --engine " + dir + "/" + f + " " + dir + "/x.png -o " + dir + "/o.json");
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_NE(r.output.find(f), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir + "/o.json"));
  }
  EXPECT_EQ(run("build --model movenet-lightning").code, 2);  // no -o
}

TEST(Cli, InspectPrintsGraph) {
  NEED_MODEL("posenet");
  const Result r = run("inspect --model posenet --summary");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("Conv2D"), std::string::npos);
  EXPECT_NE(r.output.find("DepthwiseConv2D"), std::string::npos);
}

}  // namespace
