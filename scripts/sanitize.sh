#!/usr/bin/env bash
# sanitize.sh [CTEST_ARGS...]: the CPU backend and the tests built with AddressSanitizer and
# UndefinedBehaviorSanitizer in build-asan/ (CUDA off, so the GPU tests are not built), then ctest
# there. Run scripts/setup.sh first (packages, models, photos). Any sanitizer report fails the test
# that caused it. The fuzz tests take POSERT_FUZZ_ITERS / POSERT_FUZZ_SEED from the environment,
# e.g. POSERT_FUZZ_ITERS=2000 scripts/sanitize.sh -R 'Fuzz|RandomEdits'
# Slower than the plain build: on a 2-core machine (2026-12-07) the first sanitizer build took
# roughly half an hour, sharing the cores with other jobs, and the whole suite 441 s of ctest;
# CTEST_ARGS narrows it (-R REGEX).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ ! -f build-asan/build.ninja ] && [ ! -f build-asan/Makefile ]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  cmake -S . -B build-asan "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOSERT_ENABLE_CUDA=OFF \
    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
fi
cmake --build build-asan -j"$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" "$@"
