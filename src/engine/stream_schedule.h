// Multi-stream execution of an engine plan: which stream each layer runs on and which earlier
// layers it must wait for, so that independent branches (MoveNet's four head branches, for one)
// run concurrently inside the CUDA graph. The arena was planned for the layers' sequential order,
// so besides reading its inputs after their producers a layer also waits for every earlier layer
// that read or wrote arena bytes its outputs overwrite (and every earlier writer of bytes it reads).
#pragma once
#include <vector>

#include "engine/engine_plan.h"

namespace posert {

struct StreamSchedule {
  int streams = 1;                       // streams used (stream 0 is the context's own)
  std::vector<int> stream;               // per layer
  std::vector<std::vector<int>> waits;   // per layer: earlier layers on other streams to wait for
  std::vector<bool> signals;             // per layer: some later layer on another stream waits for it
  // Per stream other than 0: its last layer, which the context's stream waits for at the end.
  std::vector<int> last_on_stream;
};

// max_streams 1 gives every layer stream 0 and no waits. Layers for which serialize(layer) is true
// (those sharing one workspace, e.g. cuDNN's) are kept in their sequential order on stream 0.
template <class Serialize>
StreamSchedule schedule_streams(const EnginePlan& p, int max_streams, Serialize&& serialize);

}  // namespace posert

#include "engine/stream_schedule_impl.h"
