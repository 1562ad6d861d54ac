#include "reset_native/dram/controller.hpp"

#include <algorithm>

#include "reset_native/error.hpp"

namespace reset_native::dram {

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
    : spec_(spec), channel_(channel), ranks_(ranks), banks_(ranks * spec.org.banks()), cfg_(config),
      device_(spec, ranks, std::move(rules), std::move(commands)) {
  cfg_.validate();
  const Organisation& o = spec_.org;
  const int words = (banks_ + 63) / 64;
  read_q_.resize(banks_);
  write_q_.resize(banks_);
  for (int b = 0; b < banks_; ++b) {
    read_q_[b].reserve(cfg_.read_queue);
    write_q_[b].reserve(cfg_.write_queue);
    Address a;
    a.rank = b / o.banks();
    a.bankgroup = (b / o.banks_per_group) % o.bankgroups;
    a.bank = b % o.banks_per_group;
    bank_addr_.push_back(a);
  }
  while ((1 << bank_bits_) < banks_) ++bank_bits_;
  for (int w = 0; w < 2; ++w) {
    Candidate unschedulable;
    unschedulable.group_ready = unschedulable.rank_ready = &never_;
    cand_[w].assign(banks_, unschedulable);
    dirty_[w].assign(words, ~uint64_t{0});
    active_[w].assign(words, 0);
  }
  refresh_blocked_.assign(words, 0);
  next_refresh_.assign(ranks, spec_.timing.tREFI);
  ref_pending_.assign(ranks, 0);
  act_after_conflict_.assign(banks_, 0);
  cols_since_act_.assign(banks_, 0);
  stats_.column_per_bankgroup.assign(ranks * o.bankgroups, 0);
}

// The helpers of run() are `inline`: only run() calls them, and inline functions are not
// interposable in a shared library, so the compiler may inline them into the scheduling loop.

inline void Controller::issue(Command c, const Address& a, int64_t t, std::vector<LogEntry>* log) {
  // Every caller has established t >= earliest(c, a): the chooser from the candidates' ready times
  // (the command bus is free by then) and bank-state-derived commands, refresh and injection by
  // asking earliest(). Debug builds let the device check it again.
#ifdef NDEBUG
  device_.record(c, a, t);
#else
  device_.issue(c, a, t);
#endif
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
    if (pending) {
      set_bit(refresh_blocked_, b);
      unschedule(b, 0);
      unschedule(b, 1);
    } else {
      clear_bit(refresh_blocked_, b);  // touch_rank() follows: the candidates are recomputed
    }
  }
}

inline void Controller::touch_rank(int rank) {
  const int per_rank = spec_.org.banks();
  for (int b = rank * per_rank; b < (rank + 1) * per_rank; ++b) touch_bank(b);
}

// The command a bank's queue (non-empty) wants given its open row. slot < 0: FR-FCFS, the oldest row
// hit if any, else the oldest request; slot >= 0: that queue position (FCFS: 0).
inline Controller::Candidate Controller::candidate_for(int bank, int slot, bool writes) const {
  const auto& q = writes ? write_q_[bank] : read_q_[bank];
  const int row = device_.open_row(bank_addr_[bank]);
  if (slot < 0) {
    slot = 0;
    if (row >= 0)
      for (size_t k = 0; k < q.size(); ++k)
        if (q[k].row == row) {
          slot = static_cast<int>(k);
          break;
        }
  }
  const Entry& e = q[slot];
  Candidate c;
  c.slot = slot;
  const bool closed_page = cfg_.page == PagePolicy::Closed;
  if (row == e.row)
    c.cmd = writes ? (closed_page ? Command::WRA : Command::WR) : (closed_page ? Command::RDA : Command::RD);
  else
    c.cmd = row >= 0 ? Command::PRE : Command::ACT;
  c.addr = bank_addr_[bank];
  c.addr.row = c.cmd == Command::PRE ? row : e.row;
  c.addr.column = e.column;
  // The bank state always allows the candidate (it was derived from that state), so its earliest
  // cycle is the timing part alone.
  const Device::ReadyRef ready = device_.ready_ref(c.cmd, c.addr);
  c.bank_ready = *ready.bank;
  c.group_ready = ready.group;
  c.rank_ready = ready.rank;
  const bool column = device_.commands()[c.cmd].needs_open_row;
  c.key = (column ? 0 : uint64_t{1} << 63) | e.seq << bank_bits_ | static_cast<uint64_t>(bank);
  return c;
}

