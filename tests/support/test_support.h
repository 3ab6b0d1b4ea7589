// Shared helpers for tests: where the models and test data are, and temporary directories.
#pragma once
#include <cstdlib>
#include <string>

namespace posert::test {

// Folder with the installed models (POSERT_MODELS or <source>/models).
std::string models_dir();
// True when <models_dir>/<name>.json exists; tests that need a model skip with a reason otherwise.
bool have_model(const std::string& name);
// Folder with the real test photos installed by scripts/setup.sh (<source>/data/photos).
std::string photos_dir();
std::string source_dir();
// A fresh empty temporary directory, removed at process exit.
std::string temp_dir();
// $name as a number in lo..hi (the fuzz tests' POSERT_FUZZ_ITERS / POSERT_FUZZ_SEED); def when
// unset or empty; anything else is a test failure, and def is used.
long env_number(const char* name, long def, long lo, long hi);

// Sets $name to value (nullptr: unsets it) for the object's scope, then restores what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) had_ = true, old_ = old;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_, old_.c_str(), 1);
    else unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

}  // namespace posert::test
