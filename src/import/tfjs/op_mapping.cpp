#include "import/tfjs/op_mapping.h"

#include <map>

#include "posert/error.h"

namespace posert::tfjs {

namespace {

using json = nlohmann::json;

// TF attr JSON values are protobuf JSON: {"i": "3"}, {"f": 0.5}, {"b": true}, {"s": base64},
// {"type": "DT_FLOAT"}, {"list": {"i": [...]}}.
bool has(const json& attr, const char* k) { return attr.is_object() && attr.contains(k); }

int64_t parse_int(const json& v, const std::string& what) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    try {
      size_t pos = 0;
      const std::string s = v.get<std::string>();
      int64_t r = std::stoll(s, &pos);
      if (pos == s.size()) return r;
    } catch (...) {
    }
  }
  throw Error("attribute '" + what + "' is not an integer: " + v.dump());
}

int64_t attr_int(const json& attr, const char* k, int64_t def) {
  if (!has(attr, k)) return def;
  const json& a = attr[k];
  if (a.contains("i")) return parse_int(a["i"], k);
  if (a.contains("b")) {
    if (!a["b"].is_boolean()) throw Error(std::string("attribute '") + k + "' is not an integer or a boolean");
    return a["b"].get<bool>() ? 1 : 0;
  }
  return def;  // protobuf JSON omits default (zero) values: {"i": absent} means 0
}

bool attr_bool(const json& attr, const char* k, bool def) {
  if (!has(attr, k)) return def;
  const json& a = attr[k];
  if (a.contains("b")) {
    if (!a["b"].is_boolean()) throw Error(std::string("attribute '") + k + "' is not a boolean");
    return a["b"].get<bool>();
  }
  return false;
}

std::string decode_base64(const std::string& in) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    if (c == '=') break;
    const size_t p = chars.find(c);
    if (p == std::string::npos) throw Error("invalid base64 in a string attribute");
    val = (val << 6) + static_cast<int>(p);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

std::string attr_str(const json& attr, const char* k, const std::string& def) {
  if (!has(attr, k)) return def;
  const json& a = attr[k];
  if (a.contains("s")) {
    if (!a["s"].is_string()) throw Error(std::string("attribute '") + k + "' is not a string");
    return decode_base64(a["s"].get<std::string>());
  }
  return def;
}

std::string attr_type(const json& attr, const char* k) {
  if (!has(attr, k) || !attr[k].contains("type") || !attr[k]["type"].is_string())
    throw Error(std::string("attribute '") + k + "' (a dtype) is missing");
  return attr[k]["type"].get<std::string>();
}

std::vector<int64_t> attr_ints(const json& attr, const char* k) {
  std::vector<int64_t> r;
  if (!has(attr, k)) return r;
  const json& a = attr[k];
  if (!a.contains("list")) return r;
  const json& l = a["list"];
  if (l.contains("i")) {
    if (!l["i"].is_array()) throw Error(std::string("attribute '") + k + "' is not a list");
    for (const auto& v : l["i"]) r.push_back(parse_int(v, k));
  }
  return r;
}

std::vector<std::string> attr_strs(const json& attr, const char* k) {
  std::vector<std::string> r;
  if (!has(attr, k) || !attr[k].contains("list") || !attr[k]["list"].contains("s")) return r;
  for (const auto& v : attr[k]["list"]["s"]) {
    if (!v.is_string()) throw Error(std::string("attribute '") + k + "' is not a string list");
    r.push_back(decode_base64(v.get<std::string>()));
  }
  return r;
}

// NHWC [1, h, w, 1] -> [h, w]
std::vector<int64_t> spatial(const json& attr, const char* k, const char* what) {
  auto v = attr_ints(attr, k);
  if (v.empty()) return {1, 1};
  if (v.size() != 4 || v[0] != 1 || v[3] != 1 || v[1] < 1 || v[2] < 1)
    throw Error(std::string("unsupported ") + what + " " + json(v).dump() + " (expected [1, h, w, 1])");
  return {v[1], v[2]};
}

