// Embeds reset_native from C++: prints what the library was built with and proves errors arrive as
// reset_native::Error. Exit code 0 on success.
#include <iostream>

#include "reset_native/build_info.hpp"
#include "reset_native/error.hpp"

int main() {
  const reset_native::BuildInfo info = reset_native::build_info();
  std::cout << "reset_native " << info.version << " (" << info.compiler << ", cuda "
            << (info.cuda_compiled ? info.cuda_arch : std::string("off")) << ", threads " << info.threads
            << ")\n";
  try {
    reset_native::require(false, "demo: argument checks throw");
    return 1;
  } catch (const reset_native::InvalidArgument& e) {
    std::cout << "caught: " << e.what() << "\n";
  }
  std::cout << "consumer ok\n";
  return 0;
}
