#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (+ ASan/UBSan) into build-fuzz/ and runs each one
# from the seed corpus in tests/fuzz/<target>/ for a fixed number of inputs (deterministic
# seed), so a run is reproducible. FUZZ_RUNS (default 200000) sets the count; new corpus
# entries go to build-fuzz/corpus/, never into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${FUZZ_RUNS:-200000}"
CXX=clang++ CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTA_FUZZ=ON \
  -DSTA_BUILD_TESTS=OFF -DSTA_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_npy fuzz_strategy fuzz_options fuzz_cli
for t in npy strategy options; do
  mkdir -p "build-fuzz/corpus/$t"
  echo "== fuzz_$t: $runs inputs from tests/fuzz/$t =="
  log="build-fuzz/fuzz_$t.log"
  if ! "build-fuzz/fuzz_$t" -seed=1 -runs="$runs" -max_len=4096 "build-fuzz/corpus/$t" \
       "tests/fuzz/$t" >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz_$t FAILED (crash input saved by libFuzzer as crash-* in $(pwd))"
    exit 1
  fi
  grep -E "^Done" "$log"
done

# The whole CLI (fuzz/fuzz_cli.cpp): argv plus small generated files, in process. Property:
# each command line finishes in 10 s and 1 GB (sanitizer overhead allowed for), or is refused
# with exit 2; FUZZ_CLI_RUNS (default 100000) command lines.
cli_runs="${FUZZ_CLI_RUNS:-100000}"
root="$(pwd)"
mkdir -p build-fuzz/corpus/cli
# A scratch working folder in memory where possible: the commands fsync what they write.
work="$(mktemp -d /dev/shm/sta-fuzz-XXXXXX 2>/dev/null || mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "== fuzz_cli: $cli_runs command lines from tests/fuzz/cli =="
log="$root/build-fuzz/fuzz_cli.log"
# Inside $work so that relative output names (o.npy, b.svg) stay out of the checkout.
if ! (cd "$work" && "$root/build-fuzz/fuzz_cli" -seed=1 -runs="$cli_runs" -max_len=4096 \
       -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -artifact_prefix="$root/build-fuzz/" -dict="$root/tests/fuzz/cli.dict" \
       "$root/build-fuzz/corpus/cli" "$root/tests/fuzz/cli") >"$log" 2>&1; then
  tail -n 40 "$log"
  echo "fuzz_cli FAILED (input saved by libFuzzer as build-fuzz/crash-*, timeout-* or oom-*)"
  exit 1
fi
grep -E "^Done" "$log"
