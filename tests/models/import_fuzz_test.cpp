// Model files are untrusted: the real models' model.json, mutated at random (attributes replaced
// by wrong types and out-of-range values, inputs rewired, ops swapped, weights renamed, reshaped
// or retyped, the input placeholder's shape and the signature broken), must either import or be
// refused with a posert::Error that names the file; never another exception type, a crash or a
// hang. Where a mutated graph still imports, the reference executor runs it on a random input
// (small batch), the engine's passes optimize it and it is lowered to an engine plan (all on the
// host); each of those too may only succeed or throw posert::Error.
//
// Deterministic: fixed seeds, which POSERT_FUZZ_SEED (a number) shifts for a fresh series.
// POSERT_FUZZ_ITERS sets the mutated files per model (default 60); the thorough run: a few
// thousand in a sanitizer build (scripts/sanitize.sh).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <typeinfo>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "engine/plan_builder.h"
#include "engine/ref_executor.h"
#include "import/tfjs/tfjs_importer.h"
#include "passes/passes.h"
#include "pose/model_spec.h"
#include "support/test_support.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace posert {
namespace {

// A node's or weight's field as a string ("?" once an earlier mutation made it something else).
std::string str_field(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "?";
}

class Mutator {
 public:
  explicit Mutator(uint32_t seed) : rng_(seed) {}

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool coin() { return pick(2) == 0; }

  // A value of the wrong kind, or of the right kind out of range.
  json nasty_value() {
    switch (pick(16)) {
      case 0: return json();  // null
      case 1: return 42;
      case 2: return "garbage";
      case 3: return json::array();
      case 4: return json::object();
      case 5: return {{"i", "-5"}};
      case 6: return {{"i", "99999999999999"}};
      case 7: return {{"i", "0"}};
      case 8: return {{"list", {{"i", json::array({"0", "0", "0", "0"})}}}};
      case 9: return {{"list", {{"i", json::array({"1", "-3", "7"})}}}};
      case 10: return {{"list", {{"i", json::array({"1", "65537", "65537", "1"})}}}};
      case 11: return {{"s", "bm90IGEgcGFkZGluZw=="}};  // base64 of "not a padding"
      case 12: return {{"type", pick(2) ? "DT_STRING" : "DT_INT32"}};
      case 13: return {{"f", -1e30}};
      case 14: return {{"b", "yes"}};
      default: return {{"list", {{"f", json::array({1.5, -2})}, {"s", json::array({"", "x"})}}}};
    }
  }

