#include "cli.hpp"


#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "sta/blocks.hpp"
#include "sta/error.hpp"
#include "sta/file_io.hpp"
#include "sta/json.hpp"
#include "sta/strategy.hpp"

namespace sta::cli {

Args::Args(int argc, char** argv, std::vector<std::string> flags) {
  // Common flags take no value in every subcommand (a command that does not know them
  // still rejects them by name through check_known).
  for (const std::string& f : flag_names(common_options())) flags.push_back(f);
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      const auto eq = a.find('=');
      if (eq != std::string::npos) {
        const std::string name = a.substr(0, eq);
        // `--force=no` must not silently mean --force: a flag takes no value.
        if (std::find(flags.begin(), flags.end(), name) != flags.end())
          throw Error(name + ": is a flag and takes no value (got '" + a.substr(eq + 1) +
                      "'); expected " + name + " alone");
        options_.emplace_back(name, a.substr(eq + 1));
      } else if (std::find(flags.begin(), flags.end(), a) != flags.end()) {
        options_.emplace_back(a, "");
      } else {
        // A value never starts with "--": `--scale --force` is a missing value, not "--force".
        if (i + 1 >= argc || std::string(argv[i + 1]).compare(0, 2, "--") == 0)
          throw Error(a + ": missing value");
        options_.emplace_back(a, argv[++i]);
      }
    } else if (a == "-h") {
      options_.emplace_back("--help", "");
    } else {
      positionals_.push_back(a);
    }
  }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  std::string v = fallback;
  for (const auto& [k, val] : options_)
    if (k == name) v = val;
  return v;
}

std::vector<std::string> Args::get_all(const std::string& name) const {
  std::vector<std::string> out;
  for (const auto& [k, val] : options_)
    if (k == name) out.push_back(val);
  return out;
}

bool Args::has(const std::string& name) const {
  return std::any_of(options_.begin(), options_.end(),
                     [&](const auto& kv) { return kv.first == name; });
}

int64_t Args::get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const {
  if (!has(name)) return fallback;
  const std::string s = get(name);
  const std::string expected =
      "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    throw Error(name + ": '" + s + "' is not an integer; " + expected);
  }
  if (used != s.size()) throw Error(name + ": '" + s + "' is not an integer; " + expected);
  if (v < lo || v > hi) throw Error(name + ": " + s + " is out of range; " + expected);
  return v;
}

double Args::get_double(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  const std::string s = get(name);
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw Error(name + ": '" + s + "' is not a number");
  }
  if (used != s.size() || !std::isfinite(v)) throw Error(name + ": '" + s + "' is not a finite number");
  return v;
}

void Args::check_known(const std::vector<std::string>& known) const {
  for (const auto& [k, v] : options_)
    if (std::find(known.begin(), known.end(), k) == known.end())
      throw Error(k + ": unknown option (see --help)");
}

void refuse_unused(const Args& args, const std::vector<std::string>& options,
                   const std::string& command, const std::string& why) {
  for (const std::string& o : options)
    if (args.has(o)) throw Error(o + ": not used by " + command + "; " + why);
}

