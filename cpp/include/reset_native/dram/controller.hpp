// One channel's memory controller: per-bank read and write queues, FR-FCFS or FCFS scheduling,
// open- or closed-page policy, write draining between watermarks, per-rank refresh, and a hook for
// injected command sequences (PIM). It issues at most one command per clock and skips idle cycles by
// jumping to the next cycle at which anything can happen.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "reset_native/dram/address_mapper.hpp"
#include "reset_native/dram/device.hpp"
#include "reset_native/dram/stats.hpp"

namespace reset_native::dram {

enum class SchedulerKind { FRFCFS, FCFS };
enum class PagePolicy { Open, Closed };

struct ControllerConfig {
  SchedulerKind scheduler = SchedulerKind::FRFCFS;
  PagePolicy page = PagePolicy::Open;
  int read_queue = 32;   // entries per channel
  int write_queue = 32;
  int write_high = 24;   // start draining writes at this many queued writes ...
  int write_low = 8;     // ... and stop at this many
  bool refresh = true;
  void validate() const;
};

// The requests of one channel, in arrival order: views of the caller's arrays (no copy).
struct RequestStream {
  const int64_t* arrival = nullptr;
  const uint8_t* is_write = nullptr;
  const uint64_t* address = nullptr;
  const uint32_t* index = nullptr;  // positions in the arrays belonging to this channel; null: all
  size_t count = 0;
  size_t at(size_t k) const { return index ? index[k] : k; }
};

// Hook for command sequences that do not come from read/write requests (GradPIM). The controller
// asks propose() every time it schedules; the proposal is issued as soon as the device allows it,
// ahead of request traffic (refresh still comes first: an injector sees refresh_pending()).
class CommandInjector {
 public:
  virtual ~CommandInjector() = default;
  // Fill cmd/addr with the next command wanted and return true, or return false for "nothing now".
  virtual bool propose(const Device& device, int64_t now, Command& cmd, Address& addr) = 0;
  virtual void issued(Command cmd, const Address& addr, int64_t cycle) = 0;
  virtual bool done() const = 0;  // the controller runs until requests and injector are both done
};

class Controller {
 public:
  Controller(const Spec& spec, int channel, int ranks, const ControllerConfig& config,
             std::vector<TimingRule> rules, CommandSet commands = CommandSet());
  // Not copyable or movable: cached candidates point into this object's device.
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;
  void set_injector(CommandInjector* injector) { injector_ = injector; }
  // Serves every request of the stream; read latencies (completion - arrival) go to
  // read_latency[array position]. Appends issued commands to log when non-null.
  void run(const RequestStream& requests, const AddressMapper& mapper, int64_t* read_latency,
           std::vector<LogEntry>* log);
  bool refresh_pending(int rank) const { return ref_pending_[rank]; }
  const Device& device() const { return device_; }
  const ChannelStats& stats() const { return stats_; }

 private:
  // A queued request; its rank, bank group and bank are those of the queue it is in.
  struct Entry { int64_t arrival; size_t pos; uint64_t seq; int row, column; };
  // The command one bank's queue wants next and its ready time: the bank's own term as a value (only
  // a command to this bank, which touches it, can move it), the group and rank terms by address (a
  // command to any bank of the group or rank moves them).
  struct Candidate {
    Command cmd = Command::ACT;
    int slot = 0;  // queue position of the request it serves
    Address addr;
    int64_t bank_ready = kNever;
    const int64_t* group_ready = nullptr;
    const int64_t* rank_ready = nullptr;
    uint64_t key = 0;  // FR-FCFS priority, smaller first: (not a column command) << 63 | seq << bank bits | bank
  };
  // One scheduling decision: the winner among the candidates ready at `now`; else the earliest cycle
  // any candidate becomes ready and the winner at that cycle.
  struct Choice {
    int ready_bank = -1;
    int64_t earliest = kNever;
    int earliest_bank = -1;
    // The chosen bank can issue at `at`: now (ready) or later (the earliest wake-up).
    static Choice of(int bank, int64_t at, int64_t now) {
      Choice c;
      if (at <= now) {
        c.ready_bank = bank;
      } else {
        c.earliest = at;
        c.earliest_bank = bank;
      }
      return c;
    }
  };
  using Bits = std::vector<uint64_t>;  // one bit per flat bank
  __extension__ typedef unsigned __int128 Wide;  // (ready time, priority key) compared as one number
  static void set_bit(Bits& m, int b) { m[b >> 6] |= uint64_t{1} << (b & 63); }
  static void clear_bit(Bits& m, int b) { m[b >> 6] &= ~(uint64_t{1} << (b & 63)); }

  void issue(Command c, const Address& a, int64_t t, std::vector<LogEntry>* log);
  bool refresh_step(int64_t t, int64_t& next, std::vector<LogEntry>* log);
  Candidate candidate_for(int bank, int slot, bool writes) const;
  Choice choose_frfcfs(int64_t now, bool writes);
  Choice choose_fcfs(int64_t now, bool writes);
  void touch_bank(int bank) { set_bit(dirty_[0], bank), set_bit(dirty_[1], bank); }
  void touch_rank(int rank);
  void unschedule(int bank, int w) {
    Candidate& c = cand_[w][bank];
    c.bank_ready = kNever;
    c.group_ready = c.rank_ready = &never_;
  }
  void set_refresh_pending(int rank, bool pending);
  void serve(const Candidate& c, int bank, bool writes, int64_t t, int64_t* read_latency,
             std::vector<LogEntry>* log);
  void serve_request(int slot, int bank, bool writes, int64_t t, int64_t* read_latency);
  void recache(int bank, bool writes);

  Spec spec_;
  int channel_, ranks_, banks_;
  ControllerConfig cfg_;
  Device device_;
  CommandInjector* injector_ = nullptr;
  std::vector<std::vector<Entry>> read_q_, write_q_;  // per flat bank, arrival order
  std::vector<Address> bank_addr_;                    // flat bank -> its address (row/col 0)
  Bits active_[2];                                    // [writes]: banks with a non-empty queue
  int reads_queued_ = 0, writes_queued_ = 0;
  bool draining_ = false;
  std::vector<int64_t> next_refresh_;
  int64_t refresh_check_at_ = 0;  // no rank is due or pending before this cycle
  std::vector<char> ref_pending_;
  Bits refresh_blocked_;                  // banks whose rank waits for a refresh
  std::vector<char> act_after_conflict_;  // per bank: the open row replaced a conflicting one
  std::vector<int> cols_since_act_;
  ChannelStats stats_;

  // FR-FCFS candidate cache, per mode [writes] and flat bank: recomputed when the bank is touched
  // (dirty: its queue or its state changed, or a command was issued to it). The group and rank ready
  // times are re-read at every decision (they move with every command on the rank). A bank with an
  // empty queue or a rank waiting for refresh reads kNever (and is dirty: it is recomputed once it
  // can be scheduled again).
  std::vector<Candidate> cand_[2];
  Bits dirty_[2];
  int64_t never_ = kNever;             // where an unschedulable bank's candidate reads its ready time
  int bank_bits_ = 0;
};

}  // namespace reset_native::dram
