// Host-side check of the GEMV's FP4 decode (fp4_word, and fp4_word_bf16_select2 for bf16, in
// cuda/nvfp4/gemv_kernel.cuh) against the defining
// formula of nvfp4_device.cuh: pair_J(w) = ((w << (12 - 4J)) & 0x80008000) | ((w << (9 - 4J)) & 0x0E000E00)
// for fp16, ((w << (12 - 4J)) & 0x80008000) | ((w << (6 - 4J)) & 0x01C001C0) for bf16 (negative counts shift
// right). Built and run by tests/test_nvfp4_decode.py. Usage: fp4_word_check [first last step]: words
// first, first + step, ... <= last (default: all 2^32). Prints "ok <count>" or the first mismatch; exit 1 on one.
// A fourth argument "mutate" flips one output bit of pair 1 (the check must then fail: it can see an error).
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "nvfp4/gemv_kernel.cuh"

using reset_native::nvfp4_cuda::detail::fp4_word;
using reset_native::nvfp4_cuda::detail::fp4_word_bf16_select2;

static uint32_t shift(uint32_t w, int n) { return n >= 0 ? w << n : w >> -n; }

static bool g_mutate = false;

template <bool BF16>
static bool check(uint32_t w) {
  uint32_t o[4], o2[4];
  fp4_word<BF16>(w, o);
  if (BF16) {
    fp4_word_bf16_select2(w, o2);
  } else {
    fp4_word<BF16>(w, o2);
  }
  if (g_mutate) o[1] ^= 0x00000200u;
  for (int j = 0; j < 4; ++j) {
    const uint32_t want = BF16 ? (shift(w, 12 - 4 * j) & 0x80008000u) | (shift(w, 6 - 4 * j) & 0x01C001C0u)
                               : (shift(w, 12 - 4 * j) & 0x80008000u) | (shift(w, 9 - 4 * j) & 0x0E000E00u);
    if (o[j] != want || o2[j] != want) {
      std::printf("mismatch %s w=0x%08x pair %d: got 0x%08x / 0x%08x want 0x%08x\n", BF16 ? "bf16" : "fp16", w, j, o[j],
                  o2[j], want);
      return false;
    }
  }
  return true;
}

int main(int argc, char** argv) {
  unsigned long long first = 0, last = 0xFFFFFFFFull, step = 1;
  if (argc >= 4) {
    g_mutate = argc == 5 && std::strcmp(argv[4], "mutate") == 0;
    first = std::strtoull(argv[1], nullptr, 0);
    last = std::strtoull(argv[2], nullptr, 0);
    step = std::strtoull(argv[3], nullptr, 0);
  }
  unsigned long long n = 0;
  for (unsigned long long w = first; w <= last; w += step, ++n)
    if (!check<false>(uint32_t(w)) || !check<true>(uint32_t(w))) return 1;
  std::printf("ok %llu\n", n);
  return 0;
}