OptionTable join(OptionTable a, const OptionTable& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<std::string> flag_names(const OptionTable& table) {
  std::vector<std::string> out;
  for (const OptionSpec& o : table)
    if (!*o.value) out.push_back(o.name);
  return out;
}

std::vector<std::string> option_names(const OptionTable& table) {
  std::vector<std::string> out;
  for (const OptionSpec& o : table) out.push_back(o.name);
  out.push_back("--help");  // answered by dispatch() before any command runs
  return out;
}

std::string options_help(const OptionTable& table) {
  // Two columns like the hand-written lists they replace: the option and its value in the
  // first, the help wrapped at kWidth in the second.
  constexpr size_t kColumn = 23, kWidth = 92;
  std::string out;
  for (const OptionSpec& o : table) {
    std::string line = std::string("  ") + o.name + (*o.value ? std::string(" ") + o.value : "");
    line += line.size() + 1 < kColumn ? std::string(kColumn - line.size(), ' ') : "  ";
    bool first_word = true;
    const std::string help = o.help;
    size_t at = 0;
    while (at < help.size()) {
      size_t end = help.find(' ', at);
      if (end == std::string::npos) end = help.size();
      // A short bracketed group ("[default 0]") stays on one line, as in the hand-written
      // lists; a long one wraps like prose.
      if (help[at] == '[') {
        const size_t close = help.find(']', at);
        size_t group_end = close == std::string::npos ? end : help.find(' ', close);
        if (group_end == std::string::npos) group_end = help.size();
        if (close != std::string::npos && group_end - at <= kWidth - kColumn)
          end = group_end;
      }
      const std::string word = help.substr(at, end - at);
      at = end + 1;
      if (word.empty()) continue;
      if (!first_word && line.size() + 1 + word.size() > kWidth) {
        out += line + "\n";
        line = std::string(kColumn, ' ');
        first_word = true;
      }
      line += (first_word ? "" : " ") + word;
      first_word = false;
    }
    out += line + "\n";
  }
  return out;
}

const OptionTable& common_options() {
  static const OptionTable table = {
      {"--video", "T,H,W",
       "canvas in tokens (frames, height, width); H,W for a 2D image [default 30,48,80, "
       "HunyuanVideo 720p]"},
      {"--tile", "t,h,w", "tile in tokens [default 6,8,8, FastVideo's kernel tile]"},
      {"--mask", "M",
       "full | sta:Kt,Kh,Kw (window in TILES) | swa:Wt,Wh,Ww (window in TOKENS, NATTEN) | "
       "swa-torus:Wt,Wh,Ww (wrap-around, Theorem 3.1); give once for all heads or once per "
       "head, in head order"},
      {"--text-length", "N", "real text tokens after the video [default 0]"},
      {"--text-pad", "P", "text slots after the video, S = T*H*W + P (FastVideo: 256) [default 0]"},
      {"--layout", "tiled|raster", "token order of the video part [default tiled]"},
      {"--ragged", "",
       "allow a canvas axis not divisible by the tile: ceil(L/t) tiles, the last one shorter "
       "(SPEC 1 extension; sta masks stay dense/empty)"},
      {"--strategy", "FILE",
       "FastVideo mask strategy JSON (\"t_l_h\": [kt, kh, kw] in TILES); with --step S "
       "--layer L, one sta mask per head, heads 0..H-1 of denoising step S, layer L (instead "
       "of --mask; see `sta strategy --help`)"},
      {"--step", "S", "the denoising step of --strategy FILE to use"},
      {"--layer", "L", "the layer of --strategy FILE to use"},
  };
  return table;
}

std::vector<std::string> common_option_names() { return option_names(common_options()); }

namespace {

// --strategy FILE --step S --layer L: one STA mask per head from a FastVideo mask strategy
// (sta/strategy.hpp). Each bad or missing piece is reported against its own option.
std::vector<Mask> strategy_masks_from_args(const Args& args) {
  if (args.get_all("--strategy").size() > 1)
    throw Error("--strategy: given more than once; give one mask strategy file");
  if (args.has("--mask"))
    throw Error("--strategy: cannot be combined with --mask (the file gives one mask per head)");
  MaskStrategy strategy;
  try {
    strategy = read_mask_strategy(args.get("--strategy"));
  } catch (const Error& e) {
    throw Error(std::string("--strategy: ") + e.what());
  }
  const std::string file = "'" + strategy.source + "'";
  const std::vector<int64_t> steps = strategy_steps(strategy);
  const std::vector<int64_t> layers = strategy_layers(strategy);
  if (!args.has("--step"))
    throw Error("--step: missing; --strategy needs --step S (" + file + " has steps " +
                format_index_set(steps) + ")");
  if (!args.has("--layer"))
    throw Error("--layer: missing; --strategy needs --layer L (" + file + " has layers " +
                format_index_set(layers) + ")");
  const int64_t step = args.get_int("--step", 0, 0, kMaxStrategyValue);
  const int64_t layer = args.get_int("--layer", 0, 0, kMaxStrategyValue);
  if (!std::binary_search(steps.begin(), steps.end(), step))
    throw Error("--step: " + std::to_string(step) + " is not in " + file + " (steps " +
                format_index_set(steps) + ")");
  if (!std::binary_search(layers.begin(), layers.end(), layer))
    throw Error("--layer: " + std::to_string(layer) + " is not in " + file + " (layers " +
                format_index_set(layers) + ")");
  // Every layer must have every head the file uses anywhere: a layer lacking heads is
  // refused with the first missing key, never broadcast from head 0.
  const std::vector<int64_t> all_heads = strategy_heads(strategy);
  try {
    return strategy_masks(strategy, step, layer, all_heads.empty() ? -1 : all_heads.back() + 1);
  } catch (const Error& e) {
    throw Error(std::string("--strategy: ") + e.what());
  }
}

}  // namespace

CommonOptions parse_common(const Args& args, const std::string& default_mask) {
  CommonOptions c;
  if (args.has("--video")) c.geometry.canvas = parse_extent3(args.get("--video"), "--video");
  if (args.has("--tile")) c.geometry.tile = parse_extent3(args.get("--tile"), "--tile");
  c.geometry.ragged = args.has("--ragged");
  const int64_t kMax = int64_t{1} << 31;
  c.geometry.text_pad = args.get_int("--text-pad", 0, 0, kMax);
  c.geometry.text_length = args.get_int("--text-length", 0, 0, kMax);
  if (args.has("--text-length") && !args.has("--text-pad"))
    throw Error("--text-length: needs --text-pad P (text slots after the video, e.g. 256)");
  c.layout = parse_layout(args.get("--layout", "tiled"), "--layout");
  if (args.has("--strategy")) {
    c.masks = strategy_masks_from_args(args);
    c.mask_arg = "--strategy";
  } else if (args.has("--step") || args.has("--layer")) {
    throw Error(std::string(args.has("--step") ? "--step" : "--layer") +
                ": needs --strategy FILE (a FastVideo mask strategy)");
  }
  for (const auto& m : args.get_all("--mask")) c.masks.push_back(parse_mask(m, "--mask"));
  if (c.masks.empty()) c.masks.push_back(parse_mask(default_mask, "--mask"));
  c.geometry.validate();
  for (const auto& m : c.masks) validate_mask(m, c.geometry, c.mask_arg);
  return c;
}

void check_head_masks(const CommonOptions& c, int64_t heads) {
  if (c.mask_arg == "--strategy" && static_cast<int64_t>(c.masks.size()) != heads)
    throw Error("--strategy: the file gives " + std::to_string(c.masks.size()) +
                " heads for this step and layer but the problem has " + std::to_string(heads) +
                "; expected one mask per head");
  validate_head_masks(c.masks, heads, c.geometry, c.mask_arg);
}

std::string common_help() { return "Common options:\n" + options_help(common_options()); }

std::map<std::string, Command>& registry() {
  static std::map<std::string, Command> commands;
  return commands;
}

namespace {

void print_usage() {
  std::printf(
      "sta: Sliding Tile Attention (STA) on CPU: block counts, theorems, reference and fast\n"
      "attention, golden outputs for GPU ports.\n\n"
      "Usage: sta <command> [options]     (sta <command> --help for details)\n\n"
      "Commands:\n");
  for (const auto& [name, cmd] : registry())
    std::printf("  %-10s %s\n", name.c_str(), cmd.summary.c_str());
  std::printf("\nWith no command, `sta demo` runs.\n");
}

}  // namespace

int dispatch(int argc, char** argv) {
  auto& reg = registry();
  std::string name = argc > 1 ? argv[1] : "demo";
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage();
    return 0;
  }
  auto it = reg.find(name);
  if (it == reg.end()) {
    std::fprintf(stderr, "sta: unknown command '%s' (see sta --help)\n", name.c_str());
    return 2;
  }
  const int sub_argc = argc > 1 ? argc - 2 : 0;
  char** sub_argv = argc > 1 ? argv + 2 : argv + argc;
  for (int i = 0; i < sub_argc; ++i)
    if (!std::strcmp(sub_argv[i], "--help") || !std::strcmp(sub_argv[i], "-h")) {
      std::printf("%s\n", it->second.help.c_str());
      return 0;
    }
  try {
    return it->second.run(sub_argc, sub_argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "sta %s: error: %s\n", name.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sta %s: internal error: %s\n", name.c_str(), e.what());
    return 3;
  }
}

namespace {

// A positive byte or operation count from the environment, or `fallback`.
double env_limit(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  return (end && *end == '\0' && x > 0) ? x : fallback;
}

std::string human_bytes(double b) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f bytes (%.3g GB)", b, b / 1e9);
  return buf;
}

}  // namespace

