// The helper threads behind parallel_for: started on first use, then kept. Idle helpers poll for the next
// job for a while (so back-to-back calls, such as the layers of a decode step, find them awake), then sleep.
//
// Waking sleeping helpers is what a short call pays for on a many-core machine (a futex wake, and in a VM the
// host rescheduling a halted vCPU: tens of microseconds each), so it is organised to keep that off the
// critical path:
// * every helper has its own mailbox (mutex, condition variable, job slot): a wake-up is one futex wake of
//   one thread, and the woken thread takes an uncontended lock. (One shared condition variable with
//   notify_all made all helpers wake at once and then queue on one mutex, each unlock waking the next
//   sleeper in turn: a chain of wake-ups, one after the other.)
// * wake-ups spread as a tree: the caller posts the job into every mailbox but wakes only the first
//   kFanout helpers; each helper, on taking a job, wakes its own kFanout children before it starts on the
//   chunks. 15 helpers are then awake after two wake-up latencies, and the caller spends only kFanout
//   wake calls before it starts on the chunks itself.
// The caller never waits for a helper to wake (parallel.hpp): whoever is awake claims the chunks.
//
// One pool per process, never destroyed (threads blocked at exit are simply ended with the process); a child
// created by fork() gets a fresh pool, since the parent's threads do not exist there.
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <system_error>

#include "parallel.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <unistd.h>
#define RN_HAVE_GETPID 1
#endif

namespace reset_native::nvfp4::detail {

namespace {

// How long an idle helper keeps polling (yielding its core to any other runnable thread) before it sleeps:
// long enough to bridge the gap between two GEMVs of a decode step (norms, attention, the sampler), short
// enough not to keep 15 cores out of deep idle for long.
constexpr auto kSpin = std::chrono::microseconds(1000);
// Sleeping helpers each waker (the caller, then every woken helper) wakes directly.
constexpr int kFanout = 4;
// Helpers per process at most (a call asking for more threads shares its chunks among these).
constexpr int kMaxHelpers = 255;

// One helper's mailbox. `posted` counts the jobs posted to it; the helper polls it without the lock while
// spinning, everything else is guarded by `mu`.
struct alignas(64) Mailbox {
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<uint64_t> posted{0};
  uint64_t taken = 0;             // value of `posted` when the helper last took the job
  bool sleeping = false;          // the helper waits on cv
  std::shared_ptr<ChunkJob> job;  // the latest job posted and not yet taken

  // Puts a job in the mailbox (replacing one not yet taken: that job's caller finishes it without this
  // helper). Returns whether the helper sleeps and must be woken.
  bool post(const std::shared_ptr<ChunkJob>& j) {
    std::lock_guard<std::mutex> lock(mu);
    job = j;
    posted.store(posted.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    return sleeping;
  }

  // Wakes the helper if it sleeps with a job waiting.
  void wake_if_waiting() {
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mu);
      wake = sleeping && posted.load(std::memory_order_relaxed) != taken;
    }
    if (wake) cv.notify_one();
  }
};

class WorkerPool {
 public:
  void share(const std::shared_ptr<ChunkJob>& job, int helpers) {
    const int count = start(std::min(helpers, kMaxHelpers));
    // Children before parents: a helper wakes its children as soon as it takes its own job, so theirs must
    // be in their mailboxes by then.
    bool asleep[kFanout] = {};
    for (int i = count - 1; i >= 0; --i) {
      const bool sleeping = boxes_[i].post(job);
      if (i < kFanout) asleep[i] = sleeping;
    }
    for (int i = 0; i < std::min(count, kFanout); ++i) {
      if (asleep[i]) boxes_[i].cv.notify_one();
    }
  }

 private:
  // Makes sure `wanted` helpers run (fewer if threads cannot be created); returns how many do.
  int start(int wanted) {
    int started = started_.load(std::memory_order_acquire);
    if (started >= wanted) return wanted;
    std::lock_guard<std::mutex> lock(start_mu_);
    started = started_.load(std::memory_order_relaxed);
    while (started < wanted) {
      try {
        std::thread([this, index = started] { loop(index); }).detach();
      } catch (const std::system_error&) {
        break;  // no more threads: the caller and the started helpers share the chunks
      }
      started_.store(++started, std::memory_order_release);
    }
    return started;
  }

  void loop(int index) {
    Mailbox& box = boxes_[index];
    uint64_t taken = 0;
    for (;;) {
      const auto spin_until = std::chrono::steady_clock::now() + kSpin;
      while (box.posted.load(std::memory_order_acquire) == taken && std::chrono::steady_clock::now() < spin_until) {
        std::this_thread::yield();
      }
      std::shared_ptr<ChunkJob> job;
      {
        std::unique_lock<std::mutex> lock(box.mu);
        if (box.posted.load(std::memory_order_relaxed) == taken) {
          box.sleeping = true;
          box.cv.wait(lock, [&] { return box.posted.load(std::memory_order_relaxed) != taken; });
          box.sleeping = false;
        }
        taken = box.taken = box.posted.load(std::memory_order_relaxed);
        job = std::move(box.job);
      }
      const int started = started_.load(std::memory_order_acquire);
      for (int c = kFanout * (index + 1); c < std::min(started, kFanout * (index + 2)); ++c) {
        boxes_[c].wake_if_waiting();
      }
      if (job) job->run();
    }
  }

  std::unique_ptr<Mailbox[]> boxes_{new Mailbox[kMaxHelpers]};
  std::atomic<int> started_{0};
  std::mutex start_mu_;
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
