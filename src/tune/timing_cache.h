// Timing cache: the tactic chosen for a layer signature on one GPU/driver/CUDA/cuDNN combination
// (the tuner's key names all four), kept in a small text file so rebuilding an engine does not
// re-time every layer.
#pragma once
#include <map>
#include <string>

namespace posert {

class TimingCache {
 public:
  // Loads `path` if it exists; a corrupt line is skipped with a warning on stderr. Empty path:
  // in-memory only.
  explicit TimingCache(std::string path);
  bool lookup(const std::string& key, int* tactic) const;
  void store(const std::string& key, int tactic, double us);
  void save() const;  // atomic; no-op for an in-memory cache
  size_t size() const { return entries_.size(); }
  int hits = 0, misses = 0;

 private:
  std::string path_;
  std::map<std::string, std::pair<int, double>> entries_;
};

}  // namespace posert
