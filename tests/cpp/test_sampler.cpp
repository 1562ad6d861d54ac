// The sampler's public C++ API as an embedder sees it: hand-computed entropies and state
// transitions, restricted sampling invariants, the random stream, and error reporting.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "reset_native/error.hpp"
#include "reset_native/sampler.hpp"

namespace rs = reset_native::sampler;

namespace {

float entropy(const std::vector<float>& row) { return rs::row_entropy(row.data(), static_cast<std::int64_t>(row.size()), rs::DType::kFloat32); }

struct Harness {
  rs::Config config;
  std::vector<std::uint8_t> classes;
  rs::State state;
  Harness(rs::Config c, std::int64_t slots, std::int64_t vocab)
      : config(c), classes(rs::token_classes(vocab, {1}, {2})), state(slots, c.window, 7) {}
  float step(std::int64_t last_token, float h) {
    rs::Batch batch{1, &last_token, nullptr};
    float t = -1.0f;
    rs::update(config, classes.data(), static_cast<std::int64_t>(classes.size()), state.view(), batch, &h, &t);
    return t;
  }
};

}  // namespace

TEST(SamplerEntropy, HandValues) {
  EXPECT_NEAR(entropy(std::vector<float>(1000, 3.0f)), std::log(1000.0), 1e-5);
  const float ninf = -std::numeric_limits<float>::infinity();
  EXPECT_NEAR(entropy({ninf, 2.0f, ninf}), 0.0, 1e-7);
  // two logits differing by ln 3: p = (3/4, 1/4)
  const double h = -(0.75 * std::log(0.75) + 0.25 * std::log(0.25));
  EXPECT_NEAR(entropy({static_cast<float>(std::log(3.0)), 0.0f}), h, 1e-6);
  // huge offsets do not overflow
  EXPECT_NEAR(entropy({1e30f, 1e30f, -1e30f}), std::log(2.0), 1e-6);
  std::int64_t argmax = -1;
  std::vector<float> row = {0.0f, 5.0f, 5.0f, 1.0f};
  rs::row_entropy(row.data(), 4, rs::DType::kFloat32, &argmax);
  EXPECT_EQ(argmax, 1);
}

TEST(SamplerEntropy, Bf16AndFp16Inputs) {
  // 1.0 in bf16 is 0x3F80, in fp16 0x3C00; 0.0 is 0 in both.
  const std::vector<std::uint16_t> bf16 = {0x3F80, 0x0000}, fp16 = {0x3C00, 0x0000};
  const double e = std::exp(1.0), p = e / (e + 1.0), h = -(p * std::log(p) + (1 - p) * std::log(1 - p));
  EXPECT_NEAR(rs::row_entropy(bf16.data(), 2, rs::DType::kBFloat16), h, 1e-6);
  EXPECT_NEAR(rs::row_entropy(fp16.data(), 2, rs::DType::kFloat16), h, 1e-6);
}

TEST(SamplerEntropy, RejectsNaNAndAllNegInf) {
  const float ninf = -std::numeric_limits<float>::infinity();
  EXPECT_THROW(entropy({0.0f, std::nanf("")}), reset_native::InvalidArgument);
  EXPECT_THROW(entropy({ninf, ninf}), reset_native::InvalidArgument);
  EXPECT_THROW(entropy({0.0f, std::numeric_limits<float>::infinity()}), reset_native::InvalidArgument);
}

TEST(SamplerState, HandComputedTransitions) {
  // Window 1, tau0 10: only an uncertain step (Hs > Hbar -> tau = Hs) can reach t_high.
  Harness h(rs::Config{0.1, 10.0, 1.0, 1, 1.0, 0}, 1, 16);
  EXPECT_FLOAT_EQ(h.step(-1, 1.0f), 0.1f);  // Hs = H = Hbar
  EXPECT_FLOAT_EQ(h.step(9, 3.0f), 0.1f);   // Hs = mean(step) = 1 = Hbar
  EXPECT_FLOAT_EQ(h.step(9, 3.0f), 0.1f);   // Hs = 2 = Hbar
  EXPECT_FLOAT_EQ(h.step(2, 5.0f), 1.0f);   // double newline: Hs = mean(window {3}) = 3 > 7/3, 5 >= 3
  EXPECT_FLOAT_EQ(h.step(9, 2.0f), 0.1f);   // Hs = 5 > 3, 2 < 5
  EXPECT_FLOAT_EQ(h.step(9, 6.0f), 1.0f);   // Hs = 3.5 > 2.8, 6 >= 3.5
  EXPECT_FLOAT_EQ(h.step(1, 0.0f), 0.1f);   // one newline: no boundary; Hs = mean{5,2,6} = 13/3 > Hbar 20/6, 0 < Hs
  EXPECT_FLOAT_EQ(h.step(1, 9.0f), 0.1f);   // "\n" "\n": boundary, Hs = mean(window {0}) = 0 < Hbar 20/7 -> tau0 10
  EXPECT_FLOAT_EQ(h.step(5, 11.0f), 1.0f);  // step {9}: Hs = 9 > Hbar 29/8 -> tau 9, 11 >= 9
}