  // One random mutation of the model; returns what it did.
  std::string mutate(json& m, const std::vector<std::string>& ops) {
    json& nodes = m["modelTopology"]["node"];
    const int nn = static_cast<int>(nodes.size());
    json& node = nodes[pick(nn)];
    const std::string nm = str_field(node, "name");
    switch (pick(12)) {
      case 0: {  // replace an attribute by a nasty value
        if (!node.contains("attr") || !node["attr"].is_object() || node["attr"].empty()) return "nothing (no attr)";
        auto it = node["attr"].begin();
        std::advance(it, pick(static_cast<int>(node["attr"].size())));
        const std::string key = it.key();
        node["attr"][key] = nasty_value();
        return "attr '" + key + "' of '" + nm + "' := " + node["attr"][key].dump();
      }
      case 1: {  // delete an attribute
        if (!node.contains("attr") || !node["attr"].is_object() || node["attr"].empty()) return "nothing (no attr)";
        auto it = node["attr"].begin();
        std::advance(it, pick(static_cast<int>(node["attr"].size())));
        const std::string key = it.key();
        node["attr"].erase(key);
        return "attr '" + key + "' of '" + nm + "' deleted";
      }
      case 2: {  // rewire an input to another node (cycles included) or to a missing output
        if (!node.contains("input") || !node["input"].is_array() || node["input"].empty()) return "nothing (no input)";
        const int j = pick(static_cast<int>(node["input"].size()));
        const std::string other = str_field(nodes[pick(nn)], "name");
        const char* suffix[] = {"", ":1", ":7", ":99999"};
        const std::string ref = pick(5) == 0 ? "no-such-node" : other + suffix[pick(4)];
        node["input"][j] = ref;
        return "input " + std::to_string(j) + " of '" + nm + "' := '" + ref + "'";
      }
      case 3: {  // drop, duplicate or retype an input
        if (!node.contains("input") || !node["input"].is_array() || node["input"].empty()) return "nothing (no input)";
        json& in = node["input"];
        const int j = pick(static_cast<int>(in.size()));
        switch (pick(3)) {
          case 0: in.erase(in.begin() + j); return "input " + std::to_string(j) + " of '" + nm + "' dropped";
          case 1: in.push_back(in[j]); return "input " + std::to_string(j) + " of '" + nm + "' repeated";
          default: in[j] = 7; return "input " + std::to_string(j) + " of '" + nm + "' := 7";
        }
      }
      case 4: {  // another op
        const std::string op = pick(6) == 0 ? "NoSuchOp" : ops[pick(static_cast<int>(ops.size()))];
        node["op"] = op;
        return "op of '" + nm + "' := " + op;
      }
      case 5: {  // a node field of the wrong kind
        const char* fields[] = {"name", "op", "input", "attr"};
        const std::string f = fields[pick(4)];
        node[f] = nasty_value();
        return "field '" + f + "' of '" + nm + "' := " + node[f].dump();
      }
      case 6: {  // the input placeholder's shape
        for (auto& n : nodes)
          if (str_field(n, "op") == "Placeholder") {
            json dims = json::array();
            const int rank = pick(6);
            for (int d = 0; d < rank; ++d) {
              const char* sizes[] = {"-1", "0", "1", "3", "97", "100000", "x", "2147483648"};
              dims.push_back({{"size", sizes[pick(8)]}});
            }
            n["attr"]["shape"] = {{"shape", {{"dim", dims}}}};
            if (m.contains("signature")) m.erase("signature");
            return "placeholder shape := " + dims.dump();
          }
        return "nothing (no placeholder)";
      }
      case 7: {  // the signature's outputs
        json v = coin() ? nasty_value() : json{{"out", {{"name", str_field(nodes[pick(nn)], "name") + ":0"}}}};
        m["signature"]["outputs"] = v;
        return "signature outputs := " + v.dump();
      }
      default: return mutate_weights(m);
    }
  }

 private:
  std::string mutate_weights(json& m) {
    json& groups = m["weightsManifest"];
    json& ws = groups[pick(static_cast<int>(groups.size()))]["weights"];
    const int nw = static_cast<int>(ws.size());
    json& w = ws[pick(nw)];
    const std::string nm = str_field(w, "name");
    switch (pick(5)) {
      case 0: {  // swap two weights' names: the constants keep valid bytes but get other shapes
        json& o = ws[pick(nw)];
        std::swap(w["name"], o["name"]);
        return "weights '" + nm + "' and '" + str_field(w, "name") + "' renamed into each other";
      }
      case 1: {  // reshape with the same element count (a permutation of the dims, or flattened)
        if (!w["shape"].is_array() || w["shape"].empty()) return "nothing (scalar weight)";
        json& s = w["shape"];
        if (coin()) {
          std::shuffle(s.begin(), s.end(), rng_);
        } else {
          int64_t n = 1;
          for (const auto& d : s) {
            if (!d.is_number_integer()) return "nothing (a dimension is no longer an integer)";
            n *= d.get<int64_t>();
          }
          s = json::array({n});
        }
        return "weight '" + nm + "' shape := " + s.dump();
      }
      case 2: {  // a dimension that disagrees with the bytes, or is hostile
        if (!w["shape"].is_array() || w["shape"].empty()) return "nothing (scalar weight)";
        const json vals[] = {0, -1, 2147483648LL, 4294967296LL, "3", 1.5};
        const int d = pick(static_cast<int>(w["shape"].size()));
        w["shape"][d] = vals[pick(6)];
        return "weight '" + nm + "' dim " + std::to_string(d) + " := " + w["shape"][d].dump();
      }
      case 3: {  // another dtype
        const char* dts[] = {"int32", "bool", "float64", "string"};
        w["dtype"] = dts[pick(4)];
        return "weight '" + nm + "' dtype := " + w["dtype"].dump();
      }
      default: {  // quantization that does not fit the bytes, or is malformed
        const json qs[] = {{{"dtype", "uint8"}, {"scale", 0.5}, {"min", -1}},
                           {{"dtype", "float16"}},
                           {{"dtype", "uint16"}, {"scale", "x"}},
                           {{"dtype", "int4"}},
                           json::array()};
        w["quantization"] = qs[pick(5)];
        return "weight '" + nm + "' quantization := " + w["quantization"].dump();
      }
    }
  }

