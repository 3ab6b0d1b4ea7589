// Template body of schedule_streams (stream_schedule.h).
#pragma once
#include <algorithm>

namespace posert {

template <class Serialize>
StreamSchedule schedule_streams(const EnginePlan& p, int max_streams, Serialize&& serialize) {
  const int n = static_cast<int>(p.layers.size());
  StreamSchedule s;
  s.stream.assign(n, 0);
  s.waits.assign(n, {});
  s.signals.assign(n, false);
  max_streams = std::max(1, max_streams);
  if (max_streams == 1) return s;  // everything on the context's stream, in order
  // Every layer's dependencies: producers of its inputs, and earlier layers touching the arena
  // bytes it writes (or writing the bytes it reads).
  auto overlap = [&](int a, int b) {
    const PlanTensor &x = p.tensors[a], &y = p.tensors[b];
    return x.offset < y.offset + y.bytes && y.offset < x.offset + x.bytes;
  };
  std::vector<std::vector<int>> deps(n);
  // What each layer's launch reads and writes: a fused pointwise layer also reads the depthwise
  // input, a group leader reads and writes for its whole group.
  std::vector<std::vector<int32_t>> reads(n), writes(n);
  for (int i = 0; i < n; ++i) {
    reads[i] = layer_reads(p, static_cast<size_t>(i));
    writes[i] = layer_writes(p, static_cast<size_t>(i));
  }
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < i; ++j) {
      bool dep = false;
      for (int ti : writes[i])
        for (int tj : writes[j]) dep = dep || overlap(ti, tj);  // write after write
      for (int ti : writes[i])
        for (int tj : reads[j]) dep = dep || overlap(ti, tj);  // write after read
      for (int ti : reads[i])
        for (int tj : writes[j]) dep = dep || overlap(ti, tj);  // read after write
      if (dep) deps[i].push_back(j);
    }
  }
  std::vector<int> last(max_streams, -1);  // last layer on each stream
  int prev_serial = -1;
  for (int i = 0; i < n; ++i) {
    int st = -1;
    if (serialize(p.layers[i])) {
      st = 0;
      if (prev_serial >= 0 && std::find(deps[i].begin(), deps[i].end(), prev_serial) == deps[i].end())
        deps[i].push_back(prev_serial);
      prev_serial = i;
    } else {
      // Continue the stream whose last layer this one depends on (the chain goes on); otherwise the
      // stream idle the longest.
      for (int j = static_cast<int>(deps[i].size()) - 1; j >= 0 && st < 0; --j) {
        const int d = deps[i][j];
        if (last[s.stream[d]] == d) st = s.stream[d];
      }
      if (st < 0) st = static_cast<int>(std::min_element(last.begin(), last.end()) - last.begin());
    }
    s.stream[i] = st;
    for (int d : deps[i])
      if (s.stream[d] != st) {
        s.waits[i].push_back(d);
        s.signals[d] = true;
      }
    last[st] = i;
    s.streams = std::max(s.streams, st + 1);
  }
  s.last_on_stream.assign(s.streams, -1);
  for (int k = 1; k < s.streams; ++k) {
    s.last_on_stream[k] = last[k];
    if (last[k] >= 0) s.signals[last[k]] = true;
  }
  return s;
}

}  // namespace posert
