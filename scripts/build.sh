#!/usr/bin/env bash
# Configures and builds into build/ (Release, portable: baseline x86-64). Extra arguments go
# to cmake's configure step, e.g. -DSTA_MARCH=native.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
