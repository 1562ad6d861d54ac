// Device, mapper and controller of the DDR4 model, including the extension points GradPIM uses:
// a PIM command slot with its own traits and timing rules, and an injected command sequence.
#include <gtest/gtest.h>

#include <vector>

#include "reset_native/dram/simulate.hpp"
#include "reset_native/error.hpp"

namespace rd = reset_native::dram;
using rd::Command;

namespace {
rd::Address at(int bg, int bank, int row, int col = 0, int rank = 0) {
  rd::Address a;
  a.rank = rank;
  a.bankgroup = bg;
  a.bank = bank;
  a.row = row;
  a.column = col;
  return a;
}

// A PIM column command in the reserved slot Pim0: needs an open row, no data bus.
rd::CommandSet pim_add_commands() {
  rd::CommandSet cmds;
  rd::CommandTraits pim;
  pim.name = "PIM_ADD";
  pim.needs_open_row = true;
  cmds.define(Command::Pim0, pim);
  return cmds;
}

// The DDR4 rules plus Pim0's own: tRCD after ACT, tCCD_L within a bank group, tRTP before PRE.
std::vector<rd::TimingRule> ddr4_with_pim_rules(const rd::Spec& spec) {
  const rd::Timing& t = spec.timing;
  auto rules = rd::ddr4_timing_rules(spec);
  rules.push_back({Command::ACT, Command::Pim0, rd::Scope::Bank, t.tRCD, 1, "tRCD"});
  rules.push_back({Command::Pim0, Command::Pim0, rd::Scope::BankGroup, t.tCCD_L, 1, "tCCD_L"});
  rules.push_back({Command::Pim0, Command::PRE, rd::Scope::Bank, t.tRTP, 1, "tRTP"});
  return rules;
}
}  // namespace

TEST(Dram, DeviceAnswersEarliestPerRule) {
  const rd::Spec spec = rd::Spec::preset("DDR4_2400R_8Gb_x8");
  const rd::Timing& t = spec.timing;
  rd::Device dev(spec, 1, rd::ddr4_timing_rules(spec));
  EXPECT_EQ(dev.earliest(Command::RD, at(0, 0, 3)), rd::kNever);  // bank closed
  EXPECT_EQ(dev.earliest(Command::ACT, at(0, 0, 3)), 0);
  dev.issue(Command::ACT, at(0, 0, 3), 0);
  EXPECT_EQ(dev.earliest(Command::RD, at(0, 0, 3)), t.tRCD);
  EXPECT_EQ(dev.earliest(Command::RD, at(0, 0, 4)), rd::kNever);  // another row
  EXPECT_EQ(dev.earliest(Command::PRE, at(0, 0, 3)), t.tRAS);
  EXPECT_EQ(dev.earliest(Command::ACT, at(0, 1, 0)), t.tRRD_L);
  EXPECT_EQ(dev.earliest(Command::ACT, at(1, 0, 0)), t.tRRD_S);
  EXPECT_THROW(dev.issue(Command::RD, at(0, 0, 3), t.tRCD - 1), reset_native::InvalidArgument);
  dev.issue(Command::RD, at(0, 0, 3), t.tRCD);
  dev.issue(Command::ACT, at(1, 0, 0), t.tRCD + 1);
  EXPECT_EQ(dev.earliest(Command::RD, at(0, 0, 3)), t.tRCD + t.tCCD_L);
  EXPECT_EQ(dev.earliest(Command::PRE, at(0, 0, 3)), t.tRAS);  // tRTP is shorter here
  EXPECT_EQ(dev.earliest(Command::REF, at(0, 0, 0)), rd::kNever);  // banks open
}

TEST(Dram, RecordLeavesTheSameStateAsIssue) {
  // record() is issue() without the legality check: after the same legal sequence both devices
  // answer every earliest() alike.
  const rd::Spec spec = rd::Spec::preset("DDR4_2400R_8Gb_x8");
  const rd::Timing& t = spec.timing;
  rd::Device checked(spec, 2, rd::ddr4_timing_rules(spec)), unchecked(spec, 2, rd::ddr4_timing_rules(spec));
  const struct { Command c; rd::Address a; int64_t t; } seq[] = {
      {Command::ACT, at(0, 0, 3), 0},          {Command::ACT, at(1, 2, 7), t.tRRD_S},
      {Command::ACT, at(2, 0, 1, 0, 1), 9},    {Command::RD, at(0, 0, 3, 5), t.tRCD},
      {Command::WR, at(1, 2, 7, 1), 40},       {Command::PRE, at(0, 0, 3), 80},
      {Command::ACT, at(3, 1, 2), 81},         {Command::PREA, at(0, 0, 0, 0, 1), 120}};
  for (const auto& s : seq) {
    checked.issue(s.c, s.a, s.t);
    unchecked.record(s.c, s.a, s.t);
    for (int c = 0; c < rd::kNumDdr4Commands; ++c)
      for (int rank = 0; rank < 2; ++rank)
        for (int bg = 0; bg < 4; ++bg)
          for (int bank = 0; bank < 4; ++bank)
            for (int row : {1, 2, 3, 7}) {
              const rd::Address a = at(bg, bank, row, 0, rank);
              ASSERT_EQ(checked.earliest(static_cast<Command>(c), a), unchecked.earliest(static_cast<Command>(c), a));
            }
  }
}

