#!/usr/bin/env bash
# README command 1: install dependencies, build, run the demo on built-in defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
./build/sta demo
