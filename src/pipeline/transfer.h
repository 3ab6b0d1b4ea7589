// The GPU pipeline's transfer modes and their names, in plain C++ so that every build (with or
// without CUDA) validates `--transfer` and DetectorOptions::transfer the same way.
#pragma once
#include <string>

#include "posert/error.h"

namespace posert::cuda {

// How the frames reach the preprocessing kernel and the poses reach the host. Every mode stages
// the frames in the same pinned host buffer and gives the same poses bit for bit.
enum class Transfer : int {
  Copy = 0,      // async copies: the whole packed frames and the descriptors up, the pose records down
  MappedIn = 1,  // the preprocessing kernel reads only the frame rows it samples, in place in pinned
                 // memory (mapped), and the descriptors likewise; the pose records are copied down
  Mapped = 2,    // MappedIn, and the decoder writes the pose records straight into pinned memory
};

inline const char* transfer_name(Transfer t) {
  switch (t) {
    case Transfer::Copy: return "copy";
    case Transfer::MappedIn: return "mapped-in";
    case Transfer::Mapped: return "mapped";
  }
  return "?";
}

// "copy", "mapped-in" or "mapped"; throws a usage Error naming `what` otherwise.
inline Transfer parse_transfer(const std::string& s, const std::string& what) {
  for (Transfer t : {Transfer::Copy, Transfer::MappedIn, Transfer::Mapped})
    if (s == transfer_name(t)) return t;
  throw Error(what + " must be copy, mapped-in or mapped, got '" + s + "'", ErrorKind::Usage);
}

}  // namespace posert::cuda
