// Read-latency summary for the Python front end: percentiles of millions of latencies by selection.
#include <algorithm>
#include <limits>
#include <string>

#include "reset_native/dram/stats.hpp"
#include "reset_native/error.hpp"

namespace reset_native::dram {

// Three passes over the latencies, none of which branches on whether an entry is a read (writes,
// -1, are interleaved at random): totals; a histogram of the reads over kBuckets equal ranges of
// values; the reads of the few buckets that hold a wanted rank, selected within each. The result
// is exact (the values at those ranks of the sorted reads); a bucket holding most of the reads just
// makes the last step as long as a selection over everything. Small inputs select directly.
LatencySummary summarize_latencies(const int64_t* latency, size_t n, const std::vector<uint64_t>& ranks) {
  constexpr int kBucketBits = 16;
  constexpr size_t kBuckets = size_t{1} << kBucketBits;
  LatencySummary s;
  int64_t low = std::numeric_limits<int64_t>::max();
  for (size_t i = 0; i < n; ++i) {
    const int64_t v = latency[i];
    const bool read = v >= 0;
    s.count += read;
    s.sum_exact = !__builtin_add_overflow(s.sum, read ? v : 0, &s.sum) && s.sum_exact;
    s.max = std::max(s.max, v);
    low = std::min(low, read ? v : low);
  }
  for (uint64_t r : ranks)
    require(r < s.count,
            "latency rank " + std::to_string(r) + " is not below the count of reads " + std::to_string(s.count));
  s.at_rank.assign(ranks.size(), 0);
  if (ranks.empty()) return s;
  if (n <= kBuckets) {  // small: the histogram would cost more than selecting among all reads
    std::vector<int64_t> reads;
    reads.reserve(s.count);
    for (size_t i = 0; i < n; ++i)
      if (latency[i] >= 0) reads.push_back(latency[i]);
    for (size_t k = 0; k < ranks.size(); ++k) {
      const auto nth = reads.begin() + static_cast<std::ptrdiff_t>(ranks[k]);
      std::nth_element(reads.begin(), nth, reads.end());
      s.at_rank[k] = *nth;
    }
    return s;
  }

  const auto range = static_cast<uint64_t>(s.max - low);
  int shift = 0;
  while (shift < 64 && (range >> shift) >= kBuckets) ++shift;
  auto bucket = [&](int64_t v) { return v >= 0 ? static_cast<size_t>(static_cast<uint64_t>(v - low) >> shift) : kBuckets; };
  std::vector<uint64_t> count(kBuckets + 1, 0);  // the last one collects the writes
  for (size_t i = 0; i < n; ++i) ++count[bucket(latency[i])];

  // Each wanted rank: its bucket and its rank inside the bucket.
  std::vector<size_t> rank_bucket(ranks.size());
  std::vector<uint64_t> rank_inside(ranks.size());
  std::vector<int> slot(kBuckets + 1, -1);  // bucket -> index into `values`, -1: not wanted
  std::vector<std::vector<int64_t>> values;
  std::vector<uint64_t> start(kBuckets, 0);  // reads in the buckets before
  for (size_t b = 1; b < kBuckets; ++b) start[b] = start[b - 1] + count[b - 1];
  for (size_t k = 0; k < ranks.size(); ++k) {
    const size_t b = static_cast<size_t>(std::upper_bound(start.begin(), start.end(), ranks[k]) - start.begin()) - 1;
    rank_bucket[k] = b;
    rank_inside[k] = ranks[k] - start[b];
    if (slot[b] < 0) {
      slot[b] = static_cast<int>(values.size());
      values.emplace_back();
      values.back().reserve(count[b]);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const int k = slot[bucket(latency[i])];
    if (k >= 0) values[k].push_back(latency[i]);  // rarely taken: few buckets are wanted
  }
  for (size_t k = 0; k < ranks.size(); ++k) {
    std::vector<int64_t>& v = values[slot[rank_bucket[k]]];
    const auto nth = v.begin() + static_cast<std::ptrdiff_t>(rank_inside[k]);
    std::nth_element(v.begin(), nth, v.end());
    s.at_rank[k] = *nth;
  }
  return s;
}

}  // namespace reset_native::dram
