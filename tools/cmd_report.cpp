// `sta report`: one self-contained HTML page explaining STA (include/sta/report.hpp).
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "cli.hpp"
#include "cli_options.hpp"
#include "sta/error.hpp"
#include "sta/file_io.hpp"
#include "sta/report.hpp"

namespace sta::cli {
namespace {

const std::string kHelp = std::string(R"(sta report: write one self-contained HTML page (inline CSS and SVG, no scripts, no
network) that explains STA with the library's own numbers: block counts of preset shapes
(HunyuanVideo, a 2D image), the theorem check, block maps, windows, and optionally a chart
of a Google Benchmark run.

Usage: sta report --out DIR [--bench BENCH.json] [--force]

)") + options_help(report_options()) + R"()";

// Creates `dir` and its missing parents; throws naming --out if a component is not a folder.
void make_dirs(const std::string& dir) {
  std::string path;
  std::stringstream parts(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/') path = "/";
  while (std::getline(parts, part, '/')) {
    if (part.empty()) continue;
    path += part;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) throw Error("--out: '" + path + "' exists and is not a folder");
    } else if (::mkdir(path.c_str(), 0777) != 0 && errno != EEXIST) {
      throw Error("--out: cannot create folder '" + path + "': " + std::strerror(errno));
    }
    path += "/";
  }
}

int run_report(int argc, char** argv) {
  const OptionTable& table = report_options();
  Args args(argc, argv, flag_names(table));
  args.check_known(option_names(table));
  if (!args.positionals().empty())
    throw Error("unexpected argument '" + args.positionals()[0] + "' (see sta report --help)");
  if (!args.has("--out") || args.get("--out").empty())
    throw Error("--out: missing; expected --out DIR (the folder for index.html)");
  const std::string dir = args.get("--out");
  const std::string index = dir + (dir.back() == '/' ? "" : "/") + "index.html";
  struct stat st {};
  if (!args.has("--force") && ::stat(index.c_str(), &st) == 0)
    throw Error("--out: '" + index + "' exists; refusing to overwrite it (pass --force)");
  ReportOptions opt;
  if (args.has("--bench")) {
    const std::string path = args.get("--bench");
    const std::string text = read_small_file(path, "--bench", uint64_t{1} << 28);
    opt.benchmarks = parse_benchmark_json(text, "--bench: '" + path + "'");
    if (opt.benchmarks.empty())
      throw Error("--bench: '" + path + "' has no benchmark with a real_time");
    opt.benchmark_source = path;
  }
  const std::string page = report_html(opt);
  make_dirs(dir);
  write_file_atomic(index, page, args.has("--force"), "--out");
  std::printf("wrote %s (%zu bytes)\n", index.c_str(), page.size());
  return 0;
}

STA_COMMAND("report", "one self-contained HTML page explaining STA, with pictures",
            kHelp, run_report);

}  // namespace
}  // namespace sta::cli
