// Checks the top-three selects of branch s23-near-tie's one-pass search (src/pose/cuda/
// movenet_single.cu: E1 >= E2 >= E3 and the first two's cells, NaN estimates skipped) against a
// stable sort, on random rows with ties, NaN and infinities. The selects are copied here from the
// kernel: keep the two in step.
//   g++ -O2 -std=c++20 tools/dev/top3_selects_check.cpp -o /tmp/top3 && /tmp/top3
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <utility>
#include <vector>

int main() {
  std::mt19937 rng(5);
  long mismatches = 0;
  const long rows = 2000000;
  for (long t = 0; t < rows; ++t) {
    const int n = 1 + static_cast<int>(rng() % 12);
    std::vector<float> v(n);
    for (auto& x : v) {
      const unsigned r = static_cast<unsigned>(rng() % 100);
      x = r < 3    ? NAN
          : r < 5  ? INFINITY
          : r < 7  ? -INFINITY
          : r < 30 ? static_cast<float>(rng() % 4)
                   : std::ldexp(static_cast<float>(rng() % 1000), -static_cast<int>(rng() % 5));
    }
    float e1 = -HUGE_VALF, e2 = -HUGE_VALF, e3 = -HUGE_VALF;
    int c1 = 0, c2 = 0;
    for (int c = 0; c < n; ++c) {  // the kernel's selects
      const float est = v[c];
      const bool above1 = est > e1, above2 = est > e2;
      e3 = std::fmax(e3, above2 ? e2 : est);
      e2 = above1 ? e1 : (above2 ? est : e2);
      c2 = above1 ? c1 : (above2 ? c : c2);
      e1 = above1 ? est : e1;
      c1 = above1 ? c : c1;
    }
    std::vector<std::pair<float, int>> w;  // the non-NaN values, largest first, first cell on ties
    for (int c = 0; c < n; ++c)
      if (!std::isnan(v[c])) w.push_back({v[c], c});
    std::stable_sort(w.begin(), w.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    const float r1 = w.size() > 0 ? w[0].first : -HUGE_VALF, r2 = w.size() > 1 ? w[1].first : -HUGE_VALF,
                r3 = w.size() > 2 ? w[2].first : -HUGE_VALF;
    bool ok = e1 == r1 && e2 == r2 && e3 == r3;
    if (r1 > -HUGE_VALF) ok = ok && c1 == w[0].second;
    if (r2 > -HUGE_VALF) ok = ok && v[c2] == r2 && c2 != c1;
    if (!ok && ++mismatches <= 5) {
      std::printf("mismatch:");
      for (float x : v) std::printf(" %g", x);
      std::printf(" | %g %g %g, cells %d %d\n", e1, e2, e3, c1, c2);
    }
  }
  std::printf("%ld rows, %ld mismatches\n", rows, mismatches);
  return mismatches == 0 ? 0 : 1;
}
