#include "import/tfjs/tfjs_importer.h"

#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/file_util.h"
#include "import/tfjs/op_mapping.h"
#include "import/tfjs/weights.h"
#include "ir/verifier.h"
#include "passes/infer_shapes.h"

namespace posert {

namespace {

using json = nlohmann::json;
constexpr uint64_t kMaxModelJsonBytes = 64u << 20;
constexpr size_t kMaxNodes = 200000;

struct TfNode {
  std::string name;
  std::string op;
  std::vector<std::string> inputs;  // data inputs ("name" or "name:k"); control inputs dropped
  const json* attr = nullptr;
  int index = 0;
};

std::string line_col(const std::string& text, size_t byte) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') { ++line; col = 1; } else { ++col; }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

json parse_json_file(const std::string& path) {
  const auto bytes = read_file(path, kMaxModelJsonBytes, "model");
  if (bytes.empty()) throw Error("model '" + path + "' is empty");
  const std::string text(bytes.begin(), bytes.end());
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // e.byte is 1-based position of the offending character
    const size_t at = e.byte > 0 ? e.byte - 1 : 0;
    std::string what = e.what();
    const auto p = what.find("syntax error");
    if (p != std::string::npos) what = what.substr(p);
    throw Error("model '" + path + "': JSON " + what + " (at " + line_col(text, at) + ", byte " +
                std::to_string(at) + ")");
  }
}

std::string tf_where(const TfNode& n, const std::string& path) {
  return "node '" + n.name + "' (#" + std::to_string(n.index) + ", op " + n.op + ") in " + path;
}

// "name:k" -> ("name", k); "name" -> ("name", 0)
std::pair<std::string, int> split_ref(const std::string& ref) {
  const auto c = ref.rfind(':');
  if (c != std::string::npos && c + 1 < ref.size() &&
      ref.find_first_not_of("0123456789", c + 1) == std::string::npos && ref.size() - c <= 6) {
    return {ref.substr(0, c), std::stoi(ref.substr(c + 1))};
  }
  return {ref, 0};
}

Shape parse_dims(const json& s) {
  Shape shape;
  if (s.is_object() && s.contains("dim") && s["dim"].is_array()) {
    for (const auto& d : s["dim"]) {
      int64_t v = -1;
      if (d.is_object() && d.contains("size")) {
        const json& sz = d["size"];
        try {
          v = sz.is_string() ? std::stoll(sz.get<std::string>()) : sz.is_number_integer() ? sz.get<int64_t>() : -1;
        } catch (...) {
          v = -1;
        }
      }
      shape.push_back(v);
    }
  }
  return shape;
}

// The signature's shape for input tensor `name` ("name:0"), if it lists one.
Shape signature_shape(const json& root, const std::string& name) {
  if (!root.contains("signature") || !root["signature"].is_object() || !root["signature"].contains("inputs") ||
      !root["signature"]["inputs"].is_object())
    return {};
  for (const auto& [key, in] : root["signature"]["inputs"].items()) {
    if (!in.is_object() || (in.contains("name") && !in["name"].is_string())) continue;
    std::string nm = in.value("name", key);
    if (nm.size() > 2 && nm.compare(nm.size() - 2, 2, ":0") == 0) nm.resize(nm.size() - 2);
    if (nm == name && in.contains("tensorShape")) return parse_dims(in["tensorShape"]);
  }
  return {};
}

Shape placeholder_shape(const TfNode& n, const std::string& path, const json& root, const ImportOptions& opt) {
  const int batch = opt.batch;
  if (!n.attr || !n.attr->contains("shape") || !(*n.attr)["shape"].contains("shape"))
    throw Error(tf_where(n, path) + ": placeholder has no shape attribute");
  Shape shape = parse_dims((*n.attr)["shape"]["shape"]);
  const Shape sig = signature_shape(root, n.name);
  for (size_t i = 1; i < shape.size(); ++i) {
    if (shape[i] < 0 && sig.size() == shape.size() && sig[i] > 0) shape[i] = sig[i];
    if (shape[i] < 0 && shape.size() == 4 && (i == 1 || i == 2) && opt.input_size > 0) shape[i] = opt.input_size;
  }
  if (shape.empty()) throw Error(tf_where(n, path) + ": placeholder has rank 0; expected an image batch");
  if (batch < 1 || batch > 4096) throw Error("batch size " + std::to_string(batch) + " is out of range 1..4096");
  shape[0] = batch;
  for (size_t i = 1; i < shape.size(); ++i)
    if (shape[i] < 1 || shape[i] > 65536)
      throw Error(tf_where(n, path) + ": placeholder dimension " + std::to_string(i) + " is " +
                  std::to_string(shape[i]) + "; PoseRT needs static input sizes");
  return shape;
}

Graph import_tfjs_checked(const std::string& path, const ImportOptions& opt) {
  namespace fs = std::filesystem;
  const json root = parse_json_file(path);
  if (!root.is_object() || !root.contains("modelTopology") || !root["modelTopology"].is_object())
    throw Error("model '" + path + "' is not a TF.js graph model: no 'modelTopology' object");
  const json& topo = root["modelTopology"];
  if (!topo.contains("node") || !topo["node"].is_array())
    throw Error("model '" + path + "': 'modelTopology' has no 'node' list (a Keras layers model? only graph models are supported)");
  if (!root.contains("weightsManifest"))
    throw Error("model '" + path + "' has no 'weightsManifest'");
  const json& jnodes = topo["node"];
  if (jnodes.size() > kMaxNodes) throw Error("model '" + path + "' has too many nodes");

  // 1. Parse nodes.
  std::vector<TfNode> tf;
  std::map<std::string, int> by_name;
  for (size_t i = 0; i < jnodes.size(); ++i) {
    const json& jn = jnodes[i];
    TfNode n;
    n.index = static_cast<int>(i);
    if (!jn.is_object() || !jn.contains("name") || !jn["name"].is_string() || !jn.contains("op") ||
        !jn["op"].is_string())
      throw Error("model '" + path + "': node #" + std::to_string(i) + " needs string 'name' and 'op'");
    n.name = jn["name"].get<std::string>();
    n.op = jn["op"].get<std::string>();
    if (jn.contains("input")) {
      if (!jn["input"].is_array()) throw Error(tf_where(n, path) + ": 'input' is not a list");
      for (const auto& in : jn["input"]) {
        if (!in.is_string()) throw Error(tf_where(n, path) + ": an input is not a string");
        const std::string s = in.get<std::string>();
        if (!s.empty() && s[0] == '^') continue;  // control dependency: no data flows
        n.inputs.push_back(s);
      }
    }
    if (jn.contains("attr")) n.attr = &jn["attr"];
    if (by_name.count(n.name)) throw Error(tf_where(n, path) + ": a node with this name already exists");
    by_name[n.name] = static_cast<int>(tf.size());
    tf.push_back(std::move(n));
  }

  // 2. Weights.
  const std::string dir = fs::path(path).parent_path().string();
  auto weights = tfjs::load_weights(root["weightsManifest"], dir.empty() ? "." : dir, path);

  // 3. Topological order (TF.js does not promise one). Iterative DFS with cycle detection.
  std::vector<int> order, state(tf.size(), 0);  // 0 new, 1 on stack, 2 done
  for (size_t s = 0; s < tf.size(); ++s) {
    if (state[s]) continue;
    std::vector<std::pair<int, size_t>> stack{{static_cast<int>(s), 0}};
    state[s] = 1;
    while (!stack.empty()) {
      auto& [u, next] = stack.back();
      if (next < tf[u].inputs.size()) {
        const auto [src, k] = split_ref(tf[u].inputs[next++]);
        auto it = by_name.find(src);
        if (it == by_name.end())
          throw Error(tf_where(tf[u], path) + ": input '" + tf[u].inputs[next - 1] +
                      "' refers to a node that does not exist (dangling input)");
        const int v = it->second;
        if (state[v] == 1) throw Error(tf_where(tf[u], path) + ": the graph has a cycle through this node and '" + tf[v].name + "'");
        if (state[v] == 0) { state[v] = 1; stack.push_back({v, 0}); }
      } else {
        state[u] = 2;
        order.push_back(u);
        stack.pop_back();
      }
    }
  }

  // 4. Build the IR.
  Graph g;
  g.source = path;
  std::map<std::string, int> value_of;  // "name" / "name:k" -> value id
  auto lookup = [&](const TfNode& n, const std::string& ref) {
    const auto [src, k] = split_ref(ref);
    auto it = value_of.find(k == 0 ? src : src + ":" + std::to_string(k));
    if (it == value_of.end())
      throw Error(tf_where(n, path) + ": input '" + ref + "' names output " + std::to_string(k) + " of '" + src +
                  "', which does not have that many outputs");
    return it->second;
  };
  std::set<std::string> used_weights;
  for (int idx : order) {
    const TfNode& n = tf[idx];
    if (n.op == "Const") {
      auto it = weights.find(n.name);
      if (it == weights.end())
        throw Error(tf_where(n, path) + ": constant has no entry in the weights manifest");
      if (n.attr && n.attr->contains("dtype") && (*n.attr)["dtype"].contains("type")) {
        if (!(*n.attr)["dtype"]["type"].is_string()) throw Error(tf_where(n, path) + ": attribute 'dtype' is not a type name");
        DType want;
        const std::string tfdt = (*n.attr)["dtype"]["type"].get<std::string>();
        if (dtype_from_tf(tfdt, &want) && want != it->second.dtype())
          throw Error(tf_where(n, path) + ": constant is declared " + tfdt + " but its weight is " +
                      dtype_name(it->second.dtype()));
      }
      used_weights.insert(n.name);
      value_of[n.name] = g.add_constant(n.name, it->second);
      continue;
    }
    if (n.op == "Placeholder") {
      DType dt = DType::F32;
      if (n.attr && n.attr->contains("dtype")) {
        const json& d = (*n.attr)["dtype"];
        if (!d.is_object() || (d.contains("type") && !d["type"].is_string()))
          throw Error(tf_where(n, path) + ": attribute 'dtype' is not a type name");
        const std::string tfdt = d.value("type", "DT_FLOAT");
        if (!dtype_from_tf(tfdt, &dt)) throw Error(tf_where(n, path) + ": input dtype " + tfdt + " is not supported");
      }
      Value v;
      v.name = n.name;
      v.dtype = dt;
      v.shape = placeholder_shape(n, path, root, opt);
      v.shape_known = true;
      const int id = g.add_value(v);
      g.inputs.push_back(id);
      value_of[n.name] = id;
      continue;
    }
    tfjs::Mapped m;
    try {
      m = tfjs::map_node(n.op, n.attr ? *n.attr : json::object(), static_cast<int>(n.inputs.size()));
    } catch (const Error& e) {
      throw Error(tf_where(n, path) + ": " + e.what());
    } catch (const json::exception& e) {
      throw Error(tf_where(n, path) + ": malformed attribute (" + e.what() + ")");
    }
    Node node;
    node.name = n.name;
    node.op = m.op;
    node.attrs = std::move(m.attrs);
    node.source_op = n.op;
    node.source_index = n.index;
    for (const auto& in : n.inputs) node.inputs.push_back(lookup(n, in));
    const OpInfo& info = op_info(m.op);
    const int nin = static_cast<int>(node.inputs.size());
    if (nin < info.min_inputs || nin > info.max_inputs)
      throw Error(tf_where(n, path) + ": has " + std::to_string(nin) + " inputs, expected " +
                  std::to_string(info.min_inputs) +
                  (info.max_inputs != info.min_inputs ? ".." + std::to_string(info.max_inputs) : ""));
    for (int k = 0; k < m.num_outputs; ++k) {
      Value v;
      v.name = k == 0 ? n.name : n.name + ":" + std::to_string(k);
      v.producer = static_cast<int>(g.nodes.size());
      const int id = g.add_value(v);
      node.outputs.push_back(id);
      value_of[v.name] = id;
    }
    g.nodes.push_back(std::move(node));
  }
  if (g.inputs.empty()) throw Error("model '" + path + "' has no Placeholder input");

  // 5. Outputs: the signature's, else nodes nobody consumes.
  std::vector<std::string> outs;
  if (root.contains("signature") && root["signature"].contains("outputs") && root["signature"]["outputs"].is_object()) {
    for (const auto& [key, o] : root["signature"]["outputs"].items()) {
      if (!o.is_object() || (o.contains("name") && !o["name"].is_string()))
        throw Error("model '" + path + "': signature output '" + key + "' is not an object with a string 'name'");
      std::string nm = o.value("name", key);
      if (nm.size() > 2 && nm.compare(nm.size() - 2, 2, ":0") == 0) nm.resize(nm.size() - 2);
      outs.push_back(nm);
    }
  }
  if (outs.empty()) {
    std::set<std::string> consumed;
    for (const auto& n : tf)
      for (const auto& in : n.inputs) consumed.insert(split_ref(in).first);
    for (const auto& n : tf)
      if (!consumed.count(n.name) && n.op != "Const" && n.op != "Placeholder") outs.push_back(n.name);
  }
  for (const auto& o : outs) {
    auto it = value_of.find(o);
    if (it == value_of.end()) throw Error("model '" + path + "': output '" + o + "' is not a node of the graph");
    g.outputs.push_back(it->second);
  }

  infer_shapes_and_fold(g);
  verify_graph(g);
  return g;
}

}  // namespace

Graph import_tfjs(const std::string& path, const ImportOptions& opt) {
  // The checks above name what they refuse; a JSON value of a kind no check expected still ends
  // as an Error that names the file, never as a JSON library exception.
  try {
    return import_tfjs_checked(path, opt);
  } catch (const json::exception& e) {
    throw Error("model '" + path + "': unexpected JSON structure (" + e.what() + ")");
  }
}

}  // namespace posert
