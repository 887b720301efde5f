#pragma once
// Runs the built `sta` program (STA_CLI_PATH) and captures its output and exit code.
#include <sys/wait.h>

#include <cstdio>
#include <exception>
#include <string>

namespace sta::testing {

struct CliResult {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr, interleaved
};

/// Runs `sta <args>` through the shell; `args` is pasted verbatim (quote paths yourself).
inline CliResult run_cli(const std::string& args) {
  CliResult r;
  const std::string cmd = std::string(STA_CLI_PATH) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

/// The integer after `"key": ` in a flat JSON text, or -1 if absent or not an integer.
inline long long json_int(const std::string& json, const std::string& key) {
  const auto at = json.find("\"" + key + "\": ");
  if (at == std::string::npos) return -1;
  try {
    return std::stoll(json.substr(at + key.size() + 4));
  } catch (const std::exception&) {  // e.g. null: not an integer
    return -1;
  }
}

}  // namespace sta::testing