TEST(Dram, FourActivateWindow) {
  const rd::Spec spec = rd::Spec::preset("DDR4_2400R_8Gb_x8");
  rd::Device dev(spec, 2, rd::ddr4_timing_rules(spec));
  for (int g = 0; g < 4; ++g) dev.issue(Command::ACT, at(g, 0, 1), 4 * g);
  EXPECT_EQ(dev.earliest(Command::ACT, at(0, 1, 1)), spec.timing.tFAW);
  EXPECT_EQ(dev.earliest(Command::ACT, at(0, 1, 1, 0, 1)), 13);  // the other rank: bus only
}

TEST(Dram, MapperRoundTripsAndChecksItsString) {
  const rd::Spec spec = rd::Spec::preset("DDR4_2400R_8Gb_x8");
  const rd::AddressMapper m(spec.org, 8, 2, 2, rd::kDefaultMapping);
  EXPECT_EQ(m.capacity(), uint64_t{32} << 30);
  for (uint64_t a : {uint64_t{0}, uint64_t{64}, uint64_t{0x12345640}, m.capacity() - 64}) {
    const auto d = m.decode(a);
    EXPECT_EQ(m.encode(d.channel, d.addr), a);
  }
  EXPECT_EQ(m.decode(64).channel, 1);             // channel in the lowest bits
  EXPECT_EQ(m.decode(128).addr.bankgroup, 1);     // then bank group
  EXPECT_THROW(rd::AddressMapper(spec.org, 8, 1, 1, "ro:bg:co"), reset_native::InvalidArgument);
}

TEST(Dram, SpecValidation) {
  const rd::Spec spec = rd::Spec::preset("DDR4_2400R_8Gb_x8");
  EXPECT_THROW(spec.with_timings({{"tRC", 10}}), reset_native::InvalidArgument);
  EXPECT_THROW(spec.with_timings({{"tCCD_L", 0}}), reset_native::InvalidArgument);
  EXPECT_THROW(rd::Spec::preset("nope"), reset_native::InvalidArgument);
  EXPECT_EQ(spec.with_timings({{"tCCD_L", 7}}).get("tCCD_L"), 7);
}

// A PIM column command defined in a reserved slot: bank-group local, no data bus. Its rules are
// appended to the DDR4 table; the device enforces them with no code change.
TEST(Dram, PimCommandSlotWithAppendedRules) {
  const rd::Spec spec = rd::Spec::preset("DDR4_2400R_8Gb_x8");
  const rd::Timing& t = spec.timing;
  const rd::CommandSet cmds = pim_add_commands();
  rd::CommandSet redefine;
  rd::CommandTraits pim;
  pim.name = "PIM_ADD";
  pim.needs_open_row = true;
  EXPECT_THROW(redefine.define(Command::RD, pim), reset_native::InvalidArgument);  // built-in slots are fixed
  auto rules = ddr4_with_pim_rules(spec);
  rules.push_back({Command::Pim0, Command::Pim0, rd::Scope::Rank, t.tCCD_S, 1, "tCCD_S"});
  rd::Device dev(spec, 1, rules, cmds);
  EXPECT_EQ(dev.earliest(Command::Pim0, at(0, 0, 2)), rd::kNever);
  for (int g = 0; g < 4; ++g) dev.issue(Command::ACT, at(g, 0, 2), 4 * g);
  dev.issue(Command::Pim0, at(0, 0, 2), 16);
  EXPECT_EQ(dev.earliest(Command::Pim0, at(0, 0, 2)), 16 + t.tCCD_L);
  EXPECT_EQ(dev.earliest(Command::Pim0, at(1, 0, 2)), 20);  // tRCD of bank group 1's ACT at 4
  EXPECT_EQ(dev.earliest(Command::RD, at(1, 0, 2)), 20);     // no data-bus rule against RD
}

