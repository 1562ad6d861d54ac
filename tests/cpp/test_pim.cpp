// GradPIM C++ core through its public headers: unit commands and rules on the DDR4 device, command
// counts of a whole update, layout, functional arithmetic and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "reset_native/dram/device.hpp"
#include "reset_native/error.hpp"
#include "reset_native/pim/commands.hpp"
#include "reset_native/pim/functional.hpp"
#include "reset_native/pim/layout.hpp"
#include "reset_native/pim/update.hpp"

namespace rd = reset_native::dram;
namespace rp = reset_native::pim;
using rd::Command;

namespace {
rd::Address at(int bg, int bank, int row, int col = 0) {
  rd::Address a;
  a.bankgroup = bg;
  a.bank = bank;
  a.row = row;
  a.column = col;
  return a;
}
}  // namespace

TEST(Pim, UnitCommandsObeyBankGroupTimingOnTheDevice) {
  rp::UpdateConfig cfg;
  cfg.spec = rd::Spec::preset("DDR4_2400R_8Gb_x8");
  const rd::Timing& t = cfg.spec.timing;
  auto rules = rd::ddr4_timing_rules(cfg.spec);
  const auto extra = rp::pim_timing_rules(cfg.spec, cfg.resolved_timing());
  rules.insert(rules.end(), extra.begin(), extra.end());
  rd::Device dev(cfg.spec, 1, rules, rp::pim_commands());
  EXPECT_EQ(dev.earliest(rp::kLoad, at(0, 0, 3)), rd::kNever);  // row closed
  dev.issue(Command::ACT, at(0, 0, 3), 0);
  dev.issue(Command::ACT, at(1, 0, 3), t.tRRD_S);
  EXPECT_THROW(dev.issue(rp::kLoad, at(0, 0, 3), t.tRCD - 1), reset_native::InvalidArgument);
  dev.issue(rp::kLoad, at(0, 0, 3), t.tRCD);
  EXPECT_EQ(dev.earliest(rp::kMac, at(0, 0, 3)), t.tRCD + t.tCCD_L);       // same bank group
  EXPECT_EQ(dev.earliest(rp::kLoad, at(1, 0, 3)), t.tRRD_S + t.tRCD);      // other group: its own tRCD only
  dev.issue(rp::kLoad, at(1, 0, 3), t.tRRD_S + t.tRCD);
  EXPECT_EQ(dev.earliest(rp::kLoad, at(0, 0, 3)), t.tRCD + t.tCCD_L);       // no tCCD_S between units
  const int64_t st = t.tRCD + t.tCCD_L;
  dev.issue(rp::kStore, at(0, 0, 3), st);
  EXPECT_EQ(dev.earliest(rp::kLoad, at(0, 0, 3)), st + t.BL / 2 + t.tWTR_L);  // internal write-to-read
  EXPECT_EQ(dev.earliest(Command::PRE, at(0, 0, 3)), std::max<int64_t>(st + t.BL / 2 + t.tWR, t.tRAS));
  EXPECT_EQ(dev.earliest(rp::kAlu, at(0, 0, 0)), st + t.tCCD_L);  // the datapath: one pass per tCCD_L
  EXPECT_EQ(dev.earliest(Command::RD, at(1, 0, 3)), t.tRRD_S + t.tRCD + t.tCCD_L);  // host RD vs unit in group 1
}

TEST(Pim, WholeUpdateCommandCountsAndHostBursts) {
  rp::UpdateConfig cfg;
  cfg.spec = rd::Spec::preset("DDR4_2400R_8Gb_x8");
  const int64_t n = 4 * 2048;  // one chunk per bank group
  const rp::UpdateStats s = rp::simulate_pim_update(cfg, n, true);
  // momentum, x8: per step of 4 elements per device one grad column, two of weight, state; one copy
  const uint64_t steps = 4 * 64;
  EXPECT_EQ(s.commands[rd::index(rp::kLoad)], steps);
  EXPECT_EQ(s.commands[rd::index(rp::kMac)], 4 * steps);
  EXPECT_EQ(s.commands[rd::index(rp::kStore)], 5 * steps);
  EXPECT_EQ(s.commands[rd::index(Command::ACT)], 16u);  // four operand banks per bank group, no refresh yet
  EXPECT_EQ(s.external_bytes, 0u);
  EXPECT_EQ(s.internal_column_ops, 10 * steps);
  EXPECT_GE(s.cycles, static_cast<int64_t>(10 * 64 * cfg.spec.timing.tCCD_L));  // each group: 640 accesses
  const rp::UpdateStats h = rp::simulate_host_update(cfg, n, false);
  EXPECT_EQ(h.external_bytes, uint64_t(n) * 20);
  EXPECT_EQ(h.commands[rd::index(Command::RD)], uint64_t(n) * 10 / 64);
  EXPECT_GT(h.cycles, s.cycles);
}

