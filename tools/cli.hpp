#pragma once
// The `sta` command line: a thin layer that parses arguments, calls the library and prints.
// Each subcommand lives in its own tools/cmd_*.cpp and registers itself with STA_COMMAND.
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "sta/attention.hpp"
#include "sta/layout.hpp"
#include "sta/mask.hpp"
#include "sta/npy.hpp"
#include "sta/shape.hpp"

namespace sta::cli {

// checked_product (overflow-safe size products naming the option) is in sta/shape.hpp.

/// Command-line arguments after the subcommand: `--name value`, `--name=value`, bare flags
/// and positionals. Options may repeat (e.g. one `--mask` per head).

/// One option of a command, declared once: the parser takes its flags from it, the
/// unknown-option check its names, and --help its lines (gemma.cpp's util/args.h idea:
/// one declaration visited for printing and parsing).
struct OptionSpec {
  const char* name;   ///< e.g. "--out"
  const char* value;  ///< the value's placeholder, e.g. "FILE"; "" for a flag (no value)
  const char* help;   ///< one paragraph, defaults in [brackets]; wrapped by options_help()
};
using OptionTable = std::vector<OptionSpec>;
/// `a` followed by `b` (a command's own options, then the common ones).
OptionTable join(OptionTable a, const OptionTable& b);
/// The names of the flags (options without a value) of `table`.
std::vector<std::string> flag_names(const OptionTable& table);
/// The names of every option of `table`, and --help.
std::vector<std::string> option_names(const OptionTable& table);
/// The options part of --help: "  --name VALUE" in a column of kOptionColumn characters, the
/// help wrapped beside it.
std::string options_help(const OptionTable& table);

class Args {
 public:
  /// `flags` lists the options that take no value (e.g. "--json"); all others take one.
  /// A command passes flag_names() of its OptionTable; the flags of common_options() (the
  /// --ragged flag) are flags in every command. (No OptionTable overload: a braced
  /// list of two names would be ambiguous between the two.)
  Args(int argc, char** argv, std::vector<std::string> flags);

  /// The last value of `name`, or `fallback` if absent.
  std::string get(const std::string& name, const std::string& fallback = "") const;
  /// Every value of a repeatable option, in order.
  std::vector<std::string> get_all(const std::string& name) const;
  bool has(const std::string& name) const;
  /// Integer option; throws sta::Error naming the option if not an integer in [lo, hi].
  int64_t get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const;
  /// Floating-point option; throws sta::Error naming the option if not a finite number.
  double get_double(const std::string& name, double fallback) const;
  const std::vector<std::string>& positionals() const { return positionals_; }
  /// Throws sta::Error naming the first option not in `known` (catches typos); a command
  /// passes option_names() of its OptionTable.
  void check_known(const std::vector<std::string>& known) const;

