// Minimal command-line parsing for the posert subcommands: --flag value, --flag=value,
// boolean flags, and positional arguments. Unknown flags are usage errors.
#pragma once
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace posert::cli {

class Args {
 public:
  // value_flags take a value; bool_flags do not. Throws a usage Error on anything else.
  Args(int argc, char** argv, int first, const std::set<std::string>& value_flags,
       const std::set<std::string>& bool_flags);
  bool has(const std::string& f) const { return values_.count(f) || bools_.count(f); }
  std::optional<std::string> get(const std::string& f) const;
  std::string get_or(const std::string& f, const std::string& def) const;
  float get_float(const std::string& f, float def, float lo, float hi) const;
  int get_int(const std::string& f, int def, int lo, int hi) const;
  const std::vector<std::string>& positional() const { return pos_; }
  // Throws a usage Error naming the first option given that is not in `allowed` ("--precision
  // does not apply to <what>"): for commands whose modes take different options, so that an
  // option a mode would ignore is refused instead.
  void allow_only(const std::set<std::string>& allowed, const std::string& what) const;

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> bools_;
  std::vector<std::string> pos_;
};

}  // namespace posert::cli
