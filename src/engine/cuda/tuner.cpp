#include "engine/cuda/tuner.h"
#include "engine/engine_env.h"
#include "engine/plan_builder.h"

#include <cuda_fp16.h>

#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <random>
#include <sstream>


namespace posert::cuda {

namespace {

// Everything a tactic's speed depends on: the GPU, driver, CUDA and cuDNN versions, the layer's
// shapes, types and attributes, the batch.
std::string layer_key(const EnginePlan& p, const PlanLayer& l, const BuildTarget& t, int driver) {
  std::ostringstream k;
  k << t.gpu_name << "|sm" << t.cc_major << t.cc_minor << "|drv" << driver << "|cuda" << t.cuda_runtime << "|cudnn"
    << t.cudnn << "|" << op_name(l.op) << "|b" << p.max_batch << "|" << precision_name(p.precision)
    // the candidate set: a cache written before a tactic existed must not hide it; the method
    // (r8: time per launch in a graph of repeated launches, time_tactic; m2: contenders timed twice)
    << "|tactics" << kConvTacticCount << "." << kDwTacticCount << "|r8m2";
  for (int id : l.inputs) k << "|" << shape_str(p.tensors[id].shape) << ":" << static_cast<int>(p.tensors[id].storage);
  k << "|out" << shape_str(p.tensors[l.outputs[0]].shape);
  for (const auto& [name, v] : l.attrs.all()) {
    k << "|" << name << "=";
    if (auto s = std::get_if<std::string>(&v)) k << *s;
    else if (auto i = std::get_if<int64_t>(&v)) k << *i;
    else if (auto vs = std::get_if<std::vector<int64_t>>(&v))
      for (auto x : *vs) k << x << ",";
  }
  return k.str();
}

std::vector<int> candidates(const EnginePlan& p, const PlanLayer& l, DeviceContext& ctx) {
  std::vector<int> out;
  const bool half = p.tensors[l.inputs[0]].storage == Storage::F16;
  const ConvParams cp = conv_params(p, l, p.max_batch);
  if (l.op == OpKind::Conv2D) {
    for (int t = 0; t < kConvTacticCount; ++t)
      if (conv_tactic_offered(t, cp, half)) out.push_back(t);
    if (cudnn_runtime_version() > 0 && cudnn_conv_eligible(cp))
      for (int t : ctx.cudnn().candidates(cp, half, l.inputs.size() > 2, l.name)) out.push_back(t);
  } else {
    for (int t = 0; t < kDwTacticCount; ++t)
      if (dw_tactic_applies(t, cp, half)) out.push_back(t);
  }
  return out;
}


}  // namespace

// Times tactic t of layer i as the runtime runs it, inside a CUDA graph (so cuDNN's host-side
// setup does not count), after two launches outside capture (cuDNN builds its plans there). The
// graph holds R launches of the layer one after the other (R = 8 for layers under 25 us, fewer for
// longer ones, 1 from 200 us), and the time is the graph's divided by R: the graph's own launch
// is spread over R, and each launch after the first overlaps the end of the one before it as in
// the engine's graph, where PoseRT's kernels start under programmatic dependent launch while the
// kernel before them finishes (cuDNN's kernels do not). Median of 9 in microseconds; nothing, with
// the reason in *why, when a cuDNN call fails for the layer or cannot be captured. PoseRT's own
// tactics must always work.
std::optional<double> time_tactic(DeviceContext& ctx, size_t i, int batch, int t, cudaEvent_t e0, cudaEvent_t e1,
                                  std::string* why) {
  const bool lib = is_cudnn_tactic(t);
  const cudaStream_t s = ctx.stream();
  try {
    for (int w = 0; w < 2; ++w) ctx.launch_layer(i, batch, t);
  } catch (const Error& e) {
    // cuDNN's heuristics list algorithms that its call may still refuse (NOT_SUPPORTED, or a
    // fused combination it does not implement): such a candidate is skipped, not the build failed.
    if (!lib) throw;
    *why = e.what();
    return std::nullopt;
  }
  // A graph of `reps` launches, or null with the reason in *why (cuDNN tactics only).
  auto capture = [&](int reps) -> cudaGraphExec_t {
    cudaGraph_t graph = nullptr;
    check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture (tuning)");
    std::string failed;
    auto abandon = [&] {
      cudaStreamEndCapture(s, &graph);
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();
    };
    try {
      for (int r = 0; r < reps; ++r) ctx.launch_layer(i, batch, t);
    } catch (const Error& e) {
      if (!lib) {
        abandon();
        throw;
      }
      failed = e.what();
    } catch (...) {  // anything else: the stream must not stay in capture mode
      abandon();
      throw;
    }
    const cudaError_t ec = cudaStreamEndCapture(s, &graph);
    if (ec != cudaSuccess && failed.empty()) failed = std::string("stream capture failed: ") + cudaGetErrorString(ec);
    if (!failed.empty()) {
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();  // the capture error is not sticky; clear it
      if (!lib) throw Error("tuning: " + failed);
      *why = "not capturable into a CUDA graph: " + failed;
      return nullptr;
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t ei = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    check(ei, "cudaGraphInstantiate (tuning)");
    return exec;
  };
  // Median of `runs` timed launches of exec (after one warm-up), in microseconds.
  auto time_graph = [&](cudaGraphExec_t exec, int runs) {
    std::vector<double> us;
    try {
      check(cudaGraphLaunch(exec, s), "cudaGraphLaunch (tuning)");
      for (int r = 0; r < runs; ++r) {
        check(cudaEventRecord(e0, s), "cudaEventRecord");
        check(cudaGraphLaunch(exec, s), "cudaGraphLaunch (tuning)");
        check(cudaEventRecord(e1, s), "cudaEventRecord");
        check(cudaEventSynchronize(e1), "cudaEventSynchronize");
        float ms = 0;
        check(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
        us.push_back(ms * 1000.0);
      }
    } catch (...) {
      cudaGraphExecDestroy(exec);
      throw;
    }
    std::sort(us.begin(), us.end());
    return us[us.size() / 2];
  };
  cudaGraphExec_t one = capture(1);
  if (!one) return std::nullopt;
  const double single = time_graph(one, 3);
  cudaGraphExecDestroy(one);
  const int reps = single < 25.0 ? 8 : single < 200.0 ? std::max(1, static_cast<int>(200.0 / single)) : 1;
  cudaGraphExec_t exec = capture(reps);
  if (!exec) return std::nullopt;
  const double us = time_graph(exec, 9);
  cudaGraphExecDestroy(exec);
  return us / reps;
}


namespace {

// A pair of layers i - 1 and i that can run as one kernel (layer i with a fused tactic): the
// fused tactic among `cands` that measures faster than the two layers' chosen tactics one after
// the other, or 0 (apart). Cached under `key`; fills lt and, when timed, *log ("apart A (a + b)
// us, tactic T us ...").
int choose_fused(EnginePlan& p, DeviceContext& ctx, TimingCache& cache, const std::string& key, size_t i,
                 const std::vector<int>& cands, cudaEvent_t e0, cudaEvent_t e1, LayerTiming& lt, std::string* log) {
  int chosen = 0;
  if (cache.lookup(key, &chosen) && (chosen == 0 || std::find(cands.begin(), cands.end(), chosen) != cands.end())) {
    lt.from_cache = true;
    cache.hits++;
    return chosen;
  }
  cache.misses++;
  std::string why;
  const auto ta = time_tactic(ctx, i - 1, p.max_batch, p.layers[i - 1].tactic, e0, e1, &why);
  const auto tb = time_tactic(ctx, i, p.max_batch, p.layers[i].tactic, e0, e1, &why);
  if (!ta || !tb) throw Error("tuning: layer '" + p.layers[i].name + "': its chosen tactic failed when timed again: " + why);
  double best = *ta + *tb;
  lt.tactic_us.emplace_back(0, best);
  char buf[96];
  std::snprintf(buf, sizeof buf, "apart %.2f (%.2f + %.2f) us,", best, *ta, *tb);
  *log = buf;
  chosen = 0;
  for (int t : cands) {
    const auto us = time_tactic(ctx, i, p.max_batch, t, e0, e1, &why);
    lt.tactic_us.emplace_back(t, *us);  // PoseRT's own kernels always time (or throw)
    std::snprintf(buf, sizeof buf, " %s %.2f", conv_tactic_label(t).c_str(), *us);
    *log += buf;
    if (*us < best) best = *us, chosen = t;
  }
  *log += std::string(" us -> ") + (chosen ? conv_tactic_label(chosen) : "apart");
  cache.store(key, chosen, best);
  return chosen;
}

// Depthwise + pointwise pairs (dwpw_pair_possible), after every layer has its own tactic: the pair
// runs as one kernel (kDwFused + kConvDwPw*) where the fused kernel measures faster than the two
// chosen kernels one after the other. Cached under the pair's key: the fused tactic, or 0 (apart).
void tune_dwpw_pairs(EnginePlan& p, DeviceContext& ctx, TimingCache& cache, const BuildTarget& target, int driver,
                     cudaEvent_t e0, cudaEvent_t e1, std::vector<LayerTiming>& report, bool log_timings) {
  for (size_t i = 1; i < p.layers.size(); ++i) {
    if (!dwpw_pair_possible(p, i)) continue;
    PlanLayer& dw = p.layers[i - 1];
    PlanLayer& pw = p.layers[i];
    const ConvParams dcp = conv_params(p, dw, p.max_batch), pcp = conv_params(p, pw, p.max_batch);
    std::vector<int> cands;
    for (int t : {kConvDwPw64, kConvDwPw16})
      if (dwpw_applies(t, dcp, pcp, true)) cands.push_back(t);
    if (cands.empty()) continue;
    LayerTiming lt;
    lt.layer = dw.name + " + " + pw.name;
    const std::string key = "dw+pw|" + layer_key(p, dw, target, driver) + "||" + layer_key(p, pw, target, driver);
    std::string log;
    const int chosen = choose_fused(p, ctx, cache, key, i, cands, e0, e1, lt, &log);
    if (log_timings && !log.empty())
      std::fprintf(stderr, "dw+pw pair %zu (c %d -> %d, %dx%d, batch %d): %s\n", i, dcp.c, pcp.o, dcp.oh, dcp.ow, p.max_batch,
                   log.c_str());
    lt.chosen = chosen;
    if (chosen) {
      dw.tactic = kDwFused;
      pw.tactic = chosen;
    }
    report.push_back(lt);
  }
}

// time_tactic for a tactic of PoseRT's own (or one already chosen), which must time: microseconds.
double time_own(const EnginePlan& p, DeviceContext& ctx, size_t i, int t, cudaEvent_t e0, cudaEvent_t e1) {
  std::string why;
  const auto us = time_tactic(ctx, i, p.max_batch, t, e0, e1, &why);
  if (!us) throw Error("tuning: layer '" + p.layers[i].name + "': tactic " + std::to_string(t) + " failed: " + why);
  return *us;
}

// A yes/no fusion decision cached under `key` (1 fused, 0 apart): taken from the cache, or timed by
// `time_both`, which returns {apart, fused} in microseconds and leaves the plan's tactics as it
// found them. Fills lt's cache flag and timings (fused as `fused_tactic`); true: fuse.
template <class TimeBoth>
bool fuse_or_not(TimingCache& cache, const std::string& key, int fused_tactic, LayerTiming& lt, TimeBoth time_both) {
  int chosen = 0;
  if (cache.lookup(key, &chosen) && (chosen == 0 || chosen == 1)) {
    lt.from_cache = true;
    cache.hits++;
    return chosen != 0;
  }
  cache.misses++;
  const auto [apart, fused] = time_both();
  lt.tactic_us = {{0, apart}, {fused_tactic, fused}};
  cache.store(key, fused < apart, std::min(apart, fused));
  return fused < apart;
}

// 1x1 expansion + depthwise pairs (pwdw_pair_possible), after the depthwise + pointwise pairs: the
// depthwise layer computes the expansion (kConvPwDwMember + kDwPwDw) where that measures faster
// than the two layers' kernels. A depthwise layer already fused into the 1x1 convolution after it
// can be in one pair only, so there the two ways are compared whole: the expansion then the dw+pw
// kernel, against pw+dw then that convolution with its own tactic (own: every layer's tactic
// before any pair was fused). Cached under the pair's key (with the other pair's when there is
// one): 1 fused, 0 not.
void tune_pwdw_pairs(EnginePlan& p, const std::vector<int>& own, DeviceContext& ctx, TimingCache& cache,
                     const BuildTarget& target, int driver, cudaEvent_t e0, cudaEvent_t e1, std::vector<LayerTiming>& report,
                     bool log_timings) {
  for (size_t i = 1; i < p.layers.size(); ++i) {
    if (!pwdw_pair_possible(p, i)) continue;
    PlanLayer& e = p.layers[i - 1];
    PlanLayer& d = p.layers[i];
    if (e.tactic != own[i - 1]) continue;  // the 1x1 layer is fused with something else already
    const ConvParams ecp = conv_params(p, e, p.max_batch), dcp = conv_params(p, d, p.max_batch);
    if (!pwdw_offered(ecp, dcp, true)) continue;
    const bool in_pair = d.tactic == kDwFused;  // computed by the dw+pw kernel of layer i + 1
    const int d_before = d.tactic, next_before = in_pair ? p.layers[i + 1].tactic : 0;
    std::string key = "pw+dw|" + layer_key(p, e, target, driver) + "@" + std::to_string(e.tactic) + "||" +
                      layer_key(p, d, target, driver) + "@" + std::to_string(d.tactic);
    if (in_pair)
      key += "||" + layer_key(p, p.layers[i + 1], target, driver) + "@" + std::to_string(next_before) + "/" +
             std::to_string(own[i + 1]);
    auto set_fused = [&](bool fuse) {
      e.tactic = fuse ? kConvPwDwMember : own[i - 1];
      d.tactic = fuse ? kDwPwDw : d_before;
      if (in_pair) p.layers[i + 1].tactic = fuse ? own[i + 1] : next_before;
    };
    LayerTiming lt;
    lt.layer = e.name + " + " + d.name;
    const bool chosen = fuse_or_not(cache, key, kDwPwDw, lt, [&] {
      auto time = [&](size_t k, int t) { return time_own(p, ctx, k, t, e0, e1); };
      const double te = time(i - 1, e.tactic), td = in_pair ? time(i + 1, next_before) : time(i, d.tactic);
      set_fused(true);
      const double tf = time(i, kDwPwDw), tn = in_pair ? time(i + 1, own[i + 1]) : 0.0;
      set_fused(false);
      if (log_timings)
        std::fprintf(stderr, "pw+dw pair %zu (c %d -> %d, %dx%d s%d, batch %d): apart %.2f (%.2f + %.2f%s) us, pw+dw %.2f%s us -> %s\n",
                     i, ecp.c, ecp.o, ecp.h, ecp.w, dcp.sh, p.max_batch, te + td, te, td, in_pair ? " as dw+pw" : "", tf + tn,
                     in_pair ? (" (" + std::to_string(tf) + " + " + std::to_string(tn) + ")").c_str() : "",
                     tf + tn < te + td ? "pw+dw" : "apart");
      return std::pair{te + td, tf + tn};
    });
    set_fused(chosen);
    lt.chosen = chosen ? kDwPwDw : 0;
    report.push_back(lt);
  }
}

// Head branches (dwpwpw_possible), after the pairs: the last 1x1 layer computes the depthwise
// layer and the middle 1x1 layer too (kDwFused + kConvPwPwMember + kConvDwPwPw) where that
// measures faster than the three as chosen so far (the first two possibly one dw+pw kernel).
// Cached under the three layers' keys and tactics: 1 fused, 0 not.
// A fused head branch: its last layer i, and the depthwise and middle layers' tactics before.
struct FusedHead {
  size_t i;
  int d_before, m_before;
};

std::vector<FusedHead> tune_heads(EnginePlan& p, const std::vector<int>& own, DeviceContext& ctx, TimingCache& cache,
                                  const BuildTarget& target, int driver, cudaEvent_t e0, cudaEvent_t e1,
                                  std::vector<LayerTiming>& report, bool log_timings) {
  std::vector<FusedHead> fused_heads;
  for (size_t i = 0; i < p.layers.size(); ++i) {
    if (!dwpwpw_possible(p, i)) continue;
    const size_t k = dwpwpw_middle(p, i);
    PlanLayer& l = p.layers[i];
    PlanLayer& m = p.layers[k];
    PlanLayer& d = p.layers[k - 1];
    if (l.tactic != own[i] || d.tactic == kDwPwDw) continue;  // fused with something else already
    const ConvParams dcp = conv_params(p, d, p.max_batch), mcp = conv_params(p, m, p.max_batch), lcp = conv_params(p, l, p.max_batch);
    if (!dwpwpw_applies(dcp, mcp, lcp)) continue;
    const bool pair = d.tactic == kDwFused;  // the depthwise and middle layers already one dw+pw kernel
    const int d_before = d.tactic, m_before = m.tactic;
    // "v2": the kernel chains its two 1x1 layers in registers (heads-regs); decisions timed with the
    // shared-memory version are not reused.
    std::string key = "dw+pw+pw:v2|" + layer_key(p, d, target, driver) + "@" + std::to_string(d.tactic) + "||" +
                      layer_key(p, m, target, driver) + "@" + std::to_string(m.tactic) + "||" + layer_key(p, l, target, driver) +
                      "@" + std::to_string(l.tactic);
    auto set_fused = [&](bool fuse) {
      d.tactic = fuse ? kDwFused : d_before;
      m.tactic = fuse ? kConvPwPwMember : m_before;
      l.tactic = fuse ? kConvDwPwPw : own[i];
    };
    LayerTiming lt;
    lt.layer = d.name + " + " + m.name + " + " + l.name;
    const bool chosen = fuse_or_not(cache, key, kConvDwPwPw, lt, [&] {
      auto time = [&](size_t j, int t) { return time_own(p, ctx, j, t, e0, e1); };
      const double first = pair ? time(k, m.tactic) : time(k - 1, d.tactic) + time(k, m.tactic);
      const double last = time(i, l.tactic);
      set_fused(true);
      const double fused = time(i, kConvDwPwPw);
      set_fused(false);
      if (log_timings)
        std::fprintf(stderr, "head branch %zu (%d -> %d -> %d, %dx%d, batch %d): apart %.2f (%.2f%s + %.2f) us, dw+pw+pw %.2f us -> %s\n", i,
                     dcp.c, mcp.o, lcp.o, dcp.oh, dcp.ow, p.max_batch, first + last, first, pair ? " as dw+pw" : "", last, fused,
                     fused < first + last ? "dw+pw+pw" : "apart");
      return std::pair{first + last, fused};
    });
    set_fused(chosen);
    if (chosen) fused_heads.push_back({i, d_before, m_before});
    lt.chosen = chosen ? kConvDwPwPw : 0;
    report.push_back(lt);
  }
  return fused_heads;
}

// Horizontal groups (candidate_groups): one launch for the group where it measures faster than
// its layers' chosen kernels one after the other. A dw+pw group needs every pair fused as
// dw+pw16x32 (the kernel it groups); a 1x1 group may run as wmma64x64 or pw16x32 tiles (the
// faster). Cached under the group's key: the leader tactic, or 0.
// lo, hi: only the groups whose layers all lie in [lo, hi] and are not grouped yet.
void tune_groups(EnginePlan& p, DeviceContext& ctx, TimingCache& cache, const BuildTarget& target, int driver,
                 cudaEvent_t e0, cudaEvent_t e1, std::vector<LayerTiming>& report, bool log_timings, size_t lo = 0,
                 size_t hi = SIZE_MAX) {
  for (const auto& [kind, m] : candidate_groups(p)) {
    const bool dwpw = kind == GroupKind::DwPw;
    bool inside = true;
    for (size_t k : m)
      inside = inside && k - (dwpw ? 1 : 0) >= lo && k <= hi && !is_group_leader_tactic(p.layers[k].tactic) &&
               p.layers[k].tactic != kConvGroupMember;
    if (!inside) continue;
    std::vector<ConvParams> ds, ps;
    bool ready = true;
    for (size_t k : m) {
      ready = ready && (!dwpw || p.layers[k].tactic == kConvDwPw16) && p.layers[k].tactic != kConvPwDwMember;
      ps.push_back(conv_params(p, p.layers[k], p.max_batch));
      if (dwpw) ds.push_back(conv_params(p, p.layers[k - 1], p.max_batch));
    }
    const int n = static_cast<int>(m.size());
    std::vector<int> leads;
    if (!ready) continue;
    // 1x1 members that compute head branches group only as such, all of them or none.
    int heads = 0;
    for (size_t k : m) heads += p.layers[k].tactic == kConvDwPwPw;
    if (heads > 0) {
      if (dwpw || heads != n) continue;
      std::vector<DwPwPwArgs> ha;
      for (size_t k : m) {
        const size_t mid = dwpwpw_middle(p, k);
        DwPwPwArgs q{};
        q.d = conv_params(p, p.layers[mid - 1], p.max_batch);
        q.p1 = conv_params(p, p.layers[mid], p.max_batch);
        q.p2 = conv_params(p, p.layers[k], p.max_batch);
        ha.push_back(q);
      }
      if (dwpwpw_group_applies(ha.data(), n)) leads.push_back(kConvGroupDwPwPw);
    } else if (dwpw) {
      if (dw_pw_group_applies(ds.data(), ps.data(), n)) leads.push_back(kConvGroupDwPw16);
    } else {
      for (int t : {kConvGroupWmma, kConvGroupPw16})
        if (conv1x1_group_applies(t, ps.data(), n)) leads.push_back(t);
    }
    if (leads.empty()) continue;
    std::string key = dwpw ? "group:dw+pw" : "group:1x1";
    std::vector<int> before;
    for (size_t k : m) {
      key += "||";
      key += layer_key(p, p.layers[k], target, driver);
      key += '@';
      key += std::to_string(p.layers[k].tactic);
      before.push_back(p.layers[k].tactic);
    }
    LayerTiming lt;
    lt.layer = "group of " + std::to_string(n) + " from " + p.layers[m[0]].name;
    auto set_grouped = [&](int lead) {
      for (size_t k = 0; k < m.size(); ++k) p.layers[m[k]].tactic = lead ? (k == 0 ? lead : kConvGroupMember) : before[k];
    };
    int chosen = 0;
    if (cache.lookup(key, &chosen) && (chosen == 0 || std::find(leads.begin(), leads.end(), chosen) != leads.end())) {
      lt.from_cache = true;
      cache.hits++;
    } else {
      cache.misses++;
      chosen = 0;
      std::string why;
      double apart = 0;
      for (size_t k : m) {
        const auto us = time_tactic(ctx, k, p.max_batch, p.layers[k].tactic, e0, e1, &why);
        if (!us) throw Error("tuning: layer '" + p.layers[k].name + "': its chosen tactic failed when timed again: " + why);
        apart += *us;
      }
      lt.tactic_us = {{0, apart}};
      double best = apart;
      std::string timed;
      for (int lead : leads) {
        set_grouped(lead);
        const auto grouped = time_tactic(ctx, m[0], p.max_batch, lead, e0, e1, &why);  // PoseRT's own kernel: times or throws
        lt.tactic_us.emplace_back(lead, *grouped);
        char buf[96];
        std::snprintf(buf, sizeof buf, ", %s %.2f us", conv_tactic_label(lead).c_str(), *grouped);
        timed += buf;
        if (*grouped < best) best = *grouped, chosen = lead;
      }
      cache.store(key, chosen, best);
      if (log_timings)
        std::fprintf(stderr, "group of %d from layer %zu (%s, batch %d): apart %.2f us%s -> %s\n", n, m[0],
                     dwpw ? "dw+pw pairs" : "1x1 convolutions", p.max_batch, apart, timed.c_str(),
                     chosen ? conv_tactic_label(chosen).c_str() : "apart");
    }
    set_grouped(chosen);
    lt.chosen = chosen;
    report.push_back(lt);
  }
}

// Head branches fused one at a time (tune_heads) can cost more or save less than the per-branch
// timings say: a horizontal group needs all its members alike, so where some branches of the
// heads are fused and others not, the groups their layers would form (tune_groups) do not, and
// where each branch alone is a little faster apart, all of them fused and launched as one
// dw+pw+pw group may still be faster. So where not every branch a group could take is fused,
// the heads' layers are timed (each launch as chosen) up to three ways: as tuned (0), no branch
// fused with the groups tuned (1, where some are fused), and every branch fused with the groups
// tuned (2, where some are not and all can be). Thunder at batch 1: one branch fused saved 0.8 us
// and kept both groups of four (12.7 us) from forming; another tuning ended with no branch
// fused, and that whole pass ran 0.012 ms slower than one with all four fused and grouped.
// Cached under the heads' layers and their tactics: 0, 1 or 2.
void revisit_heads(EnginePlan& p, const std::vector<int>& own, const std::vector<FusedHead>& fused, DeviceContext& ctx,
                   TimingCache& cache, const BuildTarget& target, int driver, cudaEvent_t e0, cudaEvent_t e1,
                   std::vector<LayerTiming>& report, bool log_timings) {
  // Only the branches a group could take: the last layer in a 1x1 group, or the middle one in a
  // dw+pw group (MobileNetV2's own dw -> 1x1 -> 1x1 sequences match the branch pattern too).
  std::vector<bool> in_group(p.layers.size(), false);
  for (const auto& [kind, m] : candidate_groups(p))
    for (size_t k : m) in_group[k] = true;
  auto relevant = [&](size_t i) { return in_group[i] || in_group[dwpwpw_middle(p, i)]; };
  size_t lo = SIZE_MAX, hi = 0;
  std::vector<size_t> branches;  // the last layers of the relevant branches
  size_t n_fused = 0;
  for (size_t i = 0; i < p.layers.size(); ++i) {
    if (!dwpwpw_possible(p, i) || !relevant(i)) continue;
    lo = std::min(lo, dwpwpw_middle(p, i) - 1);
    hi = std::max(hi, i);
    branches.push_back(i);
    n_fused += dwpwpw_fused(p, i);
  }
  if (branches.empty() || n_fused == branches.size() || lo > hi) return;
  std::string key = "heads-vs-groups:v3";  // v3: the all-fused way added (v2: see dw+pw+pw:v2 above)
  for (size_t j = lo; j <= hi; ++j) key += "||" + layer_key(p, p.layers[j], target, driver) + "@" + std::to_string(p.layers[j].tactic);
  auto region_us = [&] {
    double us = 0;
    for (size_t j = lo; j <= hi; ++j)
      if (!launches_nothing(p.layers[j].op, p.layers[j].tactic)) us += time_own(p, ctx, j, p.layers[j].tactic, e0, e1);
    return us;
  };
  std::vector<int> saved;
  for (const auto& l : p.layers) saved.push_back(l.tactic);
  auto restore = [&] {
    for (size_t j = 0; j < p.layers.size(); ++j) p.layers[j].tactic = saved[j];
  };
  auto unfuse_and_group = [&](std::vector<LayerTiming>& rep) {
    for (const FusedHead& h : fused) {
      if (!relevant(h.i)) continue;
      const size_t k = dwpwpw_middle(p, h.i);
      p.layers[k - 1].tactic = h.d_before;
      p.layers[k].tactic = h.m_before;
      p.layers[h.i].tactic = own[h.i];
    }
    tune_groups(p, ctx, cache, target, driver, e0, e1, rep, log_timings, lo, hi);
  };
  // Way 2 is possible when every relevant branch can take the dw+pw+pw kernel and no layer in
  // [lo, hi] outside those branches is part of a horizontal group (re-tactic-ing a group's
  // members would leave its launch broken).
  const bool all_possible = [&] {
    std::vector<bool> mine(p.layers.size(), false);
    for (size_t i : branches) {
      const size_t k = dwpwpw_middle(p, i);
      const PlanLayer &d = p.layers[k - 1], &m = p.layers[k], &l = p.layers[i];
      // Fused with something other than its own branch or a group (tune_heads' test, with the
      // groups allowed, since way 2 re-tunes them): the depthwise layer computing a 1x1 expansion
      // before it, or a 1x1 layer that is another pair's member.
      const bool l_free = l.tactic == own[i] || l.tactic == kConvDwPwPw || is_group_leader_tactic(l.tactic) ||
                          l.tactic == kConvGroupMember;
      const bool m_free = m.tactic != kConvPwDwMember;
      if (d.tactic == kDwPwDw || !l_free || !m_free ||
          !dwpwpw_applies(conv_params(p, d, p.max_batch), conv_params(p, m, p.max_batch), conv_params(p, l, p.max_batch)))
        return false;
      mine[k - 1] = mine[k] = mine[i] = true;
    }
    for (size_t j = lo; j <= hi; ++j)
      if (!mine[j] && p.layers[j].op == OpKind::Conv2D &&
          (is_group_leader_tactic(p.layers[j].tactic) || p.layers[j].tactic == kConvGroupMember))
        return false;
    return true;
  }();
  auto fuse_all_and_group = [&](std::vector<LayerTiming>& rep) {
    for (size_t i : branches) {
      const size_t k = dwpwpw_middle(p, i);
      p.layers[k - 1].tactic = kDwFused;
      p.layers[k].tactic = kConvPwPwMember;
      p.layers[i].tactic = kConvDwPwPw;
    }
    tune_groups(p, ctx, cache, target, driver, e0, e1, rep, log_timings, lo, hi);
  };
  auto apply = [&](int way, std::vector<LayerTiming>& rep) {
    restore();
    if (way == 1) unfuse_and_group(rep);
    if (way == 2) fuse_all_and_group(rep);
  };
  const bool way1 = n_fused > 0, way2 = all_possible;
  if (!way1 && !way2) return;
  LayerTiming lt;
  lt.layer = "head branches " + p.layers[lo].name + " .. " + p.layers[hi].name +
             ": as tuned (0), none fused and grouped (1) or all fused and grouped (2)";
  int chosen = 0;
  if (cache.lookup(key, &chosen) && (chosen == 0 || (chosen == 1 && way1) || (chosen == 2 && way2))) {
    lt.from_cache = true;
    cache.hits++;
    apply(chosen, report);
  } else {
    cache.misses++;
    const double tuned = region_us();
    lt.tactic_us = {{0, tuned}};
    double best = tuned;
    chosen = 0;
    std::string timed;
    std::vector<LayerTiming> trials;  // the groups' timings of the ways tried: reported once, below
    for (int way : {1, 2}) {
      if ((way == 1 && !way1) || (way == 2 && !way2)) continue;
      apply(way, trials);
      const double us = region_us();
      lt.tactic_us.emplace_back(way, us);
      char buf[64];
      std::snprintf(buf, sizeof buf, ", %s %.2f us", way == 1 ? "none fused and grouped" : "all fused and grouped", us);
      timed += buf;
      if (us < best) best = us, chosen = way;
    }
    // The chosen way again; its groups' decisions are cached now, and are not counted twice.
    std::vector<LayerTiming> again;
    const int hits = cache.hits, misses = cache.misses;
    apply(chosen, again);
    cache.hits = hits;
    cache.misses = misses;
    report.insert(report.end(), trials.begin(), trials.end());
    cache.store(key, chosen, best);
    if (log_timings)
      std::fprintf(stderr, "head branches, layers %zu..%zu (%zu of %zu fused, batch %d): as tuned %.2f us%s -> %s\n", lo, hi,
                   n_fused, branches.size(), p.max_batch, tuned, timed.c_str(),
                   chosen == 0 ? "as tuned" : chosen == 1 ? "none fused" : "all fused");
  }
  lt.chosen = chosen;
  report.push_back(lt);
}

// Elementwise chain + convolution pairs (chain_conv_possible), last (a convolution already fused
// or grouped keeps that): the convolution applies the chain to what it loads (kChainFused +
// kConvChainDirect8Smem or kConvChainMma3x3) where that measures faster than the chain's kernel and the
// convolution's chosen kernel one after the other. Cached under the pair's key: the fused
// tactic, or 0 (apart).
void tune_chain_convs(EnginePlan& p, const std::vector<int>& own, DeviceContext& ctx, TimingCache& cache,
                      const BuildTarget& target, int driver, cudaEvent_t e0, cudaEvent_t e1, std::vector<LayerTiming>& report, bool log_timings) {
  for (size_t i = 1; i < p.layers.size(); ++i) {
    if (!chain_conv_possible(p, i)) continue;
    PlanLayer& ch = p.layers[i - 1];
    PlanLayer& cv = p.layers[i];
    if (cv.tactic != own[i] || ch.tactic != kChainKernel) continue;  // the convolution is fused with something else
    const ConvParams cp = conv_params(p, cv, p.max_batch);
    const DType16 xt = dtype16(p.tensors[ch.inputs[0]].storage);
    std::vector<int> cands;
    if (chain_conv_applies(cp, xt)) cands.push_back(kConvChainDirect8Smem);
    if (mma3x3_applies(cp, p.tensors[cv.inputs[0]].storage == Storage::F16)) cands.push_back(kConvChainMma3x3);
    if (cands.empty()) continue;
    LayerTiming lt;
    lt.layer = ch.name + " + " + cv.name;
    const std::string key = "chain+conv|" + layer_key(p, ch, target, driver) + "||" + layer_key(p, cv, target, driver) + "@" +
                            std::to_string(own[i]);
    std::string log;
    const int chosen = choose_fused(p, ctx, cache, key, i, cands, e0, e1, lt, &log);
    if (log_timings && !log.empty())
      std::fprintf(stderr, "chain+conv pair %zu (%dx%dx%d -> %d, batch %d): %s\n", i, cp.h, cp.w, cp.c, cp.o, p.max_batch,
                   log.c_str());
    lt.chosen = chosen;
    if (chosen) {
      ch.tactic = kChainFused;
      cv.tactic = chosen;
    }
    report.push_back(lt);
  }
}

// MobileNetV2 stems (stem_possible), after everything else: the 1x1 layer computes the first
// convolution and the depthwise layer too (kConvStemMember + kDwFused + kConvStemDwPw) where that
// measures faster than the layers as chosen so far (the depthwise and 1x1 layers possibly one dw+pw
// kernel, the first convolution possibly computing the elementwise chain before it; the stem kernel
// reads the chain's output, so there the chain runs alone again). A 1x1 layer in a horizontal group
// or computed by another kernel keeps that. Cached under the layers' keys and tactics: 1 fused, 0 not.
void tune_stems(EnginePlan& p, DeviceContext& ctx, TimingCache& cache, const BuildTarget& target, int driver, cudaEvent_t e0,
                cudaEvent_t e1, std::vector<LayerTiming>& report, bool log_timings) {
  for (size_t i = 2; i < p.layers.size(); ++i) {
    if (!stem_possible(p, i)) continue;
    PlanLayer& cv = p.layers[i - 2];
    PlanLayer& dw = p.layers[i - 1];
    PlanLayer& pw = p.layers[i];
    // A 1x1 layer that another kernel computes (a group member, the middle of a fused head branch
    // whose last layer reads the depthwise input, an expansion) or that leads a group keeps that.
    if (launches_nothing(OpKind::Conv2D, pw.tactic) || is_group_leader_tactic(pw.tactic)) continue;
    const ConvParams c = conv_params(p, cv, p.max_batch), d = conv_params(p, dw, p.max_batch), q = conv_params(p, pw, p.max_batch);
    if (!stem_applies(c, d, q, true)) continue;
    const bool chain = chain_fused(p, i - 2);
    const size_t lo = chain ? i - 3 : i - 2;
    std::vector<int> before;
    for (size_t k = lo; k <= i; ++k) before.push_back(p.layers[k].tactic);
    // "v2": the stem kernel's depthwise phase moved to the tensor cores (e298e8d); decisions cached
    // for the CUDA-core version (never fused on MoveNet) are not reused.
    std::string key = "stem:v2";
    for (size_t k = lo; k <= i; ++k) {
      key += '|';
      key += layer_key(p, p.layers[k], target, driver);
      key += '@';
      key += std::to_string(p.layers[k].tactic);
    }
    auto set_fused = [&](bool fuse) {
      if (!fuse) {
        for (size_t k = lo; k <= i; ++k) p.layers[k].tactic = before[k - lo];
        return;
      }
      if (chain) p.layers[i - 3].tactic = kChainKernel;
      cv.tactic = kConvStemMember;
      dw.tactic = kDwFused;
      pw.tactic = kConvStemDwPw;
    };
    LayerTiming lt;
    lt.layer = cv.name + " + " + dw.name + " + " + pw.name;
    const bool chosen = fuse_or_not(cache, key, kConvStemDwPw, lt, [&] {
      double apart = 0.0;
      std::string parts;
      for (size_t k = lo; k <= i; ++k) {
        const PlanLayer& l = p.layers[k];
        if (launches_nothing(l.op, l.tactic)) continue;
        const double us = time_own(p, ctx, k, l.tactic, e0, e1);
        apart += us;
        char buf[48];
        std::snprintf(buf, sizeof buf, "%s%.2f", parts.empty() ? "" : " + ", us);
        parts += buf;
      }
      set_fused(true);
      const double tc = chain ? time_own(p, ctx, i - 3, kChainKernel, e0, e1) : 0.0;
      const double ts = time_own(p, ctx, i, kConvStemDwPw, e0, e1);
      set_fused(false);
      if (log_timings) {
        char with_chain[48] = "";
        if (chain) std::snprintf(with_chain, sizeof with_chain, "chain %.2f + ", tc);
        std::fprintf(stderr, "stem %zu (%dx%dx3 -> %d -> %d, %dx%d, batch %d): as tuned %.2f (%s) us, %sconv+dw+pw %.2f us -> %s\n", i,
                     c.h, c.w, c.o, q.o, q.oh, q.ow, p.max_batch, apart, parts.c_str(), with_chain, ts,
                     tc + ts < apart ? "conv+dw+pw" : "as tuned");
      }
      return std::pair{apart, tc + ts};
    });
    set_fused(chosen);
    lt.chosen = chosen ? kConvStemDwPw : 0;
    report.push_back(lt);
  }
}

}  // namespace

void fill_random(const DeviceEngine& engine, DeviceContext& ctx, unsigned seed) {
  const EnginePlan& p = engine.plan();
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (size_t t = 0; t < p.tensors.size(); ++t) {
    const PlanTensor& pt = p.tensors[t];
    if (pt.kind == TensorKind::Weight) continue;
    const int64_t n = pt.bytes / static_cast<int64_t>(storage_size(pt.storage));
    std::vector<uint8_t> host(static_cast<size_t>(pt.bytes));
    for (int64_t i = 0; i < n; ++i) {
      if (pt.storage == Storage::F32) {
        const float f = u(rng);
        std::memcpy(host.data() + 4 * i, &f, 4);
      } else if (pt.storage == Storage::F16) {
        const __half h = __float2half(u(rng));
        std::memcpy(host.data() + 2 * i, &h, 2);
      } else {
        const int32_t v = static_cast<int32_t>(rng() % 256);
        std::memcpy(host.data() + 4 * i, &v, 4);
      }
    }
    check(cudaMemcpy(ctx.tensor(static_cast<int>(t)), host.data(), host.size(), cudaMemcpyHostToDevice), "cudaMemcpy (random fill)");
  }
  // A pageable cudaMemcpy may return before its DMA lands; the context's stream is non-blocking.
  check(cudaDeviceSynchronize(), "cudaMemcpy (random fill)");
}

std::vector<LayerTiming> tune_engine(DeviceEngine& engine, TimingCache& cache, bool verbose) {
  EnginePlan& p = engine.mutable_plan();
  const bool log_timings = tune_log_from_env();  // checked before any work
  const BuildTarget target = current_target();
  int driver = 0;
  check(cudaDriverGetVersion(&driver), "cudaDriverGetVersion");
  // Both filter orders while candidates are timed; only the chosen ones at the end.
  engine.upload_weight_forms(true);
  std::vector<LayerTiming> report;
  {
    std::shared_ptr<const DeviceEngine> view(&engine, [](const DeviceEngine*) {});
    DeviceContext ctx(view);
    fill_random(engine, ctx, 1234);
    cudaEvent_t e0, e1;
    check(cudaEventCreate(&e0), "cudaEventCreate");
    check(cudaEventCreate(&e1), "cudaEventCreate");
    try {
      size_t convs = 0;
      for (const auto& l : p.layers) convs += (l.op == OpKind::Conv2D || l.op == OpKind::DepthwiseConv2D);
      size_t done = 0;
      for (size_t i = 0; i < p.layers.size(); ++i) {
        PlanLayer& l = p.layers[i];
        if (l.op != OpKind::Conv2D && l.op != OpKind::DepthwiseConv2D) continue;
        ++done;
        LayerTiming lt;
        lt.layer = l.name;
        const std::string key = layer_key(p, l, target, driver);
        int cached;
        const auto cands = candidates(p, l, ctx);
        if (cache.lookup(key, &cached) && std::find(cands.begin(), cands.end(), cached) != cands.end()) {
          l.tactic = cached;
          lt.chosen = cached;
          lt.from_cache = true;
          cache.hits++;
          report.push_back(lt);
          continue;
        }
        cache.misses++;
        double best = 1e30;
        for (int t : cands) {
          std::string why;
          const auto us = time_tactic(ctx, i, p.max_batch, t, e0, e1, &why);
          if (!us) {
            lt.skipped.emplace_back(t, why);
            continue;
          }
          lt.tactic_us.emplace_back(t, *us);
          best = std::min(best, *us);
        }
        // A second timing of the contenders (within 2x of the best), each keeping the faster of
        // its two: a transient slowdown of the GPU while one candidate was timed (seen: every
        // candidate of a layer 40-120% slower in one pass) then does not decide the layer.
        for (auto& [t, us] : lt.tactic_us) {
          if (us >= 2 * best) continue;
          std::string why;
          const auto again = time_tactic(ctx, i, p.max_batch, t, e0, e1, &why);
          if (again && *again < us) us = *again;
        }
        best = 1e30;
        for (const auto& [t, us] : lt.tactic_us)
          if (us < best) {
            best = us;
            lt.chosen = t;
          }
        l.tactic = lt.chosen;
        cache.store(key, lt.chosen, best);
        if (log_timings) {
          const ConvParams cp = conv_params(p, l, p.max_batch);
          std::string line;
          for (const auto& [t, us] : lt.tactic_us) {
            char buf[96];
            std::snprintf(buf, sizeof buf, " %s %.2f", l.op == OpKind::Conv2D ? conv_tactic_label(t).c_str() : dw_tactic_name(t), us);
            line += buf;
          }
          std::fprintf(stderr, "layer %zu %s (%dx%dx%d -> %d, k%dx%d s%d, batch %d):%s us -> %s\n", i, op_name(l.op), cp.h, cp.w,
                       cp.c, cp.o, cp.kh, cp.kw, cp.sh, p.max_batch, line.c_str(),
                       l.op == OpKind::Conv2D ? conv_tactic_label(l.tactic).c_str() : dw_tactic_name(l.tactic));
        }
        if (verbose && !log_timings) std::fprintf(stderr, "\rtuning layer %zu/%zu", done, convs);  // the log is progress enough
        report.push_back(lt);
      }
      if (verbose && !log_timings && convs) std::fprintf(stderr, "\n");
      std::vector<int> own;  // each layer's own tactic, before any pair is fused
      for (const auto& l : p.layers) own.push_back(l.tactic);
      tune_dwpw_pairs(p, ctx, cache, target, driver, e0, e1, report, log_timings);
      tune_pwdw_pairs(p, own, ctx, cache, target, driver, e0, e1, report, log_timings);
      const std::vector<FusedHead> heads = tune_heads(p, own, ctx, cache, target, driver, e0, e1, report, log_timings);
      tune_groups(p, ctx, cache, target, driver, e0, e1, report, log_timings);
      revisit_heads(p, own, heads, ctx, cache, target, driver, e0, e1, report, log_timings);
      tune_chain_convs(p, own, ctx, cache, target, driver, e0, e1, report, log_timings);
      tune_stems(p, ctx, cache, target, driver, e0, e1, report, log_timings);
      check(cudaDeviceSynchronize(), "tuning");
    } catch (...) {
      cudaEventDestroy(e0);
      cudaEventDestroy(e1);
      throw;
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
  }
  p.target.cudnn = uses_cudnn(p) ? target.cudnn : 0;
  // The arena again, now that the fusions are chosen: only those keep their inputs alive.
  assign_arena(p, ArenaFusions::Chosen);
  p.validate("tuned engine plan for " + p.model);
  engine.upload_weight_forms(false);
  return report;
}

}  // namespace posert::cuda
