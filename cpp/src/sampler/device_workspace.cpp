// Size of the CUDA decode step's device workspace (plain arithmetic: defined in every build so that
// callers need no CUDA to ask).
#include "sampler/device_workspace.hpp"

#include "reset_native/error.hpp"
#include "reset_native/sampler.hpp"

namespace reset_native::sampler {

std::int64_t device_workspace_bytes(std::int64_t slots, std::int64_t vocab) {
  require(slots >= 1, "slots must be >= 1");
  require(vocab >= 1, "vocab must be >= 1");
  return detail::workspace_layout(slots, vocab).bytes;
}

}  // namespace reset_native::sampler
