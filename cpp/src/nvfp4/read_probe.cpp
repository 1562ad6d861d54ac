// read_checksum(): streams a buffer with the kernels' threading, so benchmarks can measure the memory
// read bandwidth the GEMV competes for (the checksum keeps the compiler from dropping the reads).
#include <cstring>
#include <vector>

#include "internal.hpp"

namespace reset_native::nvfp4 {

uint64_t read_checksum(const uint8_t* data, int64_t bytes, const Options& options) {
  require(data != nullptr && bytes > 0, "read_checksum: need a non-empty buffer");
  const int threads = detail::threads_for_work(detail::resolve_threads(options.threads), bytes, int64_t{1} << 22);
  const int64_t words = bytes / 8;
  const int64_t grain = int64_t{1} << 17;  // 1 MiB chunks: a late helper still finds work to share
  std::vector<uint64_t> partial(static_cast<size_t>((words + grain - 1) / grain + 1), 0);
  detail::parallel_for(words, grain, threads, [&](int64_t w0, int64_t w1) {
    // Four independent lanes so the adds do not serialize; the compiler vectorizes this loop.
    uint64_t s[4] = {0, 0, 0, 0};
    int64_t w = w0;
    for (; w + 4 <= w1; w += 4) {
      for (int j = 0; j < 4; ++j) {
        uint64_t v;
        std::memcpy(&v, data + 8 * (w + j), 8);
        s[j] += v;
      }
    }
    for (; w < w1; ++w) {
      uint64_t v;
      std::memcpy(&v, data + 8 * w, 8);
      s[0] += v;
    }
    partial[static_cast<size_t>(w0 / grain)] = s[0] + s[1] + s[2] + s[3];
  });
  uint64_t sum = 0;
  for (uint64_t p : partial) sum += p;
  for (int64_t i = words * 8; i < bytes; ++i) sum += data[i];
  return sum;
}

}  // namespace reset_native::nvfp4