  std::mt19937 rng_;
};

// A random input for the graph's placeholder at its imported shape, values in [0, 255].
Tensor random_input(const Graph& g, std::mt19937& rng) {
  const Value& v = g.values[g.inputs[0]];
  Tensor t(v.dtype, v.shape);
  std::uniform_real_distribution<float> u(0.0f, 255.0f);
  if (v.dtype == DType::F32)
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  else if (v.dtype == DType::I32)
    for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = static_cast<int32_t>(u(rng));
  return t;
}

void fuzz_model(const std::string& name, uint32_t seed) {
  if (!test::have_model(name)) GTEST_SKIP() << "model " << name << " not installed (run scripts/fetch_models.sh)";
  const std::string src = test::models_dir(), dir = test::temp_dir();
  json original;
  std::ifstream(src + "/" + name + ".json") >> original;
  // The shards beside the mutated model.json.
  std::vector<std::string> ops;
  for (const auto& g : original["weightsManifest"])
    for (const auto& p : g["paths"]) fs::copy_file(src + "/" + p.get<std::string>(), dir + "/" + p.get<std::string>());
  for (const auto& n : original["modelTopology"]["node"]) {
    const std::string op = n["op"].get<std::string>();
    if (std::find(ops.begin(), ops.end(), op) == ops.end()) ops.push_back(op);
  }
  const std::string path = dir + "/" + name + ".json";
  const int iters = static_cast<int>(test::env_number("POSERT_FUZZ_ITERS", 60, 1, 1000000));
  seed += static_cast<uint32_t>(test::env_number("POSERT_FUZZ_SEED", 0, 0, 1L << 30));
  Mutator mut(seed);
  std::mt19937 rng(seed ^ 0x9e3779b9u);
  const ModelSpec& spec = find_model_spec(name);
  int imported = 0, ran = 0, planned = 0, refused = 0, failures = 0;
  for (int it = 0; it < iters && failures < 5; ++it) {
    json m = original;
    std::string what;
    const int count = 1 + mut.pick(3);
    for (int c = 0; c < count; ++c) what += (c ? "; " : "") + mut.mutate(m, ops);
    std::ofstream(path) << m.dump();
    const std::string ctx = "iteration " + std::to_string(it) + " of " + name + ": " + what;
    std::string stage = "import";
    try {
      ImportOptions opt;
      opt.batch = 1 + mut.pick(2);
      Graph g = import_tfjs(path, opt);
      ++imported;
      stage = "run";
      RefExecutor ex(g);
      (void)ex.run({random_input(g, rng)});
      ++ran;
      // The engine's host side: the optimization passes and the lowering to an engine plan.
      stage = "optimize";
      const Graph opt_g = optimize_for_engine(g, spec.head_values);
      stage = "plan";
      (void)build_plan(opt_g, name, mut.coin() ? Precision::FP16 : Precision::FP32, 1 + mut.pick(4));
      ++planned;
    } catch (const Error& e) {
      ++refused;
      if (stage == "import" && std::string(e.what()).find(name + ".json") == std::string::npos) {
        ++failures;
        ADD_FAILURE() << ctx << "\n  refused without naming the file: " << e.what();
      }
    } catch (const std::exception& e) {
      ++failures;
      ADD_FAILURE() << ctx << "\n  " << stage << " threw a " << typeid(e).name() << " instead of posert::Error: "
                    << e.what();
    }
  }
  std::printf("[ fuzz     ] %s (seed %u): %d mutated files, %d imported (%d of them ran, %d planned), "
              "%d refused by posert::Error\n",
              name.c_str(), seed, iters, imported, ran, planned, refused);
  // The mutations must reach past the JSON checks: some files import, some are refused.
  if (iters >= 40 && failures == 0) {
    EXPECT_GT(imported, 0) << "no mutated " << name << " imported: the mutations test only the first checks";
    EXPECT_GT(refused, 0) << "no mutated " << name << " was refused: the mutations are not reaching the checks";
  }
}

TEST(ImportFuzz, MoveNetLightning) { fuzz_model("movenet-lightning", 101); }
TEST(ImportFuzz, MoveNetMultiPose) { fuzz_model("movenet-multipose", 202); }
TEST(ImportFuzz, PoseNet) { fuzz_model("posenet", 303); }

}  // namespace
}  // namespace posert
