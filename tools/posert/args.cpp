#include "args.h"

#include <cmath>

#include "posert/error.h"

namespace posert::cli {

Args::Args(int argc, char** argv, int first, const std::set<std::string>& value_flags,
           const std::set<std::string>& bool_flags) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() > 1 && a[0] == '-' && a != "-") {
      std::string val;
      bool inline_val = false;
      if (const auto eq = a.find('='); eq != std::string::npos) {
        val = a.substr(eq + 1);
        a = a.substr(0, eq);
        inline_val = true;
      }
      if (value_flags.count(a)) {
        if (!inline_val) {
          if (i + 1 >= argc) throw Error("option " + a + " needs a value", ErrorKind::Usage);
          val = argv[++i];
        }
        if (values_.count(a)) throw Error("option " + a + " is given twice", ErrorKind::Usage);
        values_[a] = val;
      } else if (bool_flags.count(a) && !inline_val) {
        bools_.insert(a);
      } else {
        throw Error("unknown option '" + a + "' (see --help)", ErrorKind::Usage);
      }
    } else {
      pos_.push_back(a);
    }
  }
}

std::optional<std::string> Args::get(const std::string& f) const {
  auto it = values_.find(f);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::get_or(const std::string& f, const std::string& def) const {
  auto v = get(f);
  return v ? *v : def;
}

float Args::get_float(const std::string& f, float def, float lo, float hi) const {
  auto v = get(f);
  if (!v) return def;
  try {
    size_t pos = 0;
    const float r = std::stof(*v, &pos);
    if (pos == v->size() && std::isfinite(r) && r >= lo && r <= hi) return r;
  } catch (...) {
  }
  throw Error("option " + f + " needs a number in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                  "], got '" + *v + "'",
              ErrorKind::Usage);
}

int Args::get_int(const std::string& f, int def, int lo, int hi) const {
  auto v = get(f);
  if (!v) return def;
  try {
    size_t pos = 0;
    const long r = std::stol(*v, &pos);
    if (pos == v->size() && r >= lo && r <= hi) return static_cast<int>(r);
  } catch (...) {
  }
  throw Error("option " + f + " needs an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                  "], got '" + *v + "'",
              ErrorKind::Usage);
}

void Args::allow_only(const std::set<std::string>& allowed, const std::string& what) const {
  for (const auto& [f, v] : values_)
    if (!allowed.count(f)) throw Error("option " + f + " does not apply to " + what + " (see --help)", ErrorKind::Usage);
  for (const auto& f : bools_)
    if (!allowed.count(f)) throw Error("option " + f + " does not apply to " + what + " (see --help)", ErrorKind::Usage);
}

}  // namespace posert::cli