// FR-FCFS: ready column commands (row hits) first, then anything ready; oldest first within each.
// Answers both "who goes now" and "when does the first one become ready, and who goes then": the
// winner is the smallest key among the candidates ready at max(now, earliest ready time). The loop
// runs over every bank (a bank that cannot be scheduled reads kNever through never_) and is
// branch-free: ready times are unpredictable, a fixed trip count is not. The command-bus term of the
// ready time is left out: the bus is always free by `now` (it frees one clock after the last issue).
inline Controller::Choice Controller::choose_frfcfs(int64_t now, bool writes) {
  const int w = writes ? 1 : 0;
  Candidate* const cand = cand_[w].data();
  uint64_t* const dirty = dirty_[w].data();
  const size_t words = active_[w].size();
  uint64_t any_live = 0;
  for (size_t k = 0; k < words; ++k) {
    const uint64_t live = active_[w][k] & ~refresh_blocked_[k];
    any_live |= live;
    for (uint64_t bits = dirty[k] & live; bits; bits &= bits - 1) {
      const int b = static_cast<int>(k * 64 + __builtin_ctzll(bits));
      cand[b] = candidate_for(b, -1, writes);
    }
    dirty[k] &= ~live;
  }
  if (!any_live) return Choice{};  // e.g. a PIM run without request traffic: no scan
  // One pass, lexicographic minimum of (max(ready time, now), key): every candidate ready by `now`
  // ties at `now` and the smallest key among them wins; if none is, the earliest ready time wins and
  // the smallest key among the candidates ready at that very cycle. Times and keys share one
  // 128-bit word so the minimum is a compare and two conditional moves per bank.
  const uint64_t floor = static_cast<uint64_t>(now);
  Wide best = ~Wide{0};
#pragma GCC unroll 4
  for (int b = 0; b < banks_; ++b) {
    const Candidate& c = cand[b];
    const uint64_t when = static_cast<uint64_t>(std::max(std::max(c.bank_ready, *c.group_ready), *c.rank_ready));
    const Wide k = Wide{std::max(when, floor)} << 64 | c.key;
    best = k < best ? k : best;
  }
  const auto at = static_cast<int64_t>(best >> 64);
  if (at >= kNever) return Choice{};
  const int bank = static_cast<int>(static_cast<uint64_t>(best) & ((uint64_t{1} << bank_bits_) - 1));
  return Choice::of(bank, at, now);
}

// FCFS: only the oldest request (of the banks whose rank waits for no refresh) may move.
inline Controller::Choice Controller::choose_fcfs(int64_t now, bool writes) {
  const int per_rank = spec_.org.banks();
  int oldest = -1;
  uint64_t seq = ~uint64_t{0};
  for (int b = 0; b < banks_; ++b) {
    const auto& q = writes ? write_q_[b] : read_q_[b];
    if (!q.empty() && !ref_pending_[b / per_rank] && q.front().seq < seq) {
      seq = q.front().seq;
      oldest = b;
    }
  }
  if (oldest < 0) return Choice{};
  Candidate& c = cand_[writes ? 1 : 0][oldest];  // the FR-FCFS cache is not used under FCFS
  c = candidate_for(oldest, 0, writes);
  return Choice::of(oldest, device_.ready_at(c.cmd, c.addr), now);
}

inline void Controller::serve(const Candidate& c, int bank, bool writes, int64_t t, int64_t* read_latency,
                              std::vector<LogEntry>* log) {
  touch_bank(bank);  // its open row or its queue changes
  issue(c.cmd, c.addr, t, log);
  if (c.cmd == Command::PRE) {
    act_after_conflict_[bank] = 1;  // the row is closed to make room for another one
  } else if (c.cmd == Command::ACT) {
    cols_since_act_[bank] = 0;
  } else {
    serve_request(c.slot, bank, writes, t, read_latency);
  }
  recache(bank, writes);
}

