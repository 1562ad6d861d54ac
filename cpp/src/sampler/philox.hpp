// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11), used as a
// counter-based stream: key = the slot's seed, counter = the slot's position. A token's random
// number therefore depends only on (slot seed, position), never on its row or the batch around it.
#pragma once
#include <cstdint>

#include "sampler/device_compat.hpp"

namespace reset_native::sampler::detail {

RN_HOST_DEVICE inline void mul_hi_lo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}

// Returns 64 random bits (words 0 and 1 of the Philox output block).
RN_HOST_DEVICE inline std::uint64_t philox_bits(std::uint64_t seed, std::uint64_t position) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  std::uint32_t c0 = static_cast<std::uint32_t>(position), c1 = static_cast<std::uint32_t>(position >> 32);
  std::uint32_t c2 = 0x5EEDu, c3 = 0u;  // fixed stream tag (words 2/3 left for future streams)
  std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    mul_hi_lo(kMul0, c0, hi0, lo0);
    mul_hi_lo(kMul1, c2, hi1, lo1);
    const std::uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return (static_cast<std::uint64_t>(c1) << 32) | c0;
}

// Uniform double in [0, 1) with 53 random bits.
RN_HOST_DEVICE inline double philox_uniform(std::uint64_t seed, std::uint64_t position) {
  return static_cast<double>(philox_bits(seed, position) >> 11) * (1.0 / 9007199254740992.0);
}

// splitmix64 finaliser: spreads (seed, slot) into independent-looking slot keys.
RN_HOST_DEVICE inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace reset_native::sampler::detail