void conv_attrs(const json& attr, Attrs& a) {
  const std::string fmt = attr_str(attr, "data_format", "NHWC");
  if (fmt != "NHWC") throw Error("data_format '" + fmt + "' is not supported (only NHWC)");
  const std::string pad = attr_str(attr, "padding", "");
  if (pad != "SAME" && pad != "VALID")
    throw Error("padding '" + pad + "' is not supported (expected SAME or VALID)");
  a.set("padding", pad);
  a.set("strides", spatial(attr, "strides", "strides"));
  a.set("dilations", spatial(attr, "dilations", "dilations"));
}

std::string fused_activation(const json& attr, int num_data_inputs, bool* has_bias) {
  const auto ops = attr_strs(attr, "fused_ops");
  std::string act = "none";
  *has_bias = false;
  for (size_t i = 0; i < ops.size(); ++i) {
    const std::string& o = ops[i];
    if (o == "BiasAdd" && i == 0) {
      *has_bias = true;
    } else if (i == ops.size() - 1 && (o == "Relu" || o == "Relu6" || o == "Sigmoid")) {
      act = o == "Relu" ? "relu" : o == "Relu6" ? "relu6" : "sigmoid";
    } else {
      std::string all;
      for (auto& s : ops) all += (all.empty() ? "" : ",") + s;
      throw Error("fused_ops [" + all + "] are not supported (expected BiasAdd followed by " +
                  "at most one of Relu, Relu6, Sigmoid)");
    }
  }
  const int64_t num_args = attr_int(attr, "num_args", 0);
  if (*has_bias && (num_args != 1 || num_data_inputs != 3))
    throw Error("fused BiasAdd expects 3 inputs (x, filter, bias) and num_args 1, got " +
                std::to_string(num_data_inputs) + " inputs and num_args " + std::to_string(num_args));
  if (!*has_bias && num_data_inputs != 2)
    throw Error("expected 2 inputs (x, filter), got " + std::to_string(num_data_inputs));
  return act;
}

std::string ir_dtype(const std::string& tf) {
  if (tf == "DT_FLOAT") return "f32";
  if (tf == "DT_INT32") return "i32";
  if (tf == "DT_BOOL") return "bool";
  throw Error("dtype " + tf + " is not supported (expected DT_FLOAT, DT_INT32 or DT_BOOL)");
}

const std::map<std::string, OpKind>& simple_ops() {
  static const std::map<std::string, OpKind> m = {
      {"Add", OpKind::Add}, {"AddV2", OpKind::Add}, {"BiasAdd", OpKind::Add},
      {"Sub", OpKind::Sub}, {"Mul", OpKind::Mul}, {"RealDiv", OpKind::Div}, {"Div", OpKind::Div},
      {"FloorDiv", OpKind::FloorDiv}, {"SquaredDifference", OpKind::SquaredDifference},
      {"Minimum", OpKind::Minimum}, {"Maximum", OpKind::Maximum}, {"Less", OpKind::Less},
      {"Greater", OpKind::Greater}, {"GreaterEqual", OpKind::GreaterEqual}, {"Equal", OpKind::Equal},
      {"LogicalAnd", OpKind::LogicalAnd}, {"Select", OpKind::Select}, {"SelectV2", OpKind::Select},
      {"AddN", OpKind::AddN}, {"Sigmoid", OpKind::Sigmoid}, {"Sqrt", OpKind::Sqrt},
      {"Abs", OpKind::Abs}, {"Exp", OpKind::Exp}, {"Reciprocal", OpKind::Reciprocal},
      {"Relu", OpKind::Relu}, {"Relu6", OpKind::Relu6}, {"Neg", OpKind::Neg},
      {"Identity", OpKind::Identity}, {"Reshape", OpKind::Reshape},
      {"ExpandDims", OpKind::ExpandDims}, {"ConcatV2", OpKind::Concat},
      {"StridedSlice", OpKind::StridedSlice}, {"Tile", OpKind::Tile}, {"Fill", OpKind::Fill},
      {"Range", OpKind::Range}, {"Shape", OpKind::Shape}, {"Size", OpKind::Size},
      {"ArgMax", OpKind::ArgMax}, {"Max", OpKind::Max}, {"Sum", OpKind::Sum},
      {"GatherNd", OpKind::GatherNd}, {"TopKV2", OpKind::TopKV2},
      {"ResizeBilinear", OpKind::ResizeBilinear}, {"MaxPool", OpKind::MaxPool},
      {"Squeeze", OpKind::Squeeze}, {"Pack", OpKind::Pack}, {"Unpack", OpKind::Unpack},
      {"Split", OpKind::Split}, {"Cast", OpKind::Cast},
      {"_FusedConv2D", OpKind::Conv2D}, {"Conv2D", OpKind::Conv2D},
      {"FusedDepthwiseConv2dNative", OpKind::DepthwiseConv2D},
      {"DepthwiseConv2dNative", OpKind::DepthwiseConv2D},
  };
  return m;
}

}  // namespace