 private:
  std::vector<std::pair<std::string, std::string>> options_;
  std::vector<std::string> positionals_;
};

/// The common options of SPEC section 7: --video, --tile, --mask (once or per head),
/// --text-length, --text-pad, --layout, and the --ragged flag (Geometry::ragged).
struct CommonOptions {
  Geometry geometry;
  std::vector<Mask> masks;
  Layout layout = Layout::kTiled;
  /// The option the masks came from, for messages: "--mask" or "--strategy". Masks from a
  /// strategy are one per head and never broadcast.
  std::string mask_arg = "--mask";
};
/// Checks `masks` against `heads` as validate_head_masks does, naming c.mask_arg; masks from
/// --strategy must match the heads exactly (one mask is not broadcast).
void check_head_masks(const CommonOptions& c, int64_t heads);
/// Refuses each of `options` that is given: a common option a command cannot honour is an
/// error naming it ("`opt`: not used by `command`; `why`"), never silently ignored.
void refuse_unused(const Args& args, const std::vector<std::string>& options,
                   const std::string& command, const std::string& why);
/// The common options (SPEC section 7), one table shared by every command that takes them.
const OptionTable& common_options();
/// Names of the common options and --help, for Args::check_known.
std::vector<std::string> common_option_names();
/// Parses and validates the common options; defaults: Hunyuan canvas 30,48,80, tile 6,8,8,
/// mask `default_mask`, no text, tiled layout.
CommonOptions parse_common(const Args& args, const std::string& default_mask = "sta:3,3,3");
/// Help text for the common options, shared by every subcommand's --help (generated from
/// common_options()).
std::string common_help();

/// A subcommand: name, one-line summary, full help, entry point (returns the exit code).
struct Command {
  std::string name;
  std::string summary;
  std::string help;
  std::function<int(int argc, char** argv)> run;
};
std::map<std::string, Command>& registry();
/// The `sta` program after --version: picks the subcommand of argv[1] (demo if none) and
/// runs it; sta::Error becomes "sta CMD: error: ..." and exit 2, any other exception exit 3.
/// Shared by main() and the whole-CLI fuzz target (fuzz/fuzz_cli.cpp).
int dispatch(int argc, char** argv);
struct Registrar {
  explicit Registrar(Command c) { registry()[c.name] = std::move(c); }
};


/// The memory a command may use, in bytes: $STA_MAX_MEMORY if set (the fuzz target sets it),
/// else the machine's physical memory.
uint64_t memory_budget();
/// Refuses, before allocating, work whose estimated memory `bytes` exceeds memory_budget():
/// sta::Error "`arg`: `what` needs N bytes ...; expected at most M".
void check_memory(double bytes, const std::string& arg, const std::string& what);

/// The progress line of a command that computes head by head (sta run, grad, golden), on
/// stderr: "\r  BACKEND: head done/total, X s elapsed, ~Y s left", a newline after the last
/// head; nothing when there is one head. The clock starts at construction.
class HeadProgress {
 public:
  explicit HeadProgress(Backend backend);
  void operator()(int64_t done, int64_t total) const;
  /// Seconds since construction.
  double seconds() const;

 private:
  std::string backend_;
  std::chrono::steady_clock::time_point start_;
};
/// Whether a command with --progress / --quiet shows its HeadProgress line: --progress, or
/// stderr a terminal and no --quiet.
bool progress_wanted(const Args& args);
/// Refuses work whose estimated cost in floating-point operations exceeds $STA_MAX_WORK
/// (unset: no limit; the fuzz target sets it so every run stays short).
void check_work(double flops, const std::string& arg, const std::string& what);

/// Refuses, before computing, attention whose cost grows faster than its input: the
/// estimated operations (B*H x visited (query, key) pairs x (2D + 32); pairs from the
/// block classifier for sta/natten, S^2 for dense/reference) must stay below
/// max(2e10, r x `input_bytes`) with r = 1e5 for the fast backends and 2e4 for the (double,
/// ~50x slower) reference, or below $STA_MAX_WORK when that is set. A 1-D sequence of 70,000
/// one-token tiles with D = 1 (840 KB) is refused; dense attention on the Hunyuan canvas
/// (D = 64 or 128) and the golden presets are not.
/// Throws sta::Error naming `arg`.
void check_attention_cost(const AttentionShape& shape, const AttentionOptions& options,
                          Backend backend, double input_bytes, const std::string& arg);

/// Output files of one command, resolved and checked before any work: each is a creatable
/// file (its folder exists and is writable, its name fits NAME_MAX, it is not a folder or
/// device, it exists only with --force), no two are the same file and none is an input.
/// Throws sta::Error naming the option.
struct PathArg {
  std::string arg;   ///< the option, e.g. "--out"
  std::string path;  ///< as given
};
void check_outputs(const std::vector<PathArg>& outputs, const std::vector<PathArg>& inputs,
                   bool force);
/// The canonical form of `path` for identity checks: realpath of its folder + its name.
std::string resolved_path(const std::string& path);

/// Writes `contents` to `path` with sta::write_file_atomic (include/sta/file_io.hpp):
/// atomic, never replaces an existing file unless `force`; throws sta::Error naming `arg`.
void write_file_atomic(const std::string& path, const std::string& contents, bool force,
                       const std::string& arg);

}  // namespace sta::cli

#define STA_CLI_CONCAT2(a, b) a##b
#define STA_CLI_CONCAT(a, b) STA_CLI_CONCAT2(a, b)
/// Registers a subcommand at static-initialisation time.
#define STA_COMMAND(...) \
  static ::sta::cli::Registrar STA_CLI_CONCAT(sta_command_, __LINE__)(::sta::cli::Command{__VA_ARGS__})
