#include "reset_native/dram/controller.hpp"

#include <algorithm>

#include "reset_native/error.hpp"

namespace reset_native::dram {

// The helpers of run() are `inline`: only run() calls them, and inline functions are not
// interposable in a shared library, so the compiler may inline them into the scheduling loop.

void ControllerConfig::validate() const {
  require(read_queue >= 1, "read queue depth must be >= 1, got " + std::to_string(read_queue));
  require(write_queue >= 1, "write queue depth must be >= 1, got " + std::to_string(write_queue));
  require(write_high >= 1 && write_high <= write_queue,
          "write high watermark must be in [1, write queue depth " + std::to_string(write_queue) + "], got " +
              std::to_string(write_high));
  require(write_low >= 0 && write_low < write_high,
          "write low watermark must be in [0, high watermark " + std::to_string(write_high) + "), got " +
              std::to_string(write_low));
}

Controller::Controller(const Spec& spec, int channel, int ranks, const ControllerConfig& config,
                       std::vector<TimingRule> rules, CommandSet commands)
    : spec_(spec), channel_(channel), ranks_(ranks), cfg_(config),
      device_(spec, ranks, std::move(rules), std::move(commands)) {
  cfg_.validate();
  const Organisation& o = spec_.org;
  const int banks = ranks * o.banks();
  read_q_.resize(banks);
  write_q_.resize(banks);
  for (int b = 0; b < banks; ++b) {
    read_q_[b].reserve(cfg_.read_queue);
    write_q_[b].reserve(cfg_.write_queue);
    Address a;
    a.rank = b / o.banks();
    a.bankgroup = (b / o.banks_per_group) % o.bankgroups;
    a.bank = b % o.banks_per_group;
    bank_addr_.push_back(a);
  }
  for (int w = 0; w < 2; ++w) {
    cached_[w].assign(banks, Pick{});
    dirty_[w].assign(banks, 1);
    active_[w].assign((banks + 63) / 64, 0);
  }
  refresh_blocked_.assign((banks + 63) / 64, 0);
  next_refresh_.assign(ranks, spec_.timing.tREFI);
  ref_pending_.assign(ranks, 0);
  act_after_conflict_.assign(banks, 0);
  cols_since_act_.assign(banks, 0);
  stats_.column_per_bankgroup.assign(ranks * o.bankgroups, 0);
}

inline void Controller::issue(Command c, const Address& a, int64_t t, std::vector<LogEntry>* log) {
  device_.issue(c, a, t);  // checks t against every timing rule
  ++stats_.commands[index(c)];
  stats_.last_cycle = std::max(stats_.last_cycle, t + 1);
  if (log) {
    const CommandTraits& tr = device_.commands()[c];
    const bool rank_cmd = tr.target == Target::Rank;
    const bool column = tr.needs_open_row;
    log->push_back(LogEntry{t, static_cast<uint8_t>(c), static_cast<uint8_t>(channel_),
                            static_cast<uint8_t>(a.rank), static_cast<uint8_t>(rank_cmd ? 0 : a.bankgroup),
                            static_cast<uint8_t>(rank_cmd ? 0 : a.bank), rank_cmd ? -1 : a.row,
                            column ? a.column : -1});
  }
}

inline bool Controller::refresh_step(int64_t t, int64_t& next, std::vector<LogEntry>* log) {
  if (!cfg_.refresh) return false;
  if (t < refresh_check_at_) {
    next = std::min(next, refresh_check_at_);
    return false;
  }
  int64_t check_at = kNever;
  for (int rk = 0; rk < ranks_; ++rk) {
    if (!ref_pending_[rk] && t >= next_refresh_[rk]) set_refresh_pending(rk, true);
    if (!ref_pending_[rk]) {
      next = std::min(next, next_refresh_[rk]);
      check_at = std::min(check_at, next_refresh_[rk]);
      continue;
    }
    check_at = t;  // a pending rank is looked at every time
    // Refresh due: close every bank with one PREA, then REF. Requests to this rank wait.
    Address a;
    a.rank = rk;
    const Command c = device_.open_banks(rk) > 0 ? Command::PREA : Command::REF;
    const int64_t e = device_.earliest(c, a);
    if (e <= t) {
      issue(c, a, t, log);
      touch_rank(rk);
      if (c == Command::REF) {
        set_refresh_pending(rk, false);
        next_refresh_[rk] += spec_.timing.tREFI;
      }
      refresh_check_at_ = 0;
      return true;
    }
    next = std::min(next, e);
  }
  refresh_check_at_ = check_at;
  return false;
}

inline void Controller::set_refresh_pending(int rank, bool pending) {
  ref_pending_[rank] = pending;
  const int per_rank = spec_.org.banks();
  for (int b = rank * per_rank; b < (rank + 1) * per_rank; ++b) {
    const uint64_t bit = uint64_t{1} << (b % 64);
    refresh_blocked_[b / 64] = pending ? (refresh_blocked_[b / 64] | bit) : (refresh_blocked_[b / 64] & ~bit);
  }
}

inline void Controller::touch_rank(int rank) {
  const int per_rank = spec_.org.banks();
  for (int b = rank * per_rank; b < (rank + 1) * per_rank; ++b) touch_bank(b);
}

inline Controller::Pick Controller::candidate_for(int bank, int slot, bool writes) const {
  const auto& q = writes ? write_q_[bank] : read_q_[bank];
  Pick p;
  if (q.empty()) return p;
  const int row = device_.open_row(bank_addr_[bank]);
  p.bank = bank;
  p.valid = true;
  if (slot < 0) {  // FR-FCFS: the oldest row hit of this bank, if any
    slot = 0;
    if (row >= 0)
      for (size_t k = 0; k < q.size(); ++k)
        if (q[k].addr.row == row) {
          slot = static_cast<int>(k);
          break;
        }
  }
  const Entry& e = q[slot];
  p.slot = slot;
  p.seq = e.seq;
  const bool closed_page = cfg_.page == PagePolicy::Closed;
  if (row == e.addr.row)
    p.cmd = writes ? (closed_page ? Command::WRA : Command::WR) : (closed_page ? Command::RDA : Command::RD);
  else
    p.cmd = row >= 0 ? Command::PRE : Command::ACT;
  p.addr = p.cmd == Command::PRE ? bank_addr_[bank] : e.addr;
  if (p.cmd == Command::PRE) p.addr.row = row;
  p.column = device_.commands()[p.cmd].needs_open_row;
  p.ready = device_.ready_ref(p.cmd, p.addr);
  p.when = device_.earliest(p.cmd, p.addr);
  return p;
}

inline Controller::Pick Controller::best_request_command(int64_t t, bool writes, int64_t& next) const {
  const int banks = static_cast<int>(read_q_.size());
  const int per_rank = spec_.org.banks();
  Pick best;
  if (cfg_.scheduler == SchedulerKind::FCFS) {  // only the oldest request may move
    int oldest = -1;
    uint64_t seq = ~uint64_t{0};
    for (int b = 0; b < banks; ++b) {
      const auto& q = writes ? write_q_[b] : read_q_[b];
      if (!q.empty() && !ref_pending_[b / per_rank] && q.front().seq < seq) {
        seq = q.front().seq;
        oldest = b;
      }
    }
    if (oldest < 0) return best;
    Pick p = candidate_for(oldest, 0, writes);
    if (p.when <= t) return p;
    next = std::min(next, p.when);
    return best;
  }
  // FR-FCFS: ready column commands (row hits) first, then anything ready; oldest first within each.
  const int w = writes ? 1 : 0;
  const uint64_t* active = active_[w].data();
  const uint64_t* blocked = refresh_blocked_.data();
  Pick* cached = cached_[w].data();
  char* dirty = dirty_[w].data();
  int best_bank = -1;
  bool best_col = false;
  uint64_t best_seq = 0;
  for (size_t word = 0; word < active_[w].size(); ++word) {
    for (uint64_t bits = active[word] & ~blocked[word]; bits; bits &= bits - 1) {
      const int b = static_cast<int>(word * 64 + __builtin_ctzll(bits));
      Pick& p = cached[b];
      if (dirty[b]) {
        p = candidate_for(b, -1, writes);
        dirty[b] = 0;
      } else {
        p.when = device_.ready_at(p.ready);  // bank state unchanged since cached: timing only
      }
      if (p.when > t) {
        next = std::min(next, p.when);
        continue;
      }
      if (best_bank < 0 || (p.column && !best_col) || (p.column == best_col && p.seq < best_seq)) {
        best_bank = b;
        best_col = p.column;
        best_seq = p.seq;
      }
    }
  }
  return best_bank < 0 ? best : cached[best_bank];
}

inline void Controller::serve(const Pick& p, bool writes, int64_t t, int64_t* read_latency, std::vector<LogEntry>* log) {
  auto& q = writes ? write_q_[p.bank] : read_q_[p.bank];
  const Entry e = q[p.slot];
  const Timing& tm = spec_.timing;
  touch_bank(p.bank);  // its open row or its queue changes
  issue(p.cmd, p.addr, t, log);
  if (p.cmd == Command::PRE) {
    act_after_conflict_[p.bank] = 1;  // the row is closed to make room for another one
    return;
  }
  if (p.cmd == Command::ACT) {
    cols_since_act_[p.bank] = 0;
    return;
  }
  // A column command serves the request.
  if (cols_since_act_[p.bank]++ == 0)
    ++(act_after_conflict_[p.bank] ? stats_.row_conflicts : stats_.row_misses);
  else
    ++stats_.row_hits;
  act_after_conflict_[p.bank] = 0;
  ++stats_.column_per_bankgroup[e.addr.rank * spec_.org.bankgroups + e.addr.bankgroup];
  stats_.data_bus_cycles += tm.BL / 2;
  if (writes) {
    ++stats_.writes;
    --writes_queued_;
    stats_.last_cycle = std::max<int64_t>(stats_.last_cycle, t + tm.CWL + tm.BL / 2);
  } else {
    ++stats_.reads;
    --reads_queued_;
    const int64_t done = t + tm.CL + tm.BL / 2;
    read_latency[e.pos] = done - e.arrival;
    stats_.last_cycle = std::max(stats_.last_cycle, done);
  }
  q.erase(q.begin() + p.slot);
  if (q.empty()) active_[writes ? 1 : 0][p.bank / 64] &= ~(uint64_t{1} << (p.bank % 64));
}

void Controller::run(const RequestStream& requests, const AddressMapper& mapper, int64_t* read_latency,
                     std::vector<LogEntry>* log) {
  size_t next_req = 0;
  uint64_t seq = 0;
  int64_t t = 0;
  for (;;) {
    // Admit arrived requests in order while their queue has room (a full queue stalls the frontend).
    while (next_req < requests.count) {
      const size_t pos = requests.at(next_req);
      if (requests.arrival[pos] > t) break;
      const bool w = requests.is_write[pos] != 0;
      if (w ? writes_queued_ >= cfg_.write_queue : reads_queued_ >= cfg_.read_queue) break;
      const Address a = mapper.decode(requests.address[pos]).addr;
      const int b = device_.flat_bank(a);
      (w ? write_q_[b] : read_q_[b]).push_back(Entry{requests.arrival[pos], pos, seq++, a});
      active_[w ? 1 : 0][b / 64] |= uint64_t{1} << (b % 64);
      // A younger request changes the bank's candidate only if it turns a PRE (no hit) into a hit.
      const Pick& cached = cached_[w ? 1 : 0][b];
      if (!cached.valid || (cached.cmd == Command::PRE && device_.open_row(a) == a.row)) dirty_[w ? 1 : 0][b] = 1;
      ++(w ? writes_queued_ : reads_queued_);
      ++next_req;
    }
    const bool injecting = injector_ && !injector_->done();
    if (reads_queued_ == 0 && writes_queued_ == 0 && next_req == requests.count && !injecting) break;

    if (!draining_ && writes_queued_ >= cfg_.write_high) draining_ = true;
    if (draining_ && writes_queued_ <= cfg_.write_low) draining_ = false;
    const bool writes = draining_ || (reads_queued_ == 0 && writes_queued_ > 0);

    int64_t next = kNever;
    ++stats_.scheduler_passes;
    if (t < refresh_check_at_) {  // fast path: no rank due yet
      next = refresh_check_at_;
    } else if (refresh_step(t, next, log)) {
      ++t;
      continue;
    }
    if (injecting) {
      Command c;
      Address a;
      if (injector_->propose(device_, t, c, a)) {
        const int64_t e = device_.earliest(c, a);
        if (e == kNever)
          throw InvalidArgument(std::string("injected ") + device_.commands()[c].name +
                                " is not allowed in the current bank state");
        if (e <= t) {
          issue(c, a, t, log);
          touch_rank(a.rank);  // injected commands may change any bank of the rank
          injector_->issued(c, a, t);
          ++t;
          continue;
        }
        next = std::min(next, e);
      } else {
        next = std::min(next, t + 1);  // the injector may change its mind next cycle
      }
    }
    const Pick p = best_request_command(t, writes, next);
    if (p.valid) {
      serve(p, writes, t, read_latency, log);
      ++t;
      continue;
    }
    if (next_req < requests.count) {
      const size_t pos = requests.at(next_req);
      const bool w = requests.is_write[pos] != 0;
      const bool room = w ? writes_queued_ < cfg_.write_queue : reads_queued_ < cfg_.read_queue;
      if (room) next = std::min(next, requests.arrival[pos]);
    }
    if (next >= kNever) throw Error("dram controller: no command can ever issue (internal error)");
    t = std::max(t + 1, next);
  }
}

}  // namespace reset_native::dram