TEST(Pim, LayoutPutsElementsInByteLanes) {
  rp::UpdateConfig cfg;
  cfg.spec = rd::Spec::preset("DDR4_2400R_8Gb_x8");
  const rp::Program p = rp::build_program(cfg);
  const rp::DataLayout l(cfg, p);
  EXPECT_EQ(l.step_elements(), 4);
  const rp::Location a = l.locate(0, rp::kWeight), b = l.locate(3, rp::kWeight), c = l.locate(4, rp::kWeight);
  EXPECT_EQ(a.device, 0);
  EXPECT_EQ(b.device, 0);
  EXPECT_EQ(c.device, 1);  // the next device's lane
  EXPECT_EQ(b.column, a.column + 1);  // fp32: elements 2, 3 in the weight's second column of the step
  EXPECT_EQ(b.byte, 4);
  const rp::Location g = l.locate(3, rp::kGrad);
  EXPECT_EQ(g.column, l.stream(rp::kGrad).column);
  EXPECT_EQ(g.byte, 6);
  EXPECT_NE(g.bank, a.bank);
  EXPECT_EQ(l.locate(2048, rp::kWeight).bankgroup, 1);  // the next chunk: the next bank group
  EXPECT_THROW(l.check_fits(0), reset_native::InvalidArgument);
  EXPECT_THROW(l.check_fits(int64_t{1} << 40), reset_native::InvalidArgument);
}

TEST(Pim, FunctionalArithmeticAndRounding) {
  EXPECT_EQ(rp::round_to(rp::DType::FP16, 1.0f + std::ldexp(1.0f, -11)), 1.0f);  // tie to even
  EXPECT_EQ(rp::round_to(rp::DType::FP16, 1.0f + 3 * std::ldexp(1.0f, -11)), 1.0f + std::ldexp(1.0f, -9));
  EXPECT_EQ(rp::round_to(rp::DType::FP16, 65520.0f), INFINITY);
  EXPECT_EQ(rp::round_to(rp::DType::FP16, std::ldexp(1.0f, -25)), 0.0f);  // half the smallest subnormal: even
  EXPECT_EQ(rp::round_to(rp::DType::BF16, 1.0f + std::ldexp(1.0f, -8)), 1.0f);
  rp::UpdateConfig cfg;
  cfg.spec = rd::Spec::preset("DDR4_2400R_8Gb_x8");
  cfg.hyper.lr = 0.5f;
  cfg.hyper.momentum = 0.5f;
  std::vector<float> w = {1.0f, 2.0f}, g = {2.0f, -4.0f}, v = {4.0f, 0.0f}, copy(2);
  rp::apply_update(cfg, 2, w.data(), g.data(), v.data(), nullptr, copy.data());
  EXPECT_EQ(v, (std::vector<float>{4.0f, -4.0f}));  // 0.5 * 4 + 2, 0 - 4
  EXPECT_EQ(w, (std::vector<float>{-1.0f, 4.0f}));  // 1 - 0.5 * 4, 2 + 0.5 * 4
  EXPECT_EQ(copy, w);
  EXPECT_THROW(rp::apply_update(cfg, 2, w.data(), g.data(), nullptr, nullptr, copy.data()),
               reset_native::InvalidArgument);  // momentum needs its state
  EXPECT_THROW(rp::parse_optimizer("lamb"), reset_native::InvalidArgument);
  cfg.registers_per_unit = 2;
  EXPECT_THROW(rp::simulate_pim_update(cfg, 100, false), reset_native::InvalidArgument);
}

TEST(Pim, CommandsOnADramImageMatchTheProgram) {
  rp::UpdateConfig cfg;
  cfg.spec = rd::Spec::preset("DDR4_2400R_8Gb_x8");
  cfg.optimizer = rp::Optimizer::Adam;  // five streams: two share a bank and split its row
  const int64_t n = 2 * 8192 + 77;
  std::vector<float> w(n), g(n), m(n), v(n), c(n);
  for (int64_t i = 0; i < n; ++i) {
    w[i] = std::sin(0.1f * i);
    g[i] = rp::round_to(rp::DType::FP16, 0.01f * std::cos(0.37f * i));
    m[i] = 0.001f * (i % 13);
    v[i] = 0.0001f * (i % 7);
  }
  std::vector<float> w2 = w, m2 = m, v2 = v, c2(n);
  rp::apply_update(cfg, n, w.data(), g.data(), m.data(), v.data(), c.data());
  rp::execute_commands(cfg, n, w2.data(), g.data(), m2.data(), v2.data(), c2.data());
  EXPECT_EQ(w, w2);
  EXPECT_EQ(m, m2);
  EXPECT_EQ(v, v2);
  EXPECT_EQ(c, c2);
}
