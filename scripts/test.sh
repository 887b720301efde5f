#!/usr/bin/env bash
# README command 2: install dependencies, build, run every test (ctest). Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
./build/sta theorems >/dev/null
cd build && ctest --output-on-failure -j"$(nproc)"
