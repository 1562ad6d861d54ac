// The state of one channel's DRAM: ranks > bank groups > banks, open rows, and for every node the
// earliest cycle each command may issue there. It answers "when may command C issue at address A"
// (earliest) and records an issue (issue). It knows nothing of requests, queues or policies.
#pragma once
#include <array>
#include <cstdint>
#include <limits>
#include <vector>

#include "reset_native/dram/command.hpp"
#include "reset_native/dram/spec.hpp"
#include "reset_native/dram/timing_rules.hpp"

namespace reset_native::dram {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max() / 4;

// A decoded location inside one channel.
struct Address {
  int rank = 0, bankgroup = 0, bank = 0;  // bank: index inside its bank group
  int row = 0, column = 0;                // column: burst index inside the row
};

class Device {
 public:
  Device(const Spec& spec, int ranks, std::vector<TimingRule> rules, CommandSet commands = CommandSet());

  // Earliest cycle >= 0 at which `c` may issue at `a` given everything issued so far (timing rules,
  // one command per clock on the command bus). kNever when the bank state forbids it (a column
  // command to a closed bank or another row, ACT to an open bank, REF with a bank open, ...).
  int64_t earliest(Command c, const Address& a) const {
    return state_allows(c, a) ? ready_at(c, a) : kNever;
  }
  bool state_allows(Command c, const Address& a) const {
    const CommandTraits& tr = commands_[c];
    if (!tr.defined) return false;
    if (tr.target == Target::Rank) return !tr.needs_all_closed || open_count_[a.rank] == 0;
    const int row = open_row_[flat_bank(a)];
    if (tr.needs_open_row) return row == a.row;
    if (tr.needs_closed_bank) return row < 0;
    if (tr.closes_bank) return row >= 0;  // PRE only to an open bank
    return true;
  }
  // Where the ready times of (c, a) live: lets a scheduler that polls the same candidate many times
  // re-read them with three loads. Stays valid for the device's lifetime.
  struct ReadyRef { const int64_t *bank, *group, *rank; };
  ReadyRef ready_ref(Command c, const Address& a) const {
    const int i = index(c);
    const int64_t* r = &rank_ready_[a.rank][i];
    if (rank_target_[i]) return {r, r, r};
    return {&bank_ready_[flat_bank(a)][i], &group_ready_[flat_group(a)][i], r};
  }
  int64_t ready_at(const ReadyRef& r) const {
    int64_t t = bus_free_ > *r.rank ? bus_free_ : *r.rank;
    t = t > *r.bank ? t : *r.bank;
    return t > *r.group ? t : *r.group;
  }
  // The timing part of earliest() alone, for callers that already know the bank state allows `c`.
  int64_t ready_at(Command c, const Address& a) const {
    const int i = index(c);
    int64_t t = bus_free_ > rank_ready_[a.rank][i] ? bus_free_ : rank_ready_[a.rank][i];
    if (!rank_target_[i]) {
      const int64_t b = bank_ready_[flat_bank(a)][i];
      const int64_t g = group_ready_[flat_group(a)][i];
      t = t > b ? t : b;
      t = t > g ? t : g;
    }
    return t;
  }
  // Records `c` at cycle t. Throws InvalidArgument if t < earliest(c, a): the device never lies.
  void issue(Command c, const Address& a, int64_t t);
  // issue() without the check, for a caller that has just established t >= earliest(c, a) itself
  // (the controller does, on every path); a wrong call corrupts the timing state.
  void record(Command c, const Address& a, int64_t t);

  int open_row(const Address& a) const { return open_row_[flat_bank(a)]; }  // -1 when precharged
  int open_banks(int rank) const { return open_count_[rank]; }
  int ranks() const { return ranks_; }
  const Spec& spec() const { return spec_; }
  const CommandSet& commands() const { return commands_; }
  const std::vector<TimingRule>& rules() const { return rules_; }
  int flat_bank(const Address& a) const { return flat_group(a) * banks_per_group_ + a.bank; }
  int flat_group(const Address& a) const { return a.rank * bankgroups_ + a.bankgroup; }

 private:
  using Ready = std::array<int64_t, kNumCommands>;
  // The rules of one prev command, compiled for record(): for each scope inside the issuing rank
  // (bank, bank group, rank) the latency to every next command, duplicates merged to the largest and
  // kNoEffect where no rule applies, so record() raises whole ready-time arrays with no per-rule loop
  // (branch-free, and vectorised where the CPU allows).
  static constexpr int64_t kNoEffect = std::numeric_limits<int64_t>::min() / 4;
  struct Effects {
    std::array<Ready, 3> latency;                    // [Scope::Bank, BankGroup, Rank][next command]
    bool bank_or_group = false;                      // the bank and group arrays need raising
    std::vector<std::pair<int, int>> other_ranks;    // (next command, latency)
    std::vector<std::pair<int, int>> windowed;       // (rule's window slot, latency)
  };
  struct Window { int size; int next; };
  // The last `size` issue times (+1, so 0 means "empty") of one windowed rule on one rank, as a ring.
  struct WindowHistory { std::vector<int64_t> times; int head = 0; };

  template <int Slots>
  void raise_scopes(const Effects& fx, int bank, const Address& a, int64_t t);

  Spec spec_;
  int ranks_;
  int bankgroups_, banks_per_group_;  // spec_.org's, at hand for flat_bank()
  std::vector<TimingRule> rules_;
  CommandSet commands_;
  std::array<bool, kNumCommands> rank_target_{};         // command addresses a whole rank
  std::array<Effects, kNumCommands> effects_;  // rules indexed by prev command
  bool ddr4_only_ = true;  // no rule constrains a PIM slot: record() raises the DDR4 slots alone
  std::vector<Ready> bank_ready_, group_ready_, rank_ready_;
  std::vector<int> open_row_, open_count_;
  std::vector<Window> windows_;                  // one per windowed rule
  std::vector<WindowHistory> window_hist_;       // [rank * windows + w]
  int64_t bus_free_ = 0;                         // command bus: one command per clock
};

}  // namespace reset_native::dram