TEST(SamplerState, NewlinePairStartsAStep) {
  Harness h(rs::Config{0.1, 10.0, 1.0, 2, 1.0, 0}, 1, 16);
  h.step(-1, 1.0f);
  h.step(5, 1.0f);
  h.step(1, 1.0f);  // single newline: step keeps growing
  const std::int64_t* ints = h.state.view().ints;
  EXPECT_EQ(ints[rs::kStepCount], 3);
  h.step(1, 1.0f);  // "\n" after "\n": boundary, then this entropy is appended
  EXPECT_EQ(ints[rs::kStepCount], 1);
  EXPECT_EQ(ints[rs::kGlobalCount], 4);
  EXPECT_EQ(ints[rs::kLastToken], 1);
  EXPECT_EQ(ints[rs::kPrevToken], 1);
}

TEST(SamplerState, RejectsBadBatches) {
  Harness h(rs::Config{0.1, 0.5, 1.0, 4, 1.0, 0}, 2, 16);
  const std::int64_t bad_token = 16, slots_twice[2] = {1, 1}, tokens[2] = {-1, -1};
  const float ent[2] = {0.1f, 0.2f};
  float temps[2];
  EXPECT_THROW(rs::update(h.config, h.classes.data(), 16, h.state.view(), rs::Batch{1, &bad_token, nullptr}, ent, temps),
               reset_native::InvalidArgument);
  EXPECT_THROW(rs::update(h.config, h.classes.data(), 16, h.state.view(), rs::Batch{2, tokens, slots_twice}, ent, temps),
               reset_native::InvalidArgument);
  EXPECT_THROW(rs::update(h.config, h.classes.data(), 16, h.state.view(), rs::Batch{3, tokens, nullptr}, ent, temps),
               reset_native::InvalidArgument);
  EXPECT_EQ(h.state.view().ints[rs::kGlobalCount], 0);  // nothing was applied
  EXPECT_THROW(rs::validate(rs::Config{0.1, 0.5, 1.0, 0, 1.0, 0}), reset_native::InvalidArgument);
  EXPECT_THROW(rs::validate(rs::Config{0.1, 0.5, 1.0, 4, 0.0, 0}), reset_native::InvalidArgument);
  EXPECT_THROW(rs::validate(rs::Config{-0.1, 0.5, 1.0, 4, 1.0, 0}), reset_native::InvalidArgument);
  EXPECT_THROW(rs::token_classes(4, {4}, {}), reset_native::InvalidArgument);
}

TEST(SamplerSampling, GreedyTopKTopPInvariants) {
  const std::vector<float> z = {0.0f, 2.0f, 1.0f, 2.0f, -1.0f, 1.0f};
  EXPECT_EQ(rs::sample_row(z.data(), 6, 0.0, 0, 1.0, 0.5), 1);  // first argmax
  for (int i = 0; i < 200; ++i) {
    const double u = (i + 0.5) / 200.0;
    const std::int64_t k2 = rs::sample_row(z.data(), 6, 1.0, 2, 1.0, u);
    EXPECT_TRUE(k2 == 1 || k2 == 3);  // top-2 = the two tied maxima
    const std::int64_t k3 = rs::sample_row(z.data(), 6, 1.0, 3, 1.0, u);
    EXPECT_TRUE(k3 == 1 || k3 == 3 || k3 == 2 || k3 == 5);  // ties at the 3rd value are kept
    // top-p 0.1: mass above each max is 0 < 0.1, above 1.0 it is the two maxima (> 0.1): only maxima
    const std::int64_t p = rs::sample_row(z.data(), 6, 1.0, 0, 0.1, u);
    EXPECT_TRUE(p == 1 || p == 3);
  }
  // inverse CDF in index order: u just below 1 picks the last kept token
  EXPECT_EQ(rs::sample_row(z.data(), 6, 1.0, 2, 1.0, 0.999999), 3);
  EXPECT_EQ(rs::sample_row(z.data(), 6, 1.0, 2, 1.0, 0.0), 1);
  EXPECT_THROW(rs::sample_row(z.data(), 6, 1.0, 0, 1.0, 1.0), reset_native::InvalidArgument);
}

TEST(SamplerRandom, StreamIsDeterministicAndUniform) {
  EXPECT_EQ(rs::uniform(42, 7), rs::uniform(42, 7));
  EXPECT_NE(rs::uniform(42, 7), rs::uniform(42, 8));
  EXPECT_NE(rs::uniform(42, 7), rs::uniform(43, 7));
  EXPECT_NE(rs::default_slot_seed(0, 1), rs::default_slot_seed(0, 2));
  double sum = 0.0;
  int below_quarter = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double u = rs::uniform(9, static_cast<std::uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    below_quarter += u < 0.25;
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);                   // sd of the mean: 0.0009
  EXPECT_NEAR(below_quarter / double(n), 0.25, 0.006);  // sd: 0.0014
}

TEST(SamplerDecode, FixedTemperatureBatch) {
  rs::Config c{0.0, 0.0, 0.0, 4, 1.0, 0};  // fixed greedy
  rs::State state(2, 4, 1);
  const auto classes = rs::token_classes(3, {}, {});
  const std::vector<float> logits = {0.0f, 1.0f, 0.5f, 3.0f, -1.0f, 2.0f};
  const std::int64_t last[2] = {-1, -1};
  std::int64_t tokens[2];
  float temps[2], ents[2];
  rs::decode_step(c, classes.data(), 3, state.view(), rs::Batch{2, last, nullptr}, logits.data(), rs::DType::kFloat32, 3,
                  tokens, temps, ents);
  EXPECT_EQ(tokens[0], 1);
  EXPECT_EQ(tokens[1], 0);
  EXPECT_EQ(temps[0], 0.0f);
  EXPECT_NEAR(ents[0], rs::row_entropy(logits.data(), 3, rs::DType::kFloat32), 1e-7);
}
