#include "support/test_support.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

namespace fs = std::filesystem;

namespace posert::test {

std::string source_dir() { return POSERT_SOURCE_DIR; }

std::string models_dir() {
  if (const char* m = std::getenv("POSERT_MODELS"); m && *m) return m;
  return source_dir() + "/models";
}

bool have_model(const std::string& name) { return fs::exists(models_dir() + "/" + name + ".json"); }

long env_number(const char* name, long def, long lo, long hi) {
  const char* e = std::getenv(name);
  if (!e || !*e) return def;
  char* end = nullptr;
  const long v = std::strtol(e, &end, 10);
  if (*end != '\0' || v < lo || v > hi) {
    ADD_FAILURE() << name << "='" << e << "': expected a number " << lo << ".." << hi << "; using " << def;
    return def;
  }
  return v;
}

std::string photos_dir() { return source_dir() + "/data/photos"; }

namespace {
struct TempDirs {
  std::mutex mu;
  std::vector<fs::path> dirs;
  ~TempDirs() {
    std::error_code ec;
    for (auto& d : dirs) fs::remove_all(d, ec);
  }
};
TempDirs& temp_dirs() {
  static TempDirs t;
  return t;
}
}  // namespace

std::string temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "posert-test-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) std::abort();
  std::lock_guard<std::mutex> lock(temp_dirs().mu);
  temp_dirs().dirs.emplace_back(buf.data());
  return buf.data();
}

}  // namespace posert::test
