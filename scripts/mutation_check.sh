#!/usr/bin/env bash
# Mutation check (issue 14): does the test suite notice deliberate bugs? Copies this source
# tree (tracked and untracked, not ignored files) to a scratch folder, builds it once, runs
# ctest unmutated (the baseline must pass), then applies each tests/mutations/*.patch in turn,
# rebuilds incrementally in the one scratch build folder, runs ctest and reverts the patch.
# Prints a table mutation -> killed (the tests that failed) / SURVIVED; exits 1 if any
# mutation survives or a patch does not apply or build. The caller's tree is never modified.
# Not part of CI: a few minutes per mutation on 2 cores.
#
# Usage: bash scripts/mutation_check.sh [PATCH...]   (default: every tests/mutations/*.patch)
# Environment: STA_MUTATION_DIR   scratch folder (default: a new mktemp -d, removed at exit)
#              STA_MUTATION_JOBS  build and ctest parallelism (default: nproc)
#              STA_MUTATION_CTEST extra ctest arguments (default: none, the whole suite)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
jobs="${STA_MUTATION_JOBS:-$(nproc)}"
if [ -n "${STA_MUTATION_DIR:-}" ]; then
  scratch="$STA_MUTATION_DIR"
  mkdir -p "$scratch"
else
  scratch="$(mktemp -d /tmp/sta-mutation.XXXXXX)"
  trap 'rm -rf "$scratch"' EXIT
fi
tree="$scratch/tree" build="$scratch/build" logs="$scratch/logs"
mkdir -p "$tree" "$logs"

patches=("$@")
if [ ${#patches[@]} -eq 0 ]; then
  patches=("$root"/tests/mutations/*.patch)
fi
for i in "${!patches[@]}"; do patches[$i]="$(realpath "${patches[$i]}")"; done

# A patch left applied by an interrupted run (a reused STA_MUTATION_DIR) is reverted first.
if [ -f "$scratch/applied" ]; then
  (cd "$tree" && git apply -R "$(cat "$scratch/applied")")
  rm -f "$scratch/applied"
fi
# The working tree as it is (uncommitted edits included), without build folders. Only files
# whose content differs are copied over a previous copy, so that a reused scratch build stays
# incremental (unchanged files keep their times, changed ones get new ones).
rm -rf "$scratch/staging"
mkdir -p "$scratch/staging"
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
   tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$scratch/staging"
(cd "$scratch/staging" && find . -type f) | while IFS= read -r f; do
  if ! cmp -s "$scratch/staging/$f" "$tree/$f"; then
    mkdir -p "$(dirname "$tree/$f")"
    cp "$scratch/staging/$f" "$tree/$f"
  fi
done
(cd "$tree" && find . -type f) | while IFS= read -r f; do
  [ -e "$scratch/staging/$f" ] || rm -f "$tree/$f"
done
rm -rf "$scratch/staging"

# The build folder is configured once; the sanitizer and fuzz passes are not run (slow,
# and a mutation they alone would catch is not what this measures).
cmake -S "$tree" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSTA_BUILD_BENCH=OFF >"$logs/configure.log"

# build_and_test NAME: builds, runs ctest; sets $failed to the failing tests (one per line).
build_and_test() {
  local name="$1"
  if ! cmake --build "$build" -j"$jobs" >"$logs/$name.build.log" 2>&1; then
    failed="(build failed: $logs/$name.build.log)"
    return 1
  fi
  # ctest --timeout: a mutation that makes a test hang counts as killed by that test.
  (cd "$build" && ctest -j"$jobs" --timeout 900 ${STA_MUTATION_CTEST:-} >"$logs/$name.ctest.log" 2>&1) || true
  failed="$(sed -n '/The following tests FAILED:/,$p' "$logs/$name.ctest.log" |
            sed -n -E 's/^[[:space:]]*[0-9]+ - ([^ ]+) .*/\1/p')"
  if grep -q "No tests were found" "$logs/$name.ctest.log"; then
    failed="(no tests ran: $logs/$name.ctest.log)"
    return 1
  fi
  return 0
}

echo "== baseline (no mutation) in $scratch"
if ! build_and_test baseline || [ -n "$failed" ]; then
  echo "the unmutated tree does not pass; fix that first:"
  echo "$failed"
  exit 1
fi
echo "baseline: $(grep -E 'tests passed' "$logs/baseline.ctest.log" | head -1)"

status=0
results=()
for patch in "${patches[@]}"; do
  name="$(basename "$patch" .patch)"
  echo "== $name"
  echo "$patch" >"$scratch/applied"
  if ! (cd "$tree" && git apply "$patch"); then
    rm -f "$scratch/applied"
    results+=("$name|PATCH DOES NOT APPLY|")
    status=1
    continue
  fi
  if build_and_test "$name"; then
    if [ -n "$failed" ]; then
      count="$(printf '%s\n' "$failed" | wc -l)"
      list="$(printf '%s\n' "$failed" | head -6 | paste -sd, - | sed 's/,/, /g')"
      [ "$count" -gt 6 ] && list="$list, ..."
      results+=("$name|killed by $count|$list")
    else
      results+=("$name|SURVIVED|")
      status=1
    fi
  else
    results+=("$name|ERROR|$failed")
    status=1
  fi
  # Reverting rewrites the files (new mtimes), so the next build recompiles them.
  (cd "$tree" && git apply -R "$patch")
  rm -f "$scratch/applied"
done

echo
printf '%-42s %-16s %s\n' "mutation" "result" "failing tests"
for r in "${results[@]}"; do
  IFS='|' read -r n res list <<<"$r"
  printf '%-42s %-16s %s\n' "$n" "$res" "$list"
done
exit $status