// The controller hook: an injector drives ACT, four PIM ops and PRE through one bank while
// request traffic runs beside it.
class Sequence : public rd::CommandInjector {
 public:
  explicit Sequence(std::vector<std::pair<Command, rd::Address>> s) : seq_(std::move(s)) {}
  bool propose(const rd::Device&, int64_t, Command& c, rd::Address& a) override {
    if (next_ >= seq_.size()) return false;
    c = seq_[next_].first;
    a = seq_[next_].second;
    return true;
  }
  void issued(Command, const rd::Address&, int64_t cycle) override {
    cycles.push_back(cycle);
    ++next_;
  }
  bool done() const override { return next_ >= seq_.size(); }
  std::vector<int64_t> cycles;

 private:
  std::vector<std::pair<Command, rd::Address>> seq_;
  size_t next_ = 0;
};

TEST(Dram, ControllerRunsInjectedSequences) {
  const rd::Spec spec = rd::Spec::preset("DDR4_2400R_8Gb_x8");
  const rd::Timing& t = spec.timing;
  const rd::CommandSet cmds = pim_add_commands();
  const auto rules = ddr4_with_pim_rules(spec);
  rd::ControllerConfig cfg;
  cfg.refresh = false;
  rd::Controller ctl(spec, 0, 1, cfg, rules, cmds);
  const rd::Address a = at(3, 3, 9);
  Sequence seq({{Command::ACT, a}, {Command::Pim0, a}, {Command::Pim0, a}, {Command::Pim0, a}, {Command::Pim0, a},
                {Command::PRE, a}});
  ctl.set_injector(&seq);
  const rd::AddressMapper mapper(spec.org, 8, 1, 1, rd::kDefaultMapping);
  std::vector<int64_t> arrival(8, 0), latency(8, -1);
  std::vector<uint8_t> is_write(8, 0);
  std::vector<uint64_t> address;
  for (int i = 0; i < 8; ++i) address.push_back(uint64_t(i) * 64 * 4);  // bank group 0 requests
  rd::RequestStream stream{arrival.data(), is_write.data(), address.data(), nullptr, address.size()};
  std::vector<rd::LogEntry> log;
  ctl.run(stream, mapper, latency.data(), &log);
  ASSERT_TRUE(seq.done());
  const std::vector<int64_t> expect = {0, t.tRCD, t.tRCD + t.tCCD_L, t.tRCD + 2 * t.tCCD_L, t.tRCD + 3 * t.tCCD_L,
                                       std::max<int64_t>(t.tRAS, t.tRCD + 3 * t.tCCD_L + t.tRTP)};
  EXPECT_EQ(seq.cycles, expect);
  EXPECT_EQ(ctl.stats().reads, 8u);
  EXPECT_EQ(ctl.stats().commands[rd::index(Command::Pim0)], 4u);
  for (int64_t l : latency) EXPECT_GT(l, 0);
}

// The whole-system driver takes the same extensions: PIM traits, appended rules, one injector per channel.
TEST(Dram, SimulateWithExtensions) {
  rd::SystemConfig cfg;
  cfg.spec = rd::Spec::preset("DDR4_2400R_8Gb_x8");
  cfg.channels = 2;
  cfg.controller.refresh = false;
  const rd::Timing& t = cfg.spec.timing;
  rd::Extensions ext;
  rd::CommandTraits pim;
  pim.name = "PIM_LOAD";
  pim.needs_open_row = true;
  ext.commands.define(Command::Pim1, pim);
  ext.extra_rules.push_back({Command::ACT, Command::Pim1, rd::Scope::Bank, t.tRCD, 1, "tRCD"});
  const rd::Address a = at(1, 2, 7);
  Sequence seq({{Command::ACT, a}, {Command::Pim1, a}});
  ext.injector = [&](int channel) -> rd::CommandInjector* { return channel == 1 ? &seq : nullptr; };
  std::vector<int64_t> arrival = {0, 0};
  std::vector<uint8_t> is_write = {0, 1};
  std::vector<uint64_t> address = {0, 64};  // one request per channel
  const rd::SimResult r = rd::simulate(cfg, arrival.data(), is_write.data(), address.data(), 2, true, ext);
  ASSERT_EQ(r.channels.size(), 2u);
  EXPECT_EQ(r.channels[0].commands[rd::index(Command::Pim1)], 0u);
  EXPECT_EQ(r.channels[1].commands[rd::index(Command::Pim1)], 1u);
  EXPECT_EQ(seq.cycles, (std::vector<int64_t>{0, t.tRCD}));
  EXPECT_EQ(r.read_latency[0], t.tRCD + t.CL + t.BL / 2);
}