uint64_t memory_budget() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  const double phys = pages > 0 && page > 0 ? double(pages) * double(page) : 8e9;
  return static_cast<uint64_t>(env_limit("STA_MAX_MEMORY", phys));
}

void check_memory(double bytes, const std::string& arg, const std::string& what) {
  const double budget = static_cast<double>(memory_budget());
  if (!(bytes <= budget))
    throw Error(arg + ": " + what + " needs " + human_bytes(bytes) + " of memory; expected at most " +
                human_bytes(budget) + (std::getenv("STA_MAX_MEMORY") ? " (STA_MAX_MEMORY)" : " (physical memory)"));
}

void check_work(double flops, const std::string& arg, const std::string& what) {
  const double budget = env_limit("STA_MAX_WORK", std::numeric_limits<double>::infinity());
  if (!(flops <= budget)) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%.3g operations; expected at most %.3g (STA_MAX_WORK)", flops,
                  budget);
    throw Error(arg + ": " + what + " needs " + buf);
  }
}

void check_attention_cost(const AttentionShape& shape, const AttentionOptions& options,
                          Backend backend, double input_bytes, const std::string& arg) {
  const Geometry& g = options.geometry;
  const double s = static_cast<double>(shape.seq), v = static_cast<double>(g.video_tokens());
  double pairs = 0.0;  // summed over the heads of one batch
  for (int64_t h = 0; h < shape.heads; ++h) {
    if (backend == Backend::kDense || backend == Backend::kReference) {
      pairs += s * s;
      continue;
    }
    // Visited blocks are whole tiles; text rows and columns are dense.
    const BlockCounts c = classify_blocks(g, mask_for_head(options.masks, h)).counts;
    const double tile = static_cast<double>(g.tile_tokens());
    pairs += static_cast<double>(c.dense + c.mixed) * tile * tile + (s * s - v * v);
    if (h > 64 && options.masks.size() == 1) {  // one mask for all heads: scale, do not loop
      pairs = pairs / static_cast<double>(h + 1) * static_cast<double>(shape.heads);
      break;
    }
  }
  const double ops = static_cast<double>(shape.batch) * pairs * (2.0 * static_cast<double>(shape.dim) + 32.0);
  const bool env = std::getenv("STA_MAX_WORK") != nullptr;
  // Operations per input byte: the double reference is some 50x slower per operation than
  // the fast kernels. 1e5 lets the fast backends run dense attention on canvases up to
  // ~600,000 tokens at D = 128 (Hunyuan: 2.2e4), while a 1 MB input stays below ~1e11.
  const double per_byte = backend == Backend::kReference ? 2e4 : 1e5;
  const double limit = env ? env_limit("STA_MAX_WORK", HUGE_VAL) : std::max(2e10, per_byte * input_bytes);
  if (!(ops <= limit)) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "attention needs about %.3g operations for %.3g bytes of input; expected at most "
                  "%.3g (%s)",
                  ops, input_bytes, limit,
                  env ? "STA_MAX_WORK"
                      : (backend == Backend::kReference
                             ? "2e4 per input byte for the reference; set STA_MAX_WORK to allow more"
                             : "1e5 per input byte; set STA_MAX_WORK to allow more"));
    throw Error(arg + ": " + buf);
  }
}

