#pragma once
// The `sta` command line: a thin layer that parses arguments, calls the library and prints.
// Each subcommand lives in its own tools/cmd_*.cpp and registers itself with STA_COMMAND.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sta/attention.hpp"
#include "sta/layout.hpp"
#include "sta/mask.hpp"
#include "sta/shape.hpp"

namespace sta::cli {

/// Command-line arguments after the subcommand: `--name value`, `--name=value`, bare flags
/// and positionals. Options may repeat (e.g. one `--mask` per head).
/// Options that are bare flags in every subcommand (the common --ragged).
inline constexpr const char* kCommonFlags[] = {"--ragged"};

class Args {
 public:
  /// `flags` lists the options that take no value (e.g. "--json"); all others take one.
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
  /// Throws sta::Error naming the first option not in `known` (catches typos).
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
};
/// Names of the common options, for Args::check_known.
std::vector<std::string> common_option_names();
/// Parses and validates the common options; defaults: Hunyuan canvas 30,48,80, tile 6,8,8,
/// mask `default_mask`, no text, tiled layout.
CommonOptions parse_common(const Args& args, const std::string& default_mask = "sta:3,3,3");
/// Help text for the common options, shared by every subcommand's --help.
std::string common_help();

/// A subcommand: name, one-line summary, full help, entry point (returns the exit code).
struct Command {
  std::string name;
  std::string summary;
  std::string help;
  std::function<int(int argc, char** argv)> run;
};
std::map<std::string, Command>& registry();
struct Registrar {
  explicit Registrar(Command c) { registry()[c.name] = std::move(c); }
};

/// The contents of a JSON string literal for `s` (sta::json_quote without the quotes).
std::string json_escape(const std::string& s);

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