namespace {
// A straightforward reading of the rule table, for checking the device's compiled form: the earliest
// cycle `c` may issue at `a` after `history` (timing only; the caller checks the bank state).
struct Issued { Command c; rd::Address a; int64_t t; };
int64_t replay_earliest(const std::vector<rd::TimingRule>& rules, const rd::CommandSet& cmds,
                        const std::vector<Issued>& history, Command c, const rd::Address& a) {
  int64_t e = history.empty() ? 0 : history.back().t + 1;  // one command per clock
  const bool rank_command = cmds[c].target == rd::Target::Rank;
  for (const rd::TimingRule& r : rules) {
    if (r.next != c) continue;
    if (r.window > 1) {  // the window-th most recent prev on this rank, plus latency
      int seen = 0;
      for (auto h = history.rbegin(); h != history.rend(); ++h)
        if (h->c == r.prev && h->a.rank == a.rank && ++seen == r.window) {
          e = std::max(e, h->t + r.latency);
          break;
        }
      continue;
    }
    for (const Issued& h : history) {
      if (h.c != r.prev) continue;
      const bool rank = h.a.rank == a.rank, group = rank && h.a.bankgroup == a.bankgroup;
      bool applies = false;
      switch (r.scope) {
        case rd::Scope::Bank: applies = !rank_command && group && h.a.bank == a.bank; break;
        case rd::Scope::BankGroup: applies = !rank_command && group; break;
        case rd::Scope::Rank: applies = rank; break;
        case rd::Scope::OtherRanks: applies = !rank; break;
      }
      if (applies) e = std::max(e, h.t + r.latency);
    }
  }
  return e;
}

void expect_device_matches_replay(const rd::Spec& spec, const std::vector<rd::TimingRule>& rules,
                                  const rd::CommandSet& cmds, uint64_t seed) {
  const int ranks = 2, groups = spec.org.bankgroups, banks = spec.org.banks_per_group;
  rd::Device dev(spec, ranks, rules, cmds);
  std::vector<Command> defined;
  for (int i = 0; i < rd::kNumCommands; ++i)
    if (cmds[static_cast<Command>(i)].defined) defined.push_back(static_cast<Command>(i));
  uint64_t s = seed;
  auto draw = [&s](int n) {  // splitmix64
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return static_cast<int>((z ^ (z >> 31)) % static_cast<uint64_t>(n));
  };
  std::vector<Issued> history;
  int checked = 0;
  while (history.size() < 400) {
    const Command c = defined[draw(static_cast<int>(defined.size()))];
    const rd::Address a = at(draw(groups), draw(banks), draw(2), draw(8), draw(ranks));
    const int64_t e = dev.earliest(c, a);
    if (e == rd::kNever) continue;  // the bank state forbids it
    ASSERT_EQ(e, replay_earliest(rules, cmds, history, c, a)) << "after " << history.size() << " commands";
    ++checked;
    const int64_t t = e + draw(3);
    dev.issue(c, a, t);
    history.push_back({c, a, t});
  }
  EXPECT_GE(checked, 400);
}
}  // namespace

// The device keeps each prev command's rules as per-scope latency arrays and raises whole ready-time
// arrays at once (only the DDR4 slots when no rule names a PIM slot): on random legal sequences over
// two ranks it must answer earliest() exactly as a rule-by-rule replay of the history does.
TEST(Dram, DeviceMatchesARuleByRuleReplay) {
  for (const char* preset : {"DDR4_2400R_8Gb_x8", "DDR4_2400R_8Gb_x16"}) {
    const rd::Spec spec = rd::Spec::preset(preset);
    expect_device_matches_replay(spec, rd::ddr4_timing_rules(spec), rd::CommandSet(), 1);
    expect_device_matches_replay(spec, ddr4_with_pim_rules(spec), pim_add_commands(), 2);  // PIM slots in use
  }
  // A short tRFC and a long tFAW make REF (after PREA) and the activate window bind more often.
  const rd::Spec tight = rd::Spec::preset("DDR4_3200_8Gb_x8").with_timings({{"tFAW", 60}, {"tRFC", 30}});
  expect_device_matches_replay(tight, rd::ddr4_timing_rules(tight), rd::CommandSet(), 3);
}
