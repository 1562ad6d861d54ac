// reset_native's error convention: the C++ core throws these, never aborts.
// The Python binding maps InvalidArgument -> ValueError, InvalidType -> TypeError,
// Unsupported -> NotImplementedError and any other Error -> RuntimeError, message intact.
#pragma once
#include <stdexcept>
#include <string>

namespace reset_native {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A value is out of its allowed range or inconsistent with another argument.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// An argument has the wrong type / dtype.
class InvalidType : public Error {
 public:
  using Error::Error;
};

// A valid request this build or device cannot serve (e.g. CUDA op in a CPU-only build).
class Unsupported : public Error {
 public:
  using Error::Error;
};

// Throws InvalidArgument(message) unless cond holds. Keeps validation one line per rule.
inline void require(bool cond, const std::string& message) {
  if (!cond) throw InvalidArgument(message);
}

}  // namespace reset_native
