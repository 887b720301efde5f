// `sta theorems`: Theorems 3.1 and 3.2 (SPEC section 5) against the block classifier.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "cli.hpp"
#include "cli_options.hpp"
#include "sta/error.hpp"
#include "sta/theory.hpp"

namespace sta::cli {
namespace {

const std::string kHelp = std::string(R"(sta theorems: check the paper's Theorems 3.1 (tiled NATTEN) and 3.2 (STA) against
the block classifier over a sweep of cube canvases L = n*T (n = 1..12 tiles, T in
{1,2,3,4,6,8}), odd windows W <= L, in 3D and 2D.

Modes: torus    (swa-torus mask: 3.1 claimed exact when the touched span fits, 2*ceil((W-1)/2T)+1 <= n)
       interior (clamped swa, only query tiles whose windows touch no border: exact)
       clamped  (clamped swa, all tiles: reported with its deviation, no claim)
       sta      (Theorem 3.2: exact for odd K <= n)

Usage: sta theorems [--json] [--verbose]
)") + options_help(theorems_options()) + R"(Exit code 0 when every exact claim holds, 1 otherwise.
)";

std::string counts_str(const BlockCounts& c) {
  return std::to_string(c.dense) + "/" + std::to_string(c.mixed) + "/" + std::to_string(c.empty);
}

struct Summary {
  int64_t rows = 0, claimed = 0, exact = 0, failed = 0;
  int64_t max_dense_dev = 0, max_mixed_dev = 0;
};

int run_theorems(int argc, char** argv) {
  const OptionTable& table = theorems_options();
  Args args(argc, argv, flag_names(table));
  args.check_known(option_names(table));
  const auto rows = check_theorems();
  std::map<std::string, Summary> by_mode;
  std::vector<const TheoremCheck*> failures;
  for (const auto& r : rows) {
    Summary& s = by_mode[r.theorem + " " + r.mode];
    ++s.rows;
    s.claimed += r.exact_claim;
    s.exact += r.matches();
    s.failed += r.failed();
    s.max_dense_dev = std::max(s.max_dense_dev, static_cast<int64_t>(std::llabs(r.measured.dense - r.predicted.dense)));
    s.max_mixed_dev = std::max(s.max_mixed_dev, static_cast<int64_t>(std::llabs(r.measured.mixed - r.predicted.mixed)));
    if (r.failed()) failures.push_back(&r);
  }
  const TheoremCheck& table1 = rows[0];
  const TheoremCheck& floor_case = rows[1];
  const double key_tiles = 12.0 * 12 * 12;
  if (args.has("--json")) {
    std::string out = "{\"ok\": " + std::string(failures.empty() ? "true" : "false") +
                      ", \"rows\": " + std::to_string(rows.size()) + ", \"modes\": [";
    bool first = true;
    for (const auto& [name, s] : by_mode) {
      char buf[512];
      std::snprintf(buf, sizeof buf,
                    "%s{\"check\": \"%s\", \"rows\": %lld, \"exact_claims\": %lld, "
                    "\"matching\": %lld, \"failed\": %lld, \"max_dense_deviation\": %lld, "
                    "\"max_mixed_deviation\": %lld}",
                    first ? "" : ", ", name.c_str(), (long long)s.rows, (long long)s.claimed,
                    (long long)s.exact, (long long)s.failed, (long long)s.max_dense_dev,
                    (long long)s.max_mixed_dev);
      out += buf;
      first = false;
    }
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "], \"table1\": {\"L\": 48, \"T\": 4, \"W\": 11, \"dense_percent\": %.4f, "
                  "\"mixed_percent\": %.4f}, \"floor_counterexample\": {\"T\": 2, \"W\": 3, "
                  "\"mixed_per_query_tile\": %lld}, \"failures\": [",
                  100.0 * table1.measured.dense / (table1.query_tiles * key_tiles),
                  100.0 * table1.measured.mixed / (table1.query_tiles * key_tiles),
                  (long long)(floor_case.measured.mixed / floor_case.query_tiles));
    out += buf;
    for (size_t i = 0; i < failures.size(); ++i) {
      const auto& f = *failures[i];
      out += (i ? ", " : "") + std::string("{\"theorem\": \"") + f.theorem + "\", \"mode\": \"" +
             f.mode + "\", \"L\": " + std::to_string(f.canvas) + ", \"T\": " +
             std::to_string(f.tile) + ", \"W\": " + std::to_string(f.window) +
             ", \"predicted\": \"" + counts_str(f.predicted) + "\", \"measured\": \"" +
             counts_str(f.measured) + "\"}";
    }
    std::printf("%s]}\n", out.c_str());
    return failures.empty() ? 0 : 1;
  }
  std::printf("Theorems 3.1 / 3.2 vs the block classifier (%zu configurations, 3D and 2D)\n\n",
              rows.size());
  std::printf("%-14s %6s %8s %9s %7s %14s %14s\n", "check", "rows", "claimed", "matching",
              "failed", "max |d dense|", "max |d mixed|");
  for (const auto& [name, s] : by_mode)
    std::printf("%-14s %6lld %8lld %9lld %7lld %14lld %14lld\n", name.c_str(), (long long)s.rows,
                (long long)s.claimed, (long long)s.exact, (long long)s.failed,
                (long long)s.max_dense_dev, (long long)s.max_mixed_dev);
  std::printf("\nPaper Table 1 (L=48, T=4, W=11, torus): dense %.4f%%, mixed %.3f%% "
              "(paper: 0.0579%%, 7.176%%) %s\n",
              100.0 * table1.measured.dense / (table1.query_tiles * key_tiles),
              100.0 * table1.measured.mixed / (table1.query_tiles * key_tiles),
              table1.matches() ? "[formula matches]" : "[MISMATCH]");
  std::printf("Floor counterexample (T=2, W=3): %lld mixed blocks per query tile "
              "(ceil formula: 26; a floor would say 0) %s\n",
              (long long)(floor_case.measured.mixed / floor_case.query_tiles),
              floor_case.matches() ? "[formula matches]" : "[MISMATCH]");
  if (args.has("--verbose") || !failures.empty()) {
    std::printf("\n%-4s %-9s %4s %3s %4s %8s %24s %24s %s\n", "thm", "mode", "L", "T", "W",
                "q-tiles", "predicted d/m/e", "measured d/m/e", "");
    for (const auto& r : rows) {
      if (!args.has("--verbose") && !r.failed()) continue;
      std::printf("%-4s %-9s %4lld %3lld %4lld %8lld %24s %24s %s\n", r.theorem.c_str(),
                  r.mode.c_str(), (long long)r.canvas, (long long)r.tile, (long long)r.window,
                  (long long)r.query_tiles, counts_str(r.predicted).c_str(),
                  counts_str(r.measured).c_str(),
                  r.failed() ? "FAIL" : (r.matches() ? "ok" : (r.exact_claim ? "" : "(no claim)")));
    }
  }
  std::printf("\n%s\n", failures.empty() ? "All exact claims hold." : "SOME EXACT CLAIMS FAIL.");
  return failures.empty() ? 0 : 1;
}

STA_COMMAND("theorems", "check Theorems 3.1 and 3.2 against the classifier", kHelp, run_theorems);

}  // namespace
}  // namespace sta::cli
