#include "ir/printer.h"

#include <map>
#include <sstream>

namespace posert {

namespace {

std::string attr_str(const AttrValue& v) {
  std::ostringstream s;
  if (auto p = std::get_if<int64_t>(&v)) s << *p;
  else if (auto p = std::get_if<double>(&v)) s << *p;
  else if (auto p = std::get_if<std::string>(&v)) s << *p;
  else if (auto p = std::get_if<std::vector<int64_t>>(&v)) {
    s << "[";
    for (size_t i = 0; i < p->size(); ++i) s << (i ? "," : "") << (*p)[i];
    s << "]";
  }
  return s.str();
}

std::string value_ref(const Graph& g, int id) {
  const Value& v = g.values[id];
  if (v.constant) return "const " + std::string(dtype_name(v.dtype)) + shape_str(v.shape);
  std::string r = "%";  // not "%" + to_string(...): GCC 12 warns falsely about that (-Wrestrict)
  r += std::to_string(id);
  return r;
}

}  // namespace

void print_graph(std::ostream& os, const Graph& g) {
  for (int id : g.inputs)
    os << "input %" << id << " '" << g.values[id].name << "' " << dtype_name(g.values[id].dtype)
       << shape_str(g.values[id].shape) << "\n";
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    os << "#" << i << " ";
    for (size_t k = 0; k < n.outputs.size(); ++k) os << (k ? ", " : "") << "%" << n.outputs[k];
    os << " = " << op_name(n.op) << "(";
    for (size_t k = 0; k < n.inputs.size(); ++k) os << (k ? ", " : "") << value_ref(g, n.inputs[k]);
    os << ")";
    bool first = true;
    for (const auto& [k, v] : n.attrs.all()) {
      os << (first ? " {" : ", ") << k << "=" << attr_str(v);
      first = false;
    }
    if (!first) os << "}";
    os << " ->";
    for (int id : n.outputs) os << " " << dtype_name(g.values[id].dtype) << shape_str(g.values[id].shape);
    os << "  '" << n.name << "'\n";
  }
  for (int id : g.outputs) os << "output " << value_ref(g, id) << " '" << g.values[id].name << "'\n";
}

void print_graph_summary(std::ostream& os, const Graph& g) {
  std::map<std::string, int> per_op;
  for (const auto& n : g.nodes) per_op[op_name(n.op)]++;
  int64_t const_bytes = 0, act_bytes = 0;
  for (const auto& v : g.values) {
    if (v.constant) const_bytes += static_cast<int64_t>(v.constant->nbytes());
    else if (v.shape_known && v.producer >= 0) act_bytes += shape_numel(v.shape) * static_cast<int64_t>(dtype_size(v.dtype));
  }
  os << g.nodes.size() << " nodes:";
  for (const auto& [k, c] : per_op) os << " " << k << "x" << c;
  os << "\nconstants: " << const_bytes << " bytes; intermediate tensors (sum): " << act_bytes << " bytes\n";
}

}  // namespace posert
