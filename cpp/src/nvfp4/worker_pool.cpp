// The helper threads behind parallel_for: started on first use, then kept, sleeping on a condition variable
// between jobs (after a short spin, so back-to-back calls such as the layers of a decode step find them
// awake). One pool per process, never destroyed (threads blocked at exit are simply ended with the
// process); a child created by fork() gets a fresh pool, since the parent's threads do not exist there.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <vector>

#include "parallel.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <unistd.h>
#define RN_HAVE_GETPID 1
#endif

namespace reset_native::nvfp4::detail {

namespace {

// How long an idle helper keeps polling for the next job before it sleeps.
constexpr auto kSpin = std::chrono::microseconds(200);

class WorkerPool {
 public:
  void share(const std::shared_ptr<ChunkJob>& job, int helpers) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (started_ < helpers) {
        try {
          std::thread([this, index = started_] { loop(index); }).detach();
        } catch (const std::system_error&) {
          break;  // no more threads: the caller and the started helpers share the chunks
        }
        ++started_;
      }
      job_ = job;
      wanted_ = helpers;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
  }

 private:
  void loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      const auto spin_until = std::chrono::steady_clock::now() + kSpin;
      while (generation_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < spin_until) {
        std::this_thread::yield();
      }
      std::shared_ptr<ChunkJob> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
        seen = generation_.load(std::memory_order_relaxed);
        if (index < wanted_) job = job_;
      }
      if (job) job->run();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::shared_ptr<ChunkJob> job_;  // the latest job (kept until the next; finished jobs have no chunks left)
  int wanted_ = 0;                 // helpers with index < wanted_ join the latest job
  int started_ = 0;
};

long current_pid() {
#ifdef RN_HAVE_GETPID
  return static_cast<long>(getpid());
#else
  return 0;
#endif
}

// The process's pool, created on first use (and anew in a forked child), and the mutex that guards the
// choice. Never freed: detached helpers may still be blocked in a pool, and the fork handlers use the slot.
struct PoolSlot {
  std::mutex mu;
  WorkerPool* pool = nullptr;
  long pid = 0;
};

PoolSlot& pool_slot() {
  static PoolSlot* const slot = [] {
    auto* s = new PoolSlot;
#ifdef RN_HAVE_GETPID
    // Held across fork(): otherwise a fork while another thread is inside share_job() would give a child whose
    // copy of the mutex is locked forever (its first parallel call would hang).
    pthread_atfork([] { pool_slot().mu.lock(); }, [] { pool_slot().mu.unlock(); },
                   [] { pool_slot().mu.unlock(); });
#endif
    return s;
  }();
  return *slot;
}

}  // namespace

void share_job(const std::shared_ptr<ChunkJob>& job, int helpers) {
  PoolSlot& slot = pool_slot();
  WorkerPool* pool;
  {
    std::lock_guard<std::mutex> lock(slot.mu);
    const long pid = current_pid();
    if (slot.pool == nullptr || slot.pid != pid) {
      slot.pool = new WorkerPool;
      slot.pid = pid;
    }
    pool = slot.pool;
  }
  pool->share(job, helpers);
}

}  // namespace reset_native::nvfp4::detail
