#pragma once
// The one exception type of the library: every bad value a user passes is reported by
// throwing sta::Error with a message that names the argument and what was expected.
#include <stdexcept>
#include <string>

namespace sta {

/// Thrown for invalid user input (shapes, windows, files). `what()` names the argument.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace sta
