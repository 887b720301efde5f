#!/usr/bin/env bash
# Configures and builds into build/ (Release, portable: no -march=native). Extra arguments go
# to cmake's configure step, e.g. -DSTA_NATIVE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
