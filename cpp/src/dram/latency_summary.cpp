// Read-latency summary for the Python front end: percentiles of millions of latencies by selection.
#include <algorithm>
#include <string>

#include "reset_native/dram/stats.hpp"
#include "reset_native/error.hpp"

namespace reset_native::dram {

LatencySummary summarize_latencies(const int64_t* latency, size_t n, const std::vector<uint64_t>& ranks) {
  LatencySummary s;
  std::vector<int64_t> reads;
  reads.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t v = latency[i];
    if (v < 0) continue;
    reads.push_back(v);
    s.sum_exact = s.sum_exact && !__builtin_add_overflow(s.sum, v, &s.sum);
    s.max = std::max(s.max, v);
  }
  s.count = reads.size();
  // Select the ranks in increasing order, each in the part right of the previous one.
  std::vector<size_t> order(ranks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranks[a] < ranks[b]; });
  s.at_rank.assign(ranks.size(), 0);
  auto from = reads.begin();
  for (size_t i : order) {
    require(ranks[i] < s.count, "latency rank " + std::to_string(ranks[i]) + " is not below the count of reads " +
                                    std::to_string(s.count));
    const auto nth = reads.begin() + static_cast<std::ptrdiff_t>(ranks[i]);
    if (nth >= from) {
      std::nth_element(from, nth, reads.end());
      from = nth;
    }
    s.at_rank[i] = *nth;
  }
  return s;
}

}  // namespace reset_native::dram
