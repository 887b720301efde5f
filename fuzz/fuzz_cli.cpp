// libFuzzer target: the whole `sta` command line, in process (sta::cli::dispatch), with small
// generated files. Property (issue 13): every input finishes within the fuzzer's -timeout and
// memory limits, or is refused with exit 2 naming the argument; exit 3 (an internal error)
// and any crash or sanitizer report are failures.
//
// Input format: lines. Lines before a line "%%" are argv (argv[1] is the command); up to
// three "%%"-separated sections after it are the contents of files f0, f1, f2 in a scratch
// folder. In argv, "@0", "@1", "@2" stand for those files and "@d" for a fresh output
// folder name. Budgets keep each run short: STA_MAX_WORK = 2e7 operations, STA_MAX_MEMORY =
// 256 MB (refusals name the argument); kept work buffers (sta/buffer.hpp) at most 256 MiB, so
// runs reuse each other's stale blocks within the fuzzer's RSS limit. `demo` and `theorems` take no file input and run
// fixed minutes-long tours; they are skipped. `report` checks its --bench input (section 1)
// in process, without building the fixed page. Relative output names land in the working
// folder: scripts/fuzz.sh runs the target inside a scratch folder.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <omp.h>

#include "cli.hpp"
#include "sta/error.hpp"
#include "sta/report.hpp"
#include "sta/svg.hpp"

namespace {

std::string g_scratch;

std::vector<std::string> split(const std::string& text, const std::string& sep) {
  std::vector<std::string> out;
  size_t at = 0;
  while (true) {
    const size_t next = text.find(sep, at);
    if (next == std::string::npos) {
      out.push_back(text.substr(at));
      return out;
    }
    out.push_back(text.substr(at, next - at));
    at = next + sep.size();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // In memory where possible: the commands fsync every file they write.
  char shm[] = "/dev/shm/sta_fuzz_cli_XXXXXX";
  char tmp[] = "/tmp/sta_fuzz_cli_XXXXXX";
  char* tmpl = ::mkdtemp(shm) ? shm : ::mkdtemp(tmp);
  if (!tmpl) std::abort();
  g_scratch = tmpl;
  std::atexit([] { std::filesystem::remove_all(g_scratch); });
  ::setenv("STA_MAX_WORK", "2e7", 1);
  ::setenv("STA_MAX_MEMORY", "268435456", 1);
  ::setenv("STA_BUFFER_CACHE_MB", "256", 1);
  omp_set_num_threads(1);
  // The commands print; the fuzzer's own output is on stderr.
  if (!std::freopen("/dev/null", "w", stdout)) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 16) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> sections = split(text, "\n%%\n");
  std::vector<std::string> args = split(sections[0], "\n");
  if (args.size() > 48 || args.empty()) return 0;
  // A real argv ends each argument at its first NUL.
  for (std::string& a : args) a = a.substr(0, a.find('\0'));
  if (args[0] == "demo" || args[0] == "theorems") return 0;
  if (args[0] == "report") {
    // The page itself is fixed (seconds of classification under the sanitizers); what the
    // input controls is the --bench file: parsed and charted here, directly.
    try {
      const auto results = sta::parse_benchmark_json(sections.size() > 1 ? sections[1] : "", "--bench");
      (void)sta::benchmark_chart_svg(results).str();
    } catch (const sta::Error&) {
    }
    return 0;
  }
  std::filesystem::remove_all(g_scratch + "/run");
  std::filesystem::create_directory(g_scratch + "/run");
  const std::string files[3] = {g_scratch + "/run/f0", g_scratch + "/run/f1", g_scratch + "/run/f2"};
  for (size_t i = 1; i < sections.size() && i <= 3; ++i)
    std::ofstream(files[i - 1], std::ios::binary) << sections[i];
  for (std::string& a : args) {
    if (a == "@0" || a == "@1" || a == "@2") a = files[a[1] - '0'];
    else if (a == "@d") a = g_scratch + "/run/out";
  }
  std::vector<std::string> storage = {"sta"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  const int rc = sta::cli::dispatch(static_cast<int>(storage.size()), argv.data());
  if (rc != 0 && rc != 1 && rc != 2) {
    std::fprintf(stderr, "fuzz_cli: exit code %d (an internal error) for command '%s'\n", rc,
                 args[0].c_str());
    std::abort();
  }
  return 0;
}
