#include "reset_native/dram/device.hpp"

#include <algorithm>

#include "reset_native/error.hpp"

namespace reset_native::dram {

namespace {
// Adds (next, latency) to a rule list, or raises the latency of the entry `next` already has.
void merge_max(std::vector<std::pair<int, int>>& list, int next, int latency) {
  for (auto& [n, l] : list)
    if (n == next) {
      l = std::max(l, latency);
      return;
    }
  list.emplace_back(next, latency);
}
}  // namespace

Device::Device(const Spec& spec, int ranks, std::vector<TimingRule> rules, CommandSet commands)
    : spec_(spec), ranks_(ranks), bankgroups_(spec.org.bankgroups), banks_per_group_(spec.org.banks_per_group),
      rules_(std::move(rules)), commands_(std::move(commands)) {
  require(ranks >= 1, "ranks must be >= 1, got " + std::to_string(ranks));
  const int banks = ranks * spec_.org.banks();
  Ready zero;
  zero.fill(0);
  bank_ready_.assign(banks, zero);
  group_ready_.assign(ranks * spec_.org.bankgroups, zero);
  rank_ready_.assign(ranks, zero);
  open_row_.assign(banks, -1);
  open_count_.assign(ranks, 0);
  for (int i = 0; i < kNumCommands; ++i) {
    rank_target_[i] = commands_[static_cast<Command>(i)].target == Target::Rank;
    for (Ready& l : effects_[i].latency) l.fill(kNoEffect);
    effects_[i].bank_or_group = !rank_target_[i];  // harmless no-op raises for bank commands
  }
  for (const TimingRule& r : rules_) {
    require(commands_[r.prev].defined && commands_[r.next].defined,
            "timing rule " + r.name + " names an undefined command");
    require(r.window >= 1, "timing rule " + r.name + " needs window >= 1");
    Effects& e = effects_[index(r.prev)];
    if (r.window > 1) {
      require(r.scope == Scope::Rank, "windowed timing rule " + r.name + " must have rank scope");
      e.windowed.emplace_back(static_cast<int>(windows_.size()), r.latency);
      windows_.push_back(Window{r.window, index(r.next)});
      continue;
    }
    if (r.scope == Scope::OtherRanks) {
      merge_max(e.other_ranks, index(r.next), r.latency);
      continue;
    }
    int64_t& l = e.latency[static_cast<int>(r.scope)][index(r.next)];
    l = std::max<int64_t>(l, r.latency);
    if (r.scope != Scope::Rank) e.bank_or_group = true;
  }
  for (const TimingRule& r : rules_) ddr4_only_ = ddr4_only_ && index(r.next) < kNumDdr4Commands;
  window_hist_.assign(ranks * windows_.size(), {});
  for (int rk = 0; rk < ranks; ++rk)
    for (size_t w = 0; w < windows_.size(); ++w) window_hist_[rk * windows_.size() + w].times.assign(windows_[w].size, 0);
}

void Device::issue(Command c, const Address& a, int64_t t) {
  const bool allowed_state = state_allows(c, a);
  const int64_t allowed = allowed_state ? ready_at(c, a) : kNever;
  if (!allowed_state || t < allowed)
    throw InvalidArgument(std::string("device: ") + commands_[c].name + " at cycle " + std::to_string(t) +
                          (!allowed_state ? " is not allowed in the bank state"
                                          : " is earlier than allowed cycle " + std::to_string(allowed)));
  record(c, a, t);
}

namespace {
// r[i] = max(r[i], t + latency[i]) for the first `Slots` command slots (a kNoEffect latency leaves r[i]
// alone).
template <int Slots>
inline void raise(int64_t* __restrict r, const int64_t* __restrict latency, int64_t t) {
  for (int i = 0; i < Slots; ++i) r[i] = std::max(r[i], t + latency[i]);
}
}  // namespace

template <int Slots>
inline void Device::raise_scopes(const Effects& fx, int bank, const Address& a, int64_t t) {
  if (fx.bank_or_group) {  // false only for rank commands (PREA, REF) without bank or group rules
    raise<Slots>(bank_ready_[bank].data(), fx.latency[0].data(), t);
    raise<Slots>(group_ready_[flat_group(a)].data(), fx.latency[1].data(), t);
  }
  raise<Slots>(rank_ready_[a.rank].data(), fx.latency[2].data(), t);
}

// Cloned for AVX2 where the compiler can (chosen at load time): the raises are then a few vector
// max operations.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx2", "default")))
#endif
void Device::record(Command c, const Address& a, int64_t t) {
  bus_free_ = t + 1;
  const Effects& fx = effects_[index(c)];
  const int b = flat_bank(a);
  if (ddr4_only_)
    raise_scopes<kNumDdr4Commands>(fx, b, a, t);
  else
    raise_scopes<kNumCommands>(fx, b, a, t);
  if (ranks_ > 1)
    for (const auto& [next, latency] : fx.other_ranks)
      for (int rk = 0; rk < ranks_; ++rk)
        if (rk != a.rank) rank_ready_[rk][next] = std::max(rank_ready_[rk][next], t + latency);
  // Windowed rules (tFAW): remember t; once `size` issues are remembered, the next may not issue
  // before the oldest of them + latency.
  for (const auto& [slot, latency] : fx.windowed) {
    WindowHistory& h = window_hist_[a.rank * windows_.size() + slot];
    h.times[h.head] = t + 1;  // overwrites the oldest
    h.head = h.head + 1 == static_cast<int>(h.times.size()) ? 0 : h.head + 1;
    const int64_t oldest = h.times[h.head];
    if (oldest > 0) {
      int64_t& r = rank_ready_[a.rank][windows_[slot].next];
      r = std::max(r, oldest - 1 + latency);
    }
  }
  const CommandTraits& tr = commands_[c];
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