std::string supported_tf_ops() {
  std::string s;
  for (const auto& [k, v] : simple_ops()) s += (s.empty() ? "" : ", ") + k;
  return s;
}

Mapped map_node(const std::string& tf_op, const json& attr, int num_data_inputs) {
  auto it = simple_ops().find(tf_op);
  if (it == simple_ops().end())
    throw Error("op type '" + tf_op + "' is not supported (supported: " + supported_tf_ops() + ")");
  Mapped m{it->second, {}, 1};
  Attrs& a = m.attrs;
  switch (m.op) {
    case OpKind::Conv2D:
    case OpKind::DepthwiseConv2D: {
      conv_attrs(attr, a);
      bool bias = false;
      std::string act = "none";
      if (tf_op[0] == '_' || tf_op.rfind("Fused", 0) == 0) {
        act = fused_activation(attr, num_data_inputs, &bias);
      } else if (num_data_inputs != 2) {
        throw Error("expected 2 inputs (x, filter), got " + std::to_string(num_data_inputs));
      }
      a.set("activation", act);
      break;
    }
    case OpKind::MaxPool: {
      conv_attrs(attr, a);
      a.set("ksize", spatial(attr, "ksize", "ksize"));
      break;
    }
    case OpKind::ResizeBilinear:
      a.set("align_corners", int64_t{attr_bool(attr, "align_corners", false)});
      a.set("half_pixel_centers", int64_t{attr_bool(attr, "half_pixel_centers", false)});
      break;
    case OpKind::Cast:
      a.set("to", ir_dtype(attr_type(attr, "DstT")));
      break;
    case OpKind::Squeeze:
      a.set("axes", attr_ints(attr, "squeeze_dims"));
      break;
    case OpKind::Pack:
      a.set("axis", attr_int(attr, "axis", 0));
      break;
    case OpKind::Unpack:
      a.set("axis", attr_int(attr, "axis", 0));
      m.num_outputs = static_cast<int>(attr_int(attr, "num", -1));
      if (m.num_outputs < 1 || m.num_outputs > 4096) throw Error("Unpack needs attribute num >= 1");
      a.set("num", int64_t{m.num_outputs});
      break;
    case OpKind::Split:
      m.num_outputs = static_cast<int>(attr_int(attr, "num_split", -1));
      if (m.num_outputs < 1 || m.num_outputs > 4096) throw Error("Split needs attribute num_split >= 1");
      a.set("num", int64_t{m.num_outputs});
      break;
    case OpKind::StridedSlice:
      for (const char* k : {"begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask"})
        a.set(k, attr_int(attr, k, 0));
      break;
    case OpKind::Max:
    case OpKind::Sum:
      a.set("keep_dims", int64_t{attr_bool(attr, "keep_dims", false)});
      break;
    case OpKind::TopKV2:
      a.set("sorted", int64_t{attr_bool(attr, "sorted", true)});
      m.num_outputs = 2;
      break;
    case OpKind::ArgMax:
      if (has(attr, "output_type") && attr_type(attr, "output_type") != "DT_INT32")
        throw Error("ArgMax output_type " + attr_type(attr, "output_type") + " is not supported (DT_INT32 only)");
      break;
    default:
      break;
  }
  return m;
}

}  // namespace posert::tfjs
