#include "reset_native/dram/device.hpp"

#include <algorithm>

#include "reset_native/error.hpp"

namespace reset_native::dram {

Device::Device(const Spec& spec, int ranks, std::vector<TimingRule> rules, CommandSet commands)
    : spec_(spec), ranks_(ranks), rules_(std::move(rules)), commands_(std::move(commands)) {
  require(ranks >= 1, "ranks must be >= 1, got " + std::to_string(ranks));
  const int banks = ranks * spec_.org.banks();
  Ready zero;
  zero.fill(0);
  bank_ready_.assign(banks, zero);
  group_ready_.assign(ranks * spec_.org.bankgroups, zero);
  rank_ready_.assign(ranks, zero);
  open_row_.assign(banks, -1);
  open_count_.assign(ranks, 0);
  for (int i = 0; i < kNumCommands; ++i) rank_target_[i] = commands_[static_cast<Command>(i)].target == Target::Rank;
  for (const TimingRule& r : rules_) {
    require(commands_[r.prev].defined && commands_[r.next].defined,
            "timing rule " + r.name + " names an undefined command");
    require(r.window >= 1, "timing rule " + r.name + " needs window >= 1");
    int slot = -1;
    if (r.window > 1) {
      require(r.scope == Scope::Rank, "windowed timing rule " + r.name + " must have rank scope");
      slot = static_cast<int>(windows_.size());
      windows_.push_back(Window{r.window});
    }
    effects_[index(r.prev)].push_back(Effect{r.next, r.scope, r.latency, slot});
  }
  window_hist_.assign(ranks * windows_.size(), {});
  for (int rk = 0; rk < ranks; ++rk)
    for (size_t w = 0; w < windows_.size(); ++w) window_hist_[rk * windows_.size() + w].assign(windows_[w].size, 0);
}

bool Device::state_allows(Command c, const Address& a) const {
  const CommandTraits& tr = commands_[c];
  if (!tr.defined) return false;
  if (tr.target == Target::Rank) return !tr.needs_all_closed || open_count_[a.rank] == 0;
  const int row = open_row_[flat_bank(a)];
  if (tr.needs_open_row) return row == a.row;
  if (tr.needs_closed_bank) return row < 0;
  if (tr.closes_bank) return row >= 0;  // PRE only to an open bank
  return true;
}

void Device::apply(const Effect& e, const Address& a, int64_t t) {
  const int n = index(e.next);
  const int64_t when = t + e.latency;
  switch (e.scope) {
    case Scope::Bank: {
      int64_t& r = bank_ready_[flat_bank(a)][n];
      r = std::max(r, when);
      break;
    }
    case Scope::BankGroup: {
      int64_t& r = group_ready_[a.rank * spec_.org.bankgroups + a.bankgroup][n];
      r = std::max(r, when);
      break;
    }
    case Scope::Rank: {
      int64_t& r = rank_ready_[a.rank][n];
      r = std::max(r, when);
      break;
    }
    case Scope::OtherRanks:
      for (int rk = 0; rk < ranks_; ++rk)
        if (rk != a.rank) rank_ready_[rk][n] = std::max(rank_ready_[rk][n], when);
      break;
  }
}

void Device::issue(Command c, const Address& a, int64_t t) {
  const int64_t allowed = earliest(c, a);
  if (allowed == kNever || t < allowed)
    throw InvalidArgument(std::string("device: ") + commands_[c].name + " at cycle " + std::to_string(t) +
                          (allowed == kNever ? " is not allowed in the bank state"
                                             : " is earlier than allowed cycle " + std::to_string(allowed)));
  bus_free_ = t + 1;
  for (const Effect& e : effects_[index(c)]) {
    if (e.window_slot < 0) {
      apply(e, a, t);
      continue;
    }
    // Windowed rule (tFAW): remember t; once `size` issues are remembered, the next may not issue
    // before the oldest of them + latency.
    auto& hist = window_hist_[a.rank * windows_.size() + e.window_slot];
    std::rotate(hist.begin(), hist.begin() + 1, hist.end());  // size is tiny (4)
    hist.back() = t + 1;                                      // stored +1 so 0 means "empty"
    if (hist.front() > 0) {
      int64_t& r = rank_ready_[a.rank][index(e.next)];
      r = std::max(r, hist.front() - 1 + e.latency);
    }
  }
  const CommandTraits& tr = commands_[c];
  const int b = flat_bank(a);
  if (tr.opens_row) {
    open_row_[b] = a.row;
    ++open_count_[a.rank];
  } else if (tr.closes_bank) {
    if (open_row_[b] >= 0) --open_count_[a.rank];
    open_row_[b] = -1;
  } else if (tr.closes_rank) {
    const int per_rank = spec_.org.banks();
    for (int k = a.rank * per_rank; k < (a.rank + 1) * per_rank; ++k) open_row_[k] = -1;
    open_count_[a.rank] = 0;
  }
}

}  // namespace reset_native::dram
