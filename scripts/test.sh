#!/usr/bin/env bash
# README command 2: install dependencies, build, run every test (ctest), then the same suite
# under AddressSanitizer + UndefinedBehaviorSanitizer, then the libFuzzer targets (clang) for
# a fixed number of inputs. Used by .ci/run.
# STA_SKIP_SANITIZE=1 skips the sanitizer and fuzzing passes (a quicker local run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh chromium python3-torch  # torch: optional Python test dependency
bash scripts/build.sh
./build/sta theorems >/dev/null
(cd build && ctest --output-on-failure -j"$(nproc)")
if [ "${STA_SKIP_SANITIZE:-0}" != "1" ]; then
  echo "== the same tests under AddressSanitizer + UndefinedBehaviorSanitizer =="
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTA_SANITIZE=ON \
        -DSTA_BUILD_BENCH=OFF >/dev/null
  cmake --build build-asan -j"$(nproc)"
  echo "== libFuzzer targets (npy reader, mask-strategy reader, option parsers) =="
  bash scripts/fuzz.sh
  (cd build-asan && ctest --output-on-failure -j"$(nproc)")
fi