// A column command at cycle t serves queue position `slot` of the bank.
inline void Controller::serve_request(int slot, int bank, bool writes, int64_t t, int64_t* read_latency) {
  auto& q = writes ? write_q_[bank] : read_q_[bank];
  const Entry e = q[slot];
  const Timing& tm = spec_.timing;
  if (cols_since_act_[bank]++ == 0)
    ++(act_after_conflict_[bank] ? stats_.row_conflicts : stats_.row_misses);
  else
    ++stats_.row_hits;
  act_after_conflict_[bank] = 0;
  ++stats_.column_per_bankgroup[bank / spec_.org.banks_per_group];  // [rank * bankgroups + bankgroup]
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
  q.erase(q.begin() + slot);
  if (q.empty()) {
    clear_bit(active_[writes ? 1 : 0], bank);
    unschedule(bank, writes ? 1 : 0);
  }
}

// FR-FCFS: the served bank's candidate for the current mode is recomputed at once (the next
// decision needs it, and doing it here keeps the chooser's dirty loop empty in the common case).
// The bank stays dirty for the other mode. A bank just served is not waiting for a refresh.
inline void Controller::recache(int bank, bool writes) {
  if (cfg_.scheduler != SchedulerKind::FRFCFS || (writes ? write_q_ : read_q_)[bank].empty()) return;
  const int w = writes ? 1 : 0;
  cand_[w][bank] = candidate_for(bank, -1, writes);
  clear_bit(dirty_[w], bank);
}

void Controller::run(const RequestStream& requests, const AddressMapper& mapper, int64_t* read_latency,
                     std::vector<LogEntry>* log) {
  if (bank_bits_ < 63 && requests.count >= (uint64_t{1} << (63 - bank_bits_)))
    throw Unsupported("dram controller: too many requests for one channel (" + std::to_string(requests.count) + ")");
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
      const int wi = w ? 1 : 0;
      (w ? write_q_[b] : read_q_[b]).push_back(Entry{requests.arrival[pos], pos, seq++, a.row, a.column});
      set_bit(active_[wi], b);
      // A younger request changes the bank's candidate only if it turns a PRE (no hit) into a hit.
      // (A bank whose queue was empty is dirty already.)
      if (cand_[wi][b].cmd == Command::PRE && device_.open_row(a) == a.row) set_bit(dirty_[wi], b);
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
    const Choice ch = cfg_.scheduler == SchedulerKind::FCFS ? choose_fcfs(t, writes) : choose_frfcfs(t, writes);
    const int w = writes ? 1 : 0;
    if (ch.ready_bank >= 0) {
      serve(cand_[w][ch.ready_bank], ch.ready_bank, writes, t, read_latency, log);
      ++t;
      continue;
    }
    if (next_req < requests.count) {
      const size_t pos = requests.at(next_req);
      const bool wr = requests.is_write[pos] != 0;
      const bool room = wr ? writes_queued_ < cfg_.write_queue : reads_queued_ < cfg_.read_queue;
      if (room) next = std::min(next, requests.arrival[pos]);
    }
    // Idle-cycle skipping. If the first candidate becomes ready strictly before any other event (an
    // admissible arrival, a refresh check, an injector), the state seen at that cycle is the one seen
    // now, so the decision there is already known: issue it without a second pass.
    if (ch.earliest < next && !injecting && (!cfg_.refresh || ch.earliest < refresh_check_at_)) {
      t = ch.earliest;
      ++stats_.scheduler_passes;  // the pass the skip replaces
      serve(cand_[w][ch.earliest_bank], ch.earliest_bank, writes, t, read_latency, log);
      ++t;
      continue;
    }
    next = std::min(next, ch.earliest);
    if (next >= kNever) throw Error("dram controller: no command can ever issue (internal error)");
    t = std::max(t + 1, next);
  }
}

}  // namespace reset_native::dram
