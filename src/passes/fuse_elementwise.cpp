// Elementwise-chain fusion: x -> op(c0) -> op(c1) ... with scalar or per-channel constants
// becomes one ElementwiseChain node (one pass over memory instead of one per op).
#include "ir/elementwise_chain.h"
#include "passes/graph_util.h"
#include "passes/passes.h"

namespace posert {

namespace {

// A chain step for node n reading the chain value `x`, or false if n cannot join a chain.
bool as_step(const Graph& g, const Node& n, int x, int32_t* op, int* cval) {
  *cval = -1;
  switch (n.op) {
    case OpKind::Sigmoid: *op = static_cast<int32_t>(ChainOp::Sigmoid); return true;
    case OpKind::Relu: *op = static_cast<int32_t>(ChainOp::Relu); return true;
    case OpKind::Relu6: *op = static_cast<int32_t>(ChainOp::Relu6); return true;
    case OpKind::Add: case OpKind::Sub: case OpKind::Mul: case OpKind::Div: break;
    default: return false;
  }
  const bool x_first = n.inputs[0] == x;
  const int c = x_first ? n.inputs[1] : n.inputs[0];
  if (c == x) return false;
  const Value& cv = g.values[c];
  if (!cv.constant || cv.dtype != DType::F32) return false;
  const Shape& xs = g.values[x].shape;
  const int64_t channels = xs.empty() ? 1 : xs.back();
  const int64_t numel = shape_numel(cv.shape);
  bool per_channel = numel == 1;
  if (!per_channel && numel == channels && cv.shape.size() <= xs.size()) {
    per_channel = true;
    for (size_t i = 0; i + 1 < cv.shape.size(); ++i) per_channel = per_channel && cv.shape[i] == 1;
    per_channel = per_channel && cv.shape.back() == channels;
  }
  if (!per_channel || g.values[n.outputs[0]].shape != xs) return false;
  switch (n.op) {
    case OpKind::Add: *op = static_cast<int32_t>(ChainOp::Add); break;
    case OpKind::Mul: *op = static_cast<int32_t>(ChainOp::Mul); break;
    case OpKind::Sub: *op = static_cast<int32_t>(x_first ? ChainOp::Sub : ChainOp::RSub); break;
    case OpKind::Div:
      if (!x_first) return false;
      *op = static_cast<int32_t>(ChainOp::Div);
      break;
    default: return false;
  }
  *cval = c;
  return true;
}

}  // namespace

Graph fuse_elementwise_chains(Graph g) {
  renumber_producers(g);
  const auto uses = use_counts(g);
  // consumer of each value when it has exactly one node consumer
  std::vector<int> consumer(g.values.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int id : g.nodes[i].inputs) consumer[id] = static_cast<int>(i);
  std::vector<bool> drop(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (drop[i]) continue;
    Node& first = g.nodes[i];
    int x;
    std::vector<int64_t> program;
    std::vector<int> consts;
    if (first.op == OpKind::Cast && first.attrs.get_str("to", "") == "f32" && g.values[first.inputs[0]].dtype != DType::Bool) {
      x = first.inputs[0];
    } else {
      int32_t op;
      int c;
      if (first.inputs.empty() || !as_step(g, first, first.inputs[0], &op, &c)) {
        if (first.inputs.size() == 2 && as_step(g, first, first.inputs[1], &op, &c)) x = first.inputs[1];
        else continue;
      } else {
        x = first.inputs[0];
      }
      if (g.values[x].dtype != DType::F32) continue;
      program = {op, c < 0 ? -1 : static_cast<int64_t>(consts.size())};
      if (c >= 0) consts.push_back(c);
    }
    // Extend while the chain value has a single chainable consumer. Reshapes that keep the last
    // (channel) dimension are views the chain reads through (MoveNet: Cast -> unstack/ExpandDims/
    // Squeeze/stack reshapes -> normalization); they join only when a real step follows them.
    int cur = static_cast<int>(i);
    int out = first.outputs[0];
    std::vector<int> views;  // reshape nodes passed since the last step
    while (uses[out] == 1 && !is_graph_output(g, out) && consumer[out] >= 0 && consts.size() < 16) {
      const Node& nx = g.nodes[consumer[out]];
      const Shape& from = g.values[out].shape;
      if (nx.op == OpKind::Reshape && !from.empty()) {
        const Shape& to = g.values[nx.outputs[0]].shape;
        if (!to.empty() && to.back() == from.back() && shape_numel(to) == shape_numel(from)) {
          views.push_back(consumer[out]);
          out = nx.outputs[0];
          continue;
        }
      }
      int32_t op;
      int c;
      if (!as_step(g, nx, out, &op, &c)) break;
      program.push_back(op);
      program.push_back(c < 0 ? -1 : static_cast<int64_t>(consts.size()));
      if (c >= 0) consts.push_back(c);
      if (cur != static_cast<int>(i)) drop[cur] = true;
      for (int v : views) drop[v] = true;
      views.clear();
      cur = consumer[out];
      out = nx.outputs[0];
    }
    out = g.nodes[cur].outputs[0];  // reshapes after the last step stay as they are
    if (cur == static_cast<int>(i) && first.op == OpKind::Cast) continue;  // a lone Cast stays a Cast
    // The chain node replaces the last node of the run (so it sits after every input it needs).
    Node chain;
    chain.name = first.name + (cur != static_cast<int>(i) ? "..." + g.nodes[cur].name : "");
    chain.op = OpKind::ElementwiseChain;
    chain.inputs = {x};
    chain.inputs.insert(chain.inputs.end(), consts.begin(), consts.end());
    chain.outputs = {out};
    chain.attrs.set("program", program);
    chain.source_op = "fused";
    chain.source_index = first.source_index;
    if (cur != static_cast<int>(i)) drop[i] = true;
    g.nodes[cur] = std::move(chain);
  }
  remove_nodes(g, drop);
  return g;
}

}  // namespace posert