std::string resolved_path(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  char buf[PATH_MAX];
  if (!::realpath(dir.c_str(), buf)) return path;
  // A link is followed, so `o.npy` and a link to it are the same file.
  char full[PATH_MAX];
  const std::string joined = std::string(buf) + "/" + name;
  if (::realpath(joined.c_str(), full)) return full;
  return joined;
}

HeadProgress::HeadProgress(Backend backend)
    : backend_(to_string(backend)), start_(std::chrono::steady_clock::now()) {}

double HeadProgress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

bool progress_wanted(const Args& args) {
  return args.has("--progress") || (::isatty(STDERR_FILENO) && !args.has("--quiet"));
}

void HeadProgress::operator()(int64_t done, int64_t total) const {
  if (total < 2) return;
  const double s = seconds();
  std::fprintf(stderr, "\r  %s: head %lld/%lld, %.1f s elapsed, ~%.0f s left   %s", backend_.c_str(),
               static_cast<long long>(done), static_cast<long long>(total), s,
               s / static_cast<double>(done) * static_cast<double>(total - done),
               done == total ? "\n" : "");
}

void check_outputs(const std::vector<PathArg>& outputs, const std::vector<PathArg>& inputs,
                   bool force) {
  std::vector<std::string> resolved;
  for (const PathArg& o : outputs) {
    const std::string where = o.arg + " '" + o.path + "'";
    if (o.path.empty()) throw Error(o.arg + ": empty path; expected a file name");
    if (o.path.back() == '/') throw Error(where + ": ends in '/'; expected a file name");
    const auto slash = o.path.find_last_of('/');
    const std::string dir =
        slash == std::string::npos ? "." : (slash == 0 ? "/" : o.path.substr(0, slash));
    const std::string name = slash == std::string::npos ? o.path : o.path.substr(slash + 1);
    // write_file_atomic's temporary gets a short name when this one is long, so any name
    // the file system allows works; longer ones are refused here, before any work.
    const long name_max = ::pathconf(dir.c_str(), _PC_NAME_MAX);
    const size_t limit = name_max > 0 ? static_cast<size_t>(name_max) : 255;
    if (name.size() > limit)
      throw Error(where + ": file name of " + std::to_string(name.size()) +
                  " bytes is too long; expected at most " + std::to_string(limit));
    if (o.path.size() + 32 >= PATH_MAX)
      throw Error(where + ": path is too long; expected at most " + std::to_string(PATH_MAX - 33) + " bytes");
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      throw Error(where + ": folder '" + dir + "' does not exist; expected an existing folder");
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
      throw Error(where + ": cannot write in folder '" + dir + "': " + std::strerror(errno));
    if (::lstat(o.path.c_str(), &st) == 0) {
      struct stat target {};
      if (::stat(o.path.c_str(), &target) == 0 && !S_ISREG(target.st_mode))
        throw Error(where + ": exists and is not a regular file; expected a file name");
      if (!force) throw Error(where + ": exists; refusing to overwrite it (pass --force)");
    }
    const std::string r = resolved_path(o.path);
    for (size_t j = 0; j < resolved.size(); ++j)
      if (resolved[j] == r)
        throw Error(where + ": same file as " + outputs[j].arg + " '" + outputs[j].path +
                    "'; expected distinct output files");
    struct stat out_st {}, in_st {};
    const bool out_exists = ::stat(o.path.c_str(), &out_st) == 0;
    for (const PathArg& in : inputs)
      if (!in.path.empty() && (resolved_path(in.path) == r ||  // a hard link is the same file too
                               (out_exists && ::stat(in.path.c_str(), &in_st) == 0 &&
                                in_st.st_dev == out_st.st_dev && in_st.st_ino == out_st.st_ino)))
        throw Error(where + ": same file as the input " + in.arg + " '" + in.path +
                    "'; expected an output distinct from every input");
    resolved.push_back(r);
  }
}

void write_file_atomic(const std::string& path, const std::string& contents, bool force,
                       const std::string& arg) {
  sta::write_file_atomic(path, contents, force, arg);
}

}  // namespace sta::cli
