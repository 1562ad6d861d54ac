// parallel_for over the nvfp4 kernels' work items, on the calling thread plus a process-wide pool of helper
// threads (worker_pool.cpp).
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

namespace reset_native::nvfp4::detail {

// Chunks [c * grain, min(count, (c + 1) * grain)) of one parallel_for call, claimed one at a time from an
// atomic counter by whichever threads run run().
struct ChunkJob {
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  int64_t count = 0, grain = 0, chunks = 0;
  void (*call)(const void* body, int64_t begin, int64_t end) = nullptr;
  const void* body = nullptr;

  void run() {
    for (int64_t c = next.fetch_add(1); c < chunks; c = next.fetch_add(1)) {
      call(body, c * grain, std::min(count, (c + 1) * grain));
      done.fetch_add(1, std::memory_order_release);
    }
  }
};

// Asks up to `helpers` pool threads to join job->run() (starting threads the first time they are needed).
// Returns at once; helpers that wake after every chunk is claimed find nothing to do.
void share_job(const std::shared_ptr<ChunkJob>& job, int helpers);

// Calls body(begin, end) on disjoint chunks of [0, count) of about `grain` items, on the calling thread plus
// up to threads - 1 pool threads. body must not throw.
//
// Built for machines shared with other work: chunks are claimed one at a time, and the caller waits only for
// chunks that were claimed, never for a helper that has not been scheduled yet. (A fork/join barrier, as in
// an OpenMP parallel region, stalls for a whole scheduler time slice whenever a helper's core is busy;
// measured on a loaded 2-core VM that made 2 threads several times slower than 1.) The helpers are kept
// between calls: starting a thread costs tens of microseconds, as much as a whole M = 1 layer on a many-core
// machine. A helper holds a reference to the job, never to the caller's stack, until it claims a chunk;
// claimed chunks keep the caller waiting, so `body` outlives every use.
template <class Body>
void parallel_for(int64_t count, int64_t grain, int threads, const Body& body) {
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = (count + grain - 1) / grain;
  const int workers = static_cast<int>(std::min<int64_t>(threads, chunks));
  if (workers <= 1) {
    if (count > 0) body(int64_t{0}, count);
    return;
  }
  auto job = std::make_shared<ChunkJob>();
  job->count = count;
  job->grain = grain;
  job->chunks = chunks;
  job->body = &body;
  job->call = [](const void* b, int64_t begin, int64_t end) { (*static_cast<const Body*>(b))(begin, end); };
  share_job(job, workers - 1);
  job->run();
  while (job->done.load(std::memory_order_acquire) < chunks) std::this_thread::yield();
}

}  // namespace reset_native::nvfp4::detail
